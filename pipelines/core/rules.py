"""Watched-topic rules: matching them against an analysed text.

A rule is one or more *patterns*; the topic matches when any pattern does. A pattern says
which groups of terms must co-occur inside one scope (a sentence, a paragraph, the whole
document, optionally within N words), in how many scopes, and which terms veto it there
(``unless``). The rule's ``none`` terms veto the topic anywhere in the document. Term
occurrences are found by the NLP stage (``nlp.py``); this module only evaluates the
boolean structure, so it is plain Python. Reading the rules' YAML form is
``rule_files.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from newswatch.pipelines.core.aliases import fold_typography
from newswatch.schemas import TopicMatch

SCOPES = ("sentence", "paragraph", "document")
ENTITY_PREFIX = "entity:"
MAX_EVIDENCE = 5
MAX_EVIDENCE_CHARS = 500

_SPACE = re.compile(r"\s+")

Unit = tuple[int, ...]  # the indexes of the sentences one scope holds, in text order


def term_key(term: str) -> str:
    """How a term is keyed in an analysis: case-folded, typography and whitespace folded,
    prefix kept."""
    term = _SPACE.sub(" ", fold_typography(term)).strip()
    if term.lower().startswith(ENTITY_PREFIX):
        return ENTITY_PREFIX + term[len(ENTITY_PREFIX) :].strip().casefold()
    return term.casefold()


def is_entity_term(key: str) -> bool:
    return key.startswith(ENTITY_PREFIX)


@dataclass(frozen=True)
class Pattern:
    """Every group has a term inside one scope, in at least ``min_matches`` scopes.

    ``within``: the groups' terms must also start at most that many words apart.
    ``unless``: a scope holding any of these terms does not count.
    """

    scope: str
    groups: tuple[frozenset[str], ...]
    min_matches: int = 1
    within: int | None = None
    unless: frozenset[str] = frozenset()

    @property
    def terms(self) -> frozenset[str]:
        return frozenset().union(*self.groups, self.unless)


@dataclass(frozen=True)
class TopicRule:
    """A watched topic. Its own ``scope``/``groups``/... are its first pattern (the rule
    files' top-level ``all``); ``alternatives`` are the further ``patterns``."""

    id: str
    title: str
    scope: str = "sentence"
    groups: tuple[frozenset[str], ...] = ()  # term keys; every group must hit inside one scope
    none: frozenset[str] = frozenset()
    min_matches: int = 1
    min_score: float = 0.0  # alerts only at or above this score; the match is stored regardless
    description: str = ""
    within: int | None = None
    unless: frozenset[str] = frozenset()
    alternatives: tuple[Pattern, ...] = ()
    # (term key, languages) of the terms listed only under languages other than English
    # (``any: {ru: [...]}``): only those languages' texts are searched for them.
    term_languages: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def patterns(self) -> tuple[Pattern, ...]:
        own = Pattern(self.scope, self.groups, self.min_matches, self.within, self.unless)
        return ((own,) if self.groups else ()) + self.alternatives

    @property
    def terms(self) -> frozenset[str]:
        return frozenset().union(*(p.terms for p in self.patterns), self.none)


@dataclass(frozen=True)
class AnalysedSentence:
    text: str
    paragraph: int  # 0 is the title
    terms: frozenset[str]  # keys of the rule terms that occur in this sentence
    # (term key, word number in the document) of each occurrence: what `within` measures.
    positions: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class TextAnalysis:
    sentences: tuple[AnalysedSentence, ...]

    @property
    def terms(self) -> frozenset[str]:
        return frozenset().union(*(s.terms for s in self.sentences))


@dataclass(frozen=True)
class PatternOutcome:
    """How one pattern fared on one text: what ``match_topic`` and explanations read."""

    pattern: Pattern
    units: tuple[Unit, ...]  # the scopes that satisfy it
    vetoed: tuple[Unit, ...]  # scopes with every group that an ``unless`` term vetoed
    title: bool  # whether the title alone satisfies it

    @property
    def matched(self) -> bool:
        return bool(self.units) and len(self.units) >= self.pattern.min_matches


def match_topics(analysis: TextAnalysis, rules: Sequence[TopicRule]) -> tuple[TopicMatch, ...]:
    """Every rule the text satisfies, with its score and evidence sentences.

    The score grows with the number of satisfying scopes (``1 - 0.5 ** n``), and a
    satisfying title counts once more: one satisfying sentence scores 0.5, a headline
    plus two body sentences 0.9375.
    """
    matches = []
    for rule in rules:
        match = match_topic(analysis, rule)
        if match is not None:
            matches.append(match)
    return tuple(matches)


def match_topic(analysis: TextAnalysis, rule: TopicRule) -> TopicMatch | None:
    if vetoing_terms(analysis, rule):
        return None
    matched = [o for o in (pattern_outcome(analysis, p) for p in rule.patterns) if o.matched]
    if not matched:
        return None
    # A scope two patterns agree on counts once.
    units = {unit for outcome in matched for unit in outcome.units}
    weight = len(units) + (1 if any(o.title for o in matched) else 0)
    score = round(1.0 - 0.5**weight, 6)
    return TopicMatch(id=rule.id, score=score, evidence=_evidence(analysis, matched))


def vetoing_terms(analysis: TextAnalysis, rule: TopicRule) -> frozenset[str]:
    """The rule's ``none`` terms the document holds: any of them stops the topic."""
    return rule.none & analysis.terms


def pattern_outcome(analysis: TextAnalysis, pattern: Pattern) -> PatternOutcome:
    units: list[Unit] = []
    vetoed: list[Unit] = []
    for scope in scope_units(analysis, pattern.scope):
        for unit in _satisfying(analysis, scope, pattern):
            blocked = pattern.unless & _terms_of(analysis, scope)
            target = vetoed if blocked else units
            if unit not in target:
                target.append(unit)
    title = tuple(i for i, s in enumerate(analysis.sentences) if s.paragraph == 0)
    title_ok = bool(title) and bool(_satisfying(analysis, title, pattern))
    title_ok = title_ok and not pattern.unless & _terms_of(analysis, title)
    return PatternOutcome(pattern, tuple(units), tuple(vetoed), title_ok)


def scope_units(analysis: TextAnalysis, scope: str) -> list[Unit]:
    """The sentences of each sentence, paragraph or document scope of the text."""
    indexes = range(len(analysis.sentences))
    if scope == "sentence":
        return [(i,) for i in indexes]
    if scope == "paragraph":
        paragraphs: dict[int, list[int]] = {}
        for i in indexes:
            paragraphs.setdefault(analysis.sentences[i].paragraph, []).append(i)
        return [tuple(p) for p in paragraphs.values()]
    return [tuple(indexes)] if indexes else []


def _terms_of(analysis: TextAnalysis, unit: Unit) -> frozenset[str]:
    return frozenset().union(*(analysis.sentences[i].terms for i in unit))


def _satisfying(analysis: TextAnalysis, scope: Unit, pattern: Pattern) -> list[Unit]:
    """The scope itself when every group hits in it; with ``within``, the stretches of
    sentences that hold every group's terms close enough together."""
    present = _terms_of(analysis, scope)
    if not all(group & present for group in pattern.groups):
        return []
    if pattern.within is None:
        return [scope]
    return _windows(analysis, scope, pattern.groups, pattern.within)


def _windows(
    analysis: TextAnalysis, scope: Unit, groups: tuple[frozenset[str], ...], within: int
) -> list[Unit]:
    """For each term occurrence, the earliest following occurrence of each group no more
    than ``within`` words on; where all are found, the sentences from first to last."""
    hits = sorted(
        (word, g, i)
        for i in scope
        for key, word in analysis.sentences[i].positions
        for g, group in enumerate(groups)
        if key in group
    )
    found: list[Unit] = []
    for start, (word, _, first) in enumerate(hits):
        last: dict[int, int] = {}
        for later_word, g, i in hits[start:]:
            if later_word - word > within:
                break
            last.setdefault(g, i)
        if len(last) == len(groups):
            unit = tuple(range(first, max(last.values()) + 1))
            if unit not in found:
                found.append(unit)
    return found


def _evidence(analysis: TextAnalysis, matched: Sequence[PatternOutcome]) -> tuple[str, ...]:
    """The sentences that carry the match, those hitting the most groups first, in text order."""
    hits_at: dict[int, int] = {}
    for outcome in matched:
        for unit in outcome.units:
            for i in unit:
                terms = analysis.sentences[i].terms
                hits = sum(1 for group in outcome.pattern.groups if group & terms)
                hits_at[i] = max(hits, hits_at.get(i, 0))
    candidates: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for i in sorted(hits_at):
        text = _SPACE.sub(" ", analysis.sentences[i].text).strip()[:MAX_EVIDENCE_CHARS]
        # Repeats are dropped before the cap, so they take no place a new sentence could.
        if hits_at[i] and text not in seen:
            seen.add(text)
            candidates.append((-hits_at[i], i, text))
    best = sorted(candidates)[:MAX_EVIDENCE]
    return tuple(text for _, _, text in sorted(best, key=lambda c: c[1]))
