"""Analysis of non-English articles: a tokenizer fit for the language, word forms that
absorb inflection, the alias table as an entity ruler, and natasha's NER for Russian.

English goes through the English spaCy model (``nlp.py``) as before; this module builds,
for each other configured language, a spaCy pipeline that ``TextAnalyser`` runs unchanged:

- words: spaCy's language class (``spacy.blank(lang)``) for languages with spaces;
  Chinese, Japanese and Korean one token per character (Latin and digit runs stay whole),
  so a term matches wherever its characters occur. Chinese and Japanese have no spaces to
  go by; a segmenter (jieba, sudachipy, spacy-pkuseg) would add a dictionary and cut some
  names wrongly. Korean words carry their particle ("북한이", "러시아에서") and compound
  freely ("북한군", "탄도미사일"), and spaCy's Korean class needs mecab-ko, which is not on
  the package registries; by characters "북한" is found in all of them. The price: a
  one-syllable term would match inside other words, so the rules list none.
- forms: each token's ``lemma_`` is what terms and aliases match on besides the surface:
  pymorphy3's dictionary lemma for Russian and Ukrainian ("снарядов" -> "снаряд"), and a
  Snowball stem for German, French and the other Latin-script languages.
- entities: the alias table's names of every language, matched on surface or form, with
  the table's English canonical name; for Russian also natasha's NER (loaded on the first
  Russian text, 170 MB), whose spans get canonical names through the same forms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from newswatch.pipelines.core.aliases import AliasEntry, AliasTable, is_acronym
from newswatch.pipelines.core.installed import (
    SUPPORT,
    check_languages,
)
from newswatch.pipelines.core.languages import DEFAULT_LANGUAGES, ENGLISH
from newswatch.pipelines.core.nlp import TextAnalyser
from newswatch.pipelines.core.rules import TextAnalysis, TopicRule
from newswatch.schemas import Article

_NATASHA_LABELS = {"PER": "PERSON", "LOC": "GPE", "ORG": "ORG"}
_CJK = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
_CHARACTER_TOKEN = re.compile(rf"\s+|[^\W{_CJK}]+(?:[-.'][^\W{_CJK}]+)*|\S")


# --- word forms -----------------------------------------------------------------------------


def word_forms(code: str) -> Callable[[str], str]:
    """The function from a lower-cased word to the form it matches on in this language."""
    method = SUPPORT[code].forms
    cache: dict[str, str] = {}
    if method == "pymorphy":
        import pymorphy3

        morph = pymorphy3.MorphAnalyzer(lang=code)

        def lemma(word: str) -> str:
            return str(morph.parse(word)[0].normal_form).replace("ё", "е")

        base = lemma
    elif method.startswith("snowball:"):
        import snowballstemmer

        base = snowballstemmer.stemmer(method.split(":", 1)[1]).stemWord
    else:
        return str

    def cached(word: str) -> str:
        # News repeats its words: a dictionary look-up per distinct word, not per token.
        form = cache.get(word)
        if form is None:
            form = cache[word] = base(word) if word.isalpha() else word
            if len(cache) > 200_000:  # a long-running worker must not grow without end
                cache.clear()
        return form

    return cached


@Language.factory("newswatch_word_forms", default_config={"code": "ru"})
def make_word_forms(nlp: Language, name: str, code: str) -> Callable[[Doc], Doc]:
    forms = word_forms(code)

    def set_forms(doc: Doc) -> Doc:
        for token in doc:
            token.lemma_ = forms(token.lower_)
        return doc

    return set_forms


# --- tokenizers -----------------------------------------------------------------------------


class CharacterTokenizer:
    """One token per Chinese, Japanese or Korean character; runs of other letters or digits
    ("KN-23", "Shahed") one token; whitespace beyond one space its own token, as spaCy's."""

    def __init__(self, vocab: Any) -> None:
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        words: list[str] = []
        spaces: list[bool] = []
        for match in _CHARACTER_TOKEN.finditer(text):
            token = match.group()
            if token.isspace():
                if words and not spaces[-1] and token.startswith(" "):
                    spaces[-1] = True
                    token = token[1:]
                if not token:
                    continue
            words.append(token)
            spaces.append(False)
        return Doc(self.vocab, words=words, spaces=spaces)


