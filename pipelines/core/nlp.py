"""spaCy: loading the model, and turning documents into entities and topic-term occurrences.

Plain topic terms match case-insensitively as phrases on token boundaries, on the surface
form or on the lemma ("weapon" matches "weapons"). spaCy's PhraseMatcher compares one
attribute exactly, and lemmas keep their case for proper nouns, so the term index here
compares lower-cased surface and lemma sequences itself.

Per article only NER runs (tok2vec, ner) with rule-based sentence boundaries: the tagger,
attribute ruler and lemmatizer cost about a third of the time and only gave lemmas. The
terms' lemmas are computed once, when the rules load, by those components; a text word's
lemmas are every lemma the model's lemmatizer tables give it as a noun, verb or adjective
(``WordLemmas``), looked up once per distinct word.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import spacy
from spacy.attrs import IS_PUNCT, IS_SPACE, LEMMA, LOWER
from spacy.language import Language
from spacy.tokens import Doc

from newswatch.pipelines.core.aliases import (
    AliasTable,
    canonical_entities,
    display_name,
    fold_typography,
)
from newswatch.pipelines.core.installed import (
    resolve_model,
)
from newswatch.pipelines.core.lemmas import TERM_LEMMA_COMPONENTS, WordLemmas, lemmatized
from newswatch.pipelines.core.rules import (
    ENTITY_PREFIX,
    AnalysedSentence,
    TextAnalysis,
    TopicRule,
    is_entity_term,
)
from newswatch.schemas import Article, Entity

# spaCy's working memory grows with the text in a batch, not with the number of documents:
# 64 news articles of ~2,200 characters (140,000) took 540 MB at once in en_core_web_sm,
# 8 articles 85 MB, at the same speed (benchmarks/RESULTS.md). Batches are capped in
# characters as well as in documents, so long articles cannot make a batch huge.
MAX_BATCH_CHARS = 32_000
# The dependency parser is the costliest component and only gave us sentences; sentence
# boundaries come from punctuation and paragraph breaks (the sentencizer), which on news
# text served the topic rules as well as the statistical sentence recognizer did
# (benchmarks/QUALITY.md) for almost nothing.
EXCLUDED_COMPONENTS = ("parser", "senter")
# Inside a memory zone spaCy's tokenizer caches nothing and every word not already in the
# vocabulary gets a new lexeme, built again in the next zone: tokenizing took 5.3 ms a text
# that way, 1.4 ms after this warm-up (benchmarks/RESULTS.md), and the whole analysis of
# 1,200 articles about 4 % less CPU. So a pipeline's first texts are read outside any
# zone: the words common in news enter its vocabulary and tokenizer cache (which spaCy
# caps at 10,000 chunks) for good, a few MB, and every later batch runs in a zone that
# frees only the rarer words it added.
WARM_UP_CHARS = 1_000_000


@Language.component("newswatch_paragraph_breaks")
def paragraph_breaks(doc: Doc) -> Doc:
    """A paragraph break always ends a sentence: a headline has no full stop to end it."""
    # Whitespace tokens found in one array call: a Token object per token costs more than
    # the rest of this component.
    if len(doc) < 2:
        return doc
    for i in np.flatnonzero(doc.to_array(IS_SPACE)[:-1]).tolist():
        if "\n\n" in doc[i].text:
            doc[i + 1].is_sent_start = True
    return doc


def load_pipeline(model: str, aliases: AliasTable) -> Any:
    """The spaCy pipeline newswatch runs: NER, sentences, and an alias ruler; the tagger,
    attribute ruler and lemmatizer loaded but disabled (for the rule terms' lemmas)."""
    nlp = spacy.load(resolve_model(model), exclude=list(EXCLUDED_COMPONENTS))
    for name in TERM_LEMMA_COMPONENTS[1:]:
        if name in nlp.pipe_names:
            nlp.disable_pipe(name)
    # Before NER, where the sentence recognizer was, so NER sees the same kind of boundaries.
    nlp.add_pipe("sentencizer", before="ner")
    nlp.add_pipe("newswatch_paragraph_breaks", after="sentencizer")
    # After NER and without overwriting: NER's own spans and labels win, the rulers only
    # add the aliases NER missed ("DPRK", "N. Korea"). Acronyms have a ruler of their own
    # that compares text as written: as token patterns in one ruler they cost a spaCy
    # Matcher pass over every token (3.8 ms an article for 76 acronyms, as much as the rest
    # of the rulers ten times over); a second phrase matcher costs almost nothing.
    for name, attr, acronyms in (("alias_ruler", "LOWER", False), ("acronym_ruler", "ORTH", True)):
        ruler: Any = nlp.add_pipe(
            "entity_ruler",
            name=name,
            config={"phrase_matcher_attr": attr, "overwrite_ents": False},
        )
        # The ruler makes its patterns' Docs with every component before it (NER too); a
        # phrase matcher on LOWER or ORTH needs only the tokenizer: 1.2 s less a load.
        with nlp.select_pipes(enable=[]):
            ruler.add_patterns(aliases.ruler_patterns(acronyms=acronyms))
    return nlp


@dataclass(frozen=True)
class TermIndex:
    """Plain topic terms as token sequences, indexed by their first token."""

    by_first_token: dict[str, tuple[tuple[str, tuple[str, ...]], ...]]

    @classmethod
    def build(cls, nlp: Any, rules: Sequence[TopicRule]) -> TermIndex:
        index: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
        plain = sorted({key for rule in rules for key in rule.terms if not is_entity_term(key)})
        for key, doc in zip(plain, lemmatized(nlp, plain), strict=True):
            forms = {
                tuple(fold_typography(t.lower_) for t in doc),
                tuple(fold_typography(t.lemma_.lower()) for t in doc),
            }
            for form in forms:
                if form:
                    index.setdefault(form[0], set()).add((key, form))
        return cls({first: tuple(sorted(entries)) for first, entries in index.items()})

    def find(self, lowers: Sequence[str], lemmas: Sequence[Collection[str]]) -> set[str]:
        """Keys of the terms occurring in one token sequence (surface or lemma)."""
        return {key for key, _ in self.find_at(lowers, lemmas)}

    def find_at(
        self, lowers: Sequence[str], lemmas: Sequence[Collection[str]]
    ) -> set[tuple[str, int]]:
        """(key, offset of the first token) of each term occurrence in one token sequence:
        the term's form equal to the surface forms, or each of its tokens among the lemmas
        of the text's token there (``lemmas[i]``: every lemma token i may have)."""
        found: set[tuple[str, int]] = set()
        for i, token in enumerate(lowers):
            for key, form in self.by_first_token.get(token, ()):
                if tuple(lowers[i : i + len(form)]) == form:
                    found.add((key, i))
        for i, alternatives in enumerate(lemmas):
            for first in alternatives:
                for key, form in self.by_first_token.get(first, ()):
                    if len(form) <= len(lemmas) - i and all(
                        word in lemmas[i + j] for j, word in enumerate(form)
                    ):
                        found.add((key, i))
        return found


def paragraph_starts(text: str) -> list[int]:
    """Character offsets where the paragraphs of a title-plus-body text begin."""
    starts = [0]
    pos = text.find("\n\n")
    while pos != -1:
        starts.append(pos + 2)
        pos = text.find("\n\n", pos + 2)
    return starts


class _Ent(NamedTuple):
    """What analyse_doc needs of an entity Span, read once."""

    start: int  # token offsets
    end: int
    start_char: int
    end_char: int
    text: str
    label: str


def analyse_doc(
    doc: Any,
    aliases: AliasTable,
    terms: TermIndex,
    text: str | None = None,
    word_lemmas: WordLemmas | None = None,
) -> tuple[tuple[Entity, ...], TextAnalysis]:
    """Entities with canonical names, and the rule terms each sentence holds.

    ``text`` is the text the Doc was made from, when the caller has it: spaCy keeps it
    verbatim (``doc.text == text``), and ``doc.text`` rebuilds it token by token.
    ``word_lemmas`` gives each word its lemmas; without it, the Doc's own (a pipeline that
    ran a lemmatizer).
    """
    if text is None:
        text = doc.text
    # doc.ents builds new Span objects on every access, and Span.ents scans all of them,
    # so the entities are read once here and walked alongside the sentences. Span texts
    # are slices of the document text, as Span.text is, without building Tokens.
    ents = [
        _Ent(e.start, e.end, e.start_char, e.end_char, text[e.start_char : e.end_char], e.label_)
        for e in doc.ents
    ]
    entities = canonical_entities([(e.text, e.label) for e in ents], aliases)
    canonical_by_span = _canonical_by_span(ents, entities)
    starts = paragraph_starts(text)
    lowers, lemmas = _token_forms(doc, word_lemmas)
    word_at = _word_numbers(doc)
    sentences = []
    paragraph = 0
    first_ent = 0
    for sent in doc.sents:
        start, end, start_char = sent.start, sent.end, sent.start_char
        # Span.ents: the entities from the first one starting inside the sentence, up to
        # (not including) the first that ends after it.
        while first_ent < len(ents) and ents[first_ent].start < start:
            first_ent += 1
        inside = []
        for ent in ents[first_ent:]:
            if ent.end > end:
                break
            inside.append(ent)
        sentence = text[start_char : sent.end_char].strip()  # Span.text, without the Tokens
        if not sentence:
            continue
        while paragraph + 1 < len(starts) and start_char >= starts[paragraph + 1]:
            paragraph += 1
        found = {
            (key, word_at[start + offset])
            for key, offset in terms.find_at(lowers[start:end], lemmas[start:end])
        }
        found |= {
            (ENTITY_PREFIX + canonical.casefold(), word_at[ent.start])
            for ent in inside
            if (canonical := canonical_by_span.get((ent.start_char, ent.end_char)))
        }
        sentences.append(
            AnalysedSentence(
                text=sentence,
                paragraph=paragraph,
                terms=frozenset(key for key, _ in found),
                positions=tuple(sorted(found)),
            )
        )
    return entities, TextAnalysis(tuple(sentences))


def _token_forms(
    doc: Any, word_lemmas: WordLemmas | None = None
) -> tuple[list[str], list[Collection[str]]]:
    """Every token's lower-cased surface form, and its lower-cased lemmas, in order.

    Read as hashes in one call and turned into strings once per distinct word, instead of
    building a Token object per token per attribute. The lemmas are ``word_lemmas`` of the
    surface form, or else the one lemma the Doc carries.
    """
    strings = doc.vocab.strings
    hashes = doc.to_array([LOWER, LEMMA]).reshape(-1, 2)
    lower_hashes, lower_at = np.unique(hashes[:, 0], return_inverse=True)
    # Folded, so a term written with a straight apostrophe matches a curly one.
    words = [fold_typography(strings[h]) for h in lower_hashes.tolist()]
    lowers = [words[i] for i in lower_at.tolist()]
    if word_lemmas is not None:
        of_word = [word_lemmas(w) for w in words]
        return lowers, [of_word[i] for i in lower_at.tolist()]
    lemma_hashes, lemma_at = np.unique(hashes[:, 1], return_inverse=True)
    lemmas = [(fold_typography(strings[h].lower()),) for h in lemma_hashes.tolist()]
    return lowers, [lemmas[i] for i in lemma_at.tolist()]


def _word_numbers(doc: Any) -> list[int]:
    """Each token's word number in the document: punctuation and spaces are not words,
    so ``within: N`` counts what a reader counts."""
    flags = doc.to_array([IS_PUNCT, IS_SPACE]).reshape(-1, 2)
    words = flags.sum(axis=1) == 0
    return (np.cumsum(words) - 1).clip(min=0).tolist()


def _canonical_by_span(
    ents: Sequence[_Ent], entities: Iterable[Entity]
) -> dict[tuple[int, int], str]:
    by_surface = {(e.text, e.label): e.canonical for e in entities}
    spans = {}
    for ent in ents:
        canonical = by_surface.get((display_name(ent.text), ent.label))
        if canonical is not None:
            spans[(ent.start_char, ent.end_char)] = canonical
    return spans


def document_text(title: str, text: str, max_chars: int) -> str:
    """What NER reads: the title as its own paragraph, then the body, capped in length.

    Paragraph 0 is always the title, on one line and empty when there is none: the
    matcher scores a satisfying paragraph 0 as a headline.
    """
    return f"{' '.join(title.split())}\n\n{text}"[:max_chars]


class TextAnalyser:
    """The loaded model with the compiled term index: one per worker, built in DoFn.setup."""

    def __init__(
        self,
        nlp: Any,
        aliases: AliasTable,
        rules: Sequence[TopicRule],
        batch_size: int,
        warm_up_chars: int = WARM_UP_CHARS,
    ):
        self.nlp = nlp
        self.aliases = aliases
        self.terms = TermIndex.build(nlp, rules)
        self.word_lemmas = WordLemmas.of(nlp)
        self.batch_size = batch_size
        self._warm_up_left = warm_up_chars

    @classmethod
    def load(
        cls, model: str, aliases: AliasTable, rules: Sequence[TopicRule], batch_size: int = 64
    ) -> TextAnalyser:
        return cls(load_pipeline(model, aliases), aliases, rules, batch_size)

    def analyse_articles(
        self, articles: Sequence[Article], max_chars: int
    ) -> Iterator[tuple[Article, TextAnalysis]]:
        """Each article with its canonical entities set, and the analysis topics match on:
        what the NLP stage emits for it."""
        texts = (document_text(a.title, a.text, max_chars) for a in articles)
        for article, (entities, analysis) in zip(articles, self.analyse(texts), strict=True):
            yield dataclasses.replace(article, entities=entities), analysis

    def analyse(self, texts: Iterable[str]) -> Iterable[tuple[tuple[Entity, ...], TextAnalysis]]:
        for batch in spacy_batches(texts, self.batch_size, MAX_BATCH_CHARS):
            # Each text rides along with its Doc, so analyse_doc need not rebuild it.
            pairs = ((text, text) for text in batch)
            # The zone frees the strings and lexemes a batch added to the vocabulary when it
            # ends: without it a long-running worker grows with every new name and number it
            # reads. Nothing of a Doc outlives it.
            with self._zone(batch):
                analysed = [
                    analyse_doc(doc, self.aliases, self.terms, text, self.word_lemmas)
                    for doc, text in self.nlp.pipe(pairs, as_tuples=True, batch_size=len(batch))
                ]
            yield from analysed

    def _zone(self, batch: Sequence[str]) -> contextlib.AbstractContextManager[Any]:
        if self._warm_up_left > 0:
            self._warm_up_left -= sum(len(text) for text in batch)
            return contextlib.nullcontext()
        return self.nlp.memory_zone()


def spacy_batches(texts: Iterable[str], max_docs: int, max_chars: int) -> Iterator[list[str]]:
    """Consecutive texts in batches of at most ``max_docs`` texts and ``max_chars`` characters.

    A text longer than ``max_chars`` is a batch of its own.

    >>> [len(b) for b in spacy_batches(["a" * 10] * 5, max_docs=4, max_chars=25)]
    [2, 2, 1]
    """
    batch: list[str] = []
    chars = 0
    for text in texts:
        if batch and (len(batch) >= max_docs or chars + len(text) > max_chars):
            yield batch
            batch, chars = [], 0
        batch.append(text)
        chars += len(text)
    if batch:
        yield batch
