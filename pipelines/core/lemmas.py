"""Lemmas without running a tagger on every article.

A topic term matches on its lemma ("weapon" finds "weapons"). The terms are few and known
when the rules load: the model's own tagger, attribute ruler and lemmatizer lemmatize them
then, once (``lemmatized``). Text words are many: each gets every lemma the model's
lemmatizer tables allow it as a noun, verb or adjective (``WordLemmas``), looked up once per
distinct word, which on news text covers the lemma the tagger would have chosen for
99.8 % of nouns, verbs and adjectives (the rest are guesses for unknown words that the
tables do not hold, such as "showcasing").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from spacy.tokens import Doc

__all__ = ["LEMMA_POS", "TERM_LEMMA_COMPONENTS", "WordLemmas", "lemmatized"]

# Loaded but not run on articles: they lemmatize the rule terms once (``TermIndex.build``),
# and the lemmatizer's tables give text words their lemmas (``WordLemmas``).
TERM_LEMMA_COMPONENTS = ("tok2vec", "tagger", "attribute_ruler", "lemmatizer")
# The parts of speech whose lemmas a text word may have; the rest keep their surface form.
LEMMA_POS = ("noun", "verb", "adj")
# Distinct words whose lemmas a worker remembers: a long-running stream meets new words
# (names, numbers) without end.
MAX_CACHED_WORDS = 200_000


def lemmatized(nlp: Any, texts: Sequence[str]) -> list[Doc]:
    """``texts`` tagged and lemmatized by the model's own components, disabled or not (they
    run on the rule terms only, once, when the rules load). A pipeline without them (the
    other languages', which lemmatize or stem every word as they run) runs as it is."""
    if not set(TERM_LEMMA_COMPONENTS) <= set(nlp.component_names):
        return list(nlp.pipe(texts))
    docs = [nlp.make_doc(text) for text in texts]
    for name in TERM_LEMMA_COMPONENTS:
        # A tagger reads the tok2vec output the documents carry (doc.tensor).
        docs = list(nlp.get_pipe(name).pipe(docs))
    return docs


class WordLemmas:
    """Every lemma a lower-cased word may have as a noun, verb or adjective, and the word.

    The model's rule lemmatizer without a tagger: its exceptions and suffix rules for each
    part of speech, keeping the forms its word index knows (a tagger would have chosen one
    of them by context; a rule term matches when its lemma is any of them). A form the index
    does not know is taken only for a word it does not know either, as a noun: "news" is
    not "new", "uavs" is "uav".

    >>> from newswatch.pipelines.core.aliases import AliasTable
    >>> from newswatch.pipelines.core.nlp import load_pipeline
    >>> lemmas = WordLemmas.of(load_pipeline("auto", AliasTable()))
    >>> [sorted(lemmas(w)) for w in ("weapons", "went", "news", "uavs")]
    [['weapon', 'weapons'], ['go', 'went'], ['news'], ['uav', 'uavs']]
    """

    def __init__(
        self,
        rules: dict[str, list[tuple[str, str]]],
        exceptions: dict[str, dict[str, list[str]]],
        index: dict[str, set[str]],
    ) -> None:
        self._rules = rules
        self._exceptions = exceptions
        self._index = index
        self._cache: dict[str, frozenset[str]] = {}

    @classmethod
    def of(cls, nlp: Any) -> WordLemmas | None:
        """The tables of the pipeline's (disabled) lemmatizer; None when it has none, and
        its Docs carry their own lemmas (the other languages' pipelines)."""
        if "lemmatizer" not in nlp.component_names:
            return None
        lookups = nlp.get_pipe("lemmatizer").lookups
        tables = {
            name: lookups.get_table(name, {})
            for name in ("lemma_rules", "lemma_exc", "lemma_index")
        }
        return cls(
            {pos: [tuple(r) for r in tables["lemma_rules"].get(pos, [])] for pos in LEMMA_POS},
            {pos: dict(tables["lemma_exc"].get(pos, {})) for pos in LEMMA_POS},
            {pos: set(tables["lemma_index"].get(pos, [])) for pos in LEMMA_POS},
        )

    def __call__(self, word: str) -> frozenset[str]:
        known = self._cache.get(word)
        if known is None:
            if len(self._cache) >= MAX_CACHED_WORDS:
                self._cache.clear()
            known = self._cache[word] = self._lemmas(word)
        return known

    def _lemmas(self, word: str) -> frozenset[str]:
        forms = {word}
        for pos in LEMMA_POS:
            forms.update(self._exceptions[pos].get(word, ()))
            forms.update(form for form in self._rule_forms(word, pos) if form in self._index[pos])
        if len(forms) == 1 and not any(word in self._index[pos] for pos in LEMMA_POS):
            # A word the tables do not know ("uavs", "shaheds", "oblasts"): as spaCy does
            # for the part of speech it is tagged with, take what the rules make of it, for
            # nouns only (a plural is the usual case; verb rules would turn most unknown
            # plurals into unknown verbs).
            forms.update(self._rule_forms(word, "noun"))
        return frozenset(forms)

    def _rule_forms(self, word: str, pos: str) -> Iterator[str]:
        for old, new in self._rules[pos]:
            if word.endswith(old) and len(word) > len(old) - len(new):
                form = word[: len(word) - len(old)] + new
                if form:
                    yield form