def _blank(code: str) -> Language:
    words = SUPPORT[code].words
    if words == "characters":
        nlp = spacy.blank("xx")
        nlp.tokenizer = CharacterTokenizer(nlp.vocab)
        return nlp
    return spacy.blank(code)


# --- entities -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LanguageAliases(AliasTable):
    """The alias table that also finds a name by its word forms: "Северной Кореи" is
    "Северная Корея" is North Korea. ``lookup`` is what canonical names go through."""

    forms_key: Callable[[str], str] = field(default=str, compare=False, repr=False)
    _by_forms: dict[str, AliasEntry] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_language(cls, table: AliasTable, forms_key: Callable[[str], str]) -> LanguageAliases:
        by_forms = {
            forms_key(surface): entry
            for entry in table.entries
            for surface in (entry.canonical, *entry.aliases)
        }
        base = AliasTable.of(table.entries)
        return cls(base.entries, base._by_surface, base._by_short, forms_key, by_forms)

    def lookup(self, surface: str) -> AliasEntry | None:
        return super().lookup(surface) or self._by_forms.get(self.forms_key(surface))


def _forms_key(nlp: Language, forms: Callable[[str], str]) -> Callable[[str], str]:
    joiner = "" if isinstance(nlp.tokenizer, CharacterTokenizer) else " "

    def key(text: str) -> str:
        tokens = [t for t in nlp.tokenizer(text) if not (t.is_punct or t.is_space)]
        return joiner.join(forms(t.lower_) for t in tokens)

    return key


def ruler_patterns(nlp: Language, table: AliasTable) -> list[dict[str, Any]]:
    """Token patterns for every alias, on the surface and on the word forms."""
    patterns: list[dict[str, Any]] = []
    for entry in table.entries:
        for surface in (entry.canonical, *entry.aliases):
            doc = nlp(surface)
            if is_acronym(surface):
                # "US", "UN" only as written, or the pronoun would be the United States.
                variants = [[{"ORTH": t.text} for t in doc]]
            else:
                variants = [[{"LOWER": t.lower_} for t in doc], [{"LEMMA": t.lemma_} for t in doc]]
            for pattern in variants:
                if pattern and pattern not in (p["pattern"] for p in patterns[-2:]):
                    patterns.append(
                        {"label": entry.label, "pattern": pattern, "id": entry.canonical}
                    )
    return patterns


class NatashaNer:
    """natasha's Russian NER as a spaCy component; the ruler's spans win where they overlap.
    The 170 MB of embeddings load on the first Russian text, not at worker start."""

    def __init__(self) -> None:
        self._models: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._models is None:
            from natasha import NewsEmbedding, NewsNERTagger, Segmenter

            self._models = (Segmenter(), NewsNERTagger(NewsEmbedding()))
        return self._models

    def __call__(self, doc: Doc) -> Doc:
        from natasha import Doc as NatashaDoc

        segmenter, tagger = self._load()
        found = NatashaDoc(doc.text)
        found.segment(segmenter)
        found.tag_ner(tagger)
        spans: list[Span] = list(doc.ents)
        taken = {i for ent in doc.ents for i in range(ent.start, ent.end)}
        for span in found.spans:
            label = _NATASHA_LABELS.get(span.type)
            if label is None:
                continue
            new = doc.char_span(span.start, span.stop, label=label, alignment_mode="expand")
            if new is not None and not taken & set(range(new.start, new.end)):
                spans.append(new)
        doc.ents = filter_spans(spans)
        return doc


@Language.factory("newswatch_natasha_ner")
def make_natasha_ner(nlp: Language, name: str) -> NatashaNer:
    return NatashaNer()


def load_language_pipeline(code: str, aliases: AliasTable) -> tuple[Language, LanguageAliases]:
    """The spaCy pipeline of one non-English language, and its form-aware alias table."""
    check_languages([code])
    nlp = _blank(code)
    nlp.add_pipe("newswatch_word_forms", config={"code": code})
    table = LanguageAliases.for_language(aliases, _forms_key(nlp, word_forms(code)))
    patterns = ruler_patterns(nlp, aliases)
    ruler: Any = nlp.add_pipe("entity_ruler", config={"overwrite_ents": False})
    ruler.add_patterns(patterns)
    if SUPPORT[code].ner:
        nlp.add_pipe("newswatch_natasha_ner")
    nlp.add_pipe("newswatch_paragraph_breaks")
    nlp.add_pipe("sentencizer")
    return nlp, table


def terms_for(rules: Sequence[TopicRule], code: str) -> tuple[TopicRule, ...]:
    """What a language's term index is built from: one rule holding the terms its texts
    are searched for, leaving out those listed only under other languages (Korean "北" is
    North Korea as a word of its own; in Chinese it is in every "北京")."""
    keys: set[str] = set()
    for rule in rules:
        restricted = dict(rule.term_languages)
        keys |= {k for k in rule.terms if code in restricted.get(k, (code,))}
    return (TopicRule(id="terms", title="terms", groups=(frozenset(keys),)),)


# --- routing --------------------------------------------------------------------------------


class RoutedAnalyser:
    """English articles (and those in languages not configured) to the English model, the
    others to their language's pipeline; results in the order the articles came.

    A language's pipeline is built on its first article (about a second each, and the
    Russian NER's 170 MB on its first text): an English-only run pays nothing for the
    other languages. Whether their packages are installed is checked up front.
    """

    def __init__(
        self,
        english: TextAnalyser,
        aliases: AliasTable,
        rules: Sequence[TopicRule],
        languages: Sequence[str],
        batch_size: int,
    ) -> None:
        self.english = english
        self._aliases = aliases
        self._rules = tuple(rules)
        self._languages = frozenset(languages) - {ENGLISH}
        self._batch_size = batch_size
        self._loaded: dict[str, TextAnalyser] = {}

    @classmethod
    def load(
        cls,
        model: str,
        aliases: AliasTable,
        rules: Sequence[TopicRule],
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        batch_size: int = 64,
    ) -> RoutedAnalyser:
        check_languages(languages)
        english = TextAnalyser.load(model, aliases, terms_for(rules, ENGLISH), batch_size)
        return cls(english, aliases, rules, languages, batch_size)

    def analyser_for(self, language: str | None) -> TextAnalyser:
        if language not in self._languages:
            return self.english
        analyser = self._loaded.get(language)
        if analyser is None:
            nlp, table = load_language_pipeline(language, self._aliases)
            terms = terms_for(self._rules, language)
            analyser = self._loaded[language] = TextAnalyser(nlp, table, terms, self._batch_size)
        return analyser

    def analyse_articles(
        self, articles: Sequence[Article], max_chars: int
    ) -> Iterator[tuple[Article, TextAnalysis]]:
        routes: dict[int, list[int]] = {}
        analysers: dict[int, TextAnalyser] = {}
        for i, article in enumerate(articles):
            analyser = self.analyser_for(article.language)
            routes.setdefault(id(analyser), []).append(i)
            analysers[id(analyser)] = analyser
        results: dict[int, tuple[Article, TextAnalysis]] = {}
        for key, indexes in routes.items():
            batch = [articles[i] for i in indexes]
            for i, result in zip(
                indexes, analysers[key].analyse_articles(batch, max_chars), strict=True
            ):
                results[i] = result
        for i in range(len(articles)):
            yield results[i]
