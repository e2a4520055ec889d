"""Watched-topic rules: matching them against an analysed text.

A rule is one or more *patterns*; the topic matches when any pattern does. A pattern says
which groups of terms must co-occur inside one scope (a sentence, a paragraph, the whole
document, optionally within N words), in how many scopes, and which terms veto it there
(``unless``). The rule's ``none`` terms veto the topic anywhere in the document. Term
occurrences are found by the NLP stage (``nlp.py``); this module only evaluates the
boolean structure, so it is plain Python, as is reading the rules' YAML form.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.core.aliases import fold_typography
from newswatch.schemas import TopicMatch

SCOPES = ("sentence", "paragraph", "document")
ENTITY_PREFIX = "entity:"
MAX_EVIDENCE = 5
MAX_EVIDENCE_CHARS = 500

_SPACE = re.compile(r"\s+")
_TOPIC_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_PATTERN_KEYS = {"scope", "all", "unless", "within", "min_matches"}
_RULE_KEYS = {"id", "title", "description", "none", "min_score", "patterns"} | _PATTERN_KEYS
_FILE_KEYS = {"topics", "terms"}

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


# --- the YAML form ------------------------------------------------------------------------------


def parse_topic_rules(data: Any, file: str) -> tuple[TopicRule, ...]:
    """Topic rules from their YAML form: ``topics``, and optional named ``terms`` sets."""
    if not isinstance(data, Mapping) or "topics" not in data:
        raise ConfigError(file, "", "a topics file is a mapping with the key 'topics'")
    _no_unknown_keys(data, _FILE_KEYS, file, "")
    languages: dict[str, set[str]] = {}
    term_sets = _parse_term_sets(data.get("terms", {}), file, languages)
    raw_rules = data["topics"]
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ConfigError(file, "topics", "must be a non-empty list of topic rules")
    rules: list[TopicRule] = []
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, _Terms(file, term_sets, languages), f"topics[{i}]")
        if any(r.id == rule.id for r in rules):
            raise ConfigError(file, f"topics[{i}].id", f"duplicate topic id {rule.id!r}")
        rules.append(rule)
    return tuple(rules)


def _no_unknown_keys(raw: Mapping[str, Any], known: set[str], file: str, path: str) -> None:
    unknown = sorted(set(raw) - known, key=str)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else str(unknown[0])
        raise ConfigError(file, where, f"unknown key (expected one of {sorted(known)})")


def _parse_term_sets(raw: Any, file: str, languages: dict[str, set[str]]) -> dict[str, list[str]]:
    if not isinstance(raw, Mapping):
        raise ConfigError(file, "terms", "must be a mapping of set names to lists of terms")
    sets: dict[str, list[str]] = {}
    for name, terms in raw.items():
        if not isinstance(name, str) or not _SET_NAME.fullmatch(name):
            raise ConfigError(file, f"terms.{name}", "a set name is letters, digits, '_' or '-'")
        sets[name] = _Terms(file, {}, languages).keys(terms, f"terms.{name}")
    return sets


@dataclass(frozen=True)
class _Terms:
    """Reads term lists of one file, expanding ``$name`` to the named set's terms."""

    file: str
    sets: Mapping[str, list[str]]
    # term key -> the languages it is listed under; "*" for a plain or English list
    languages: dict[str, set[str]]

    def keys(
        self, raw: Any, path: str, allow_empty: bool = False, language: str = "*"
    ) -> list[str]:
        if isinstance(raw, Mapping):
            return self._by_language(raw, path)
        if not isinstance(raw, list) or (not raw and not allow_empty):
            raise ConfigError(self.file, path, "must be a non-empty list of terms")
        keys = []
        for i, term in enumerate(raw):
            if not isinstance(term, str) or not term.strip():
                raise ConfigError(self.file, f"{path}[{i}]", "must be a non-empty string")
            if term.strip().startswith("$"):
                name = term.strip()[1:]
                if name not in self.sets:
                    known = ", ".join(f"${n}" for n in self.sets) or "none"
                    raise ConfigError(
                        self.file, f"{path}[{i}]", f"no term set {term!r} (defined: {known})"
                    )
                keys.extend(self.sets[name])
                continue
            key = term_key(term)
            # English lists hold names and codes that other languages' texts also write
            # in Latin letters ("KN-23", "Shahed"): searched everywhere, as plain lists.
            self.languages.setdefault(key, set()).add("*" if language == "en" else language)
            if key == ENTITY_PREFIX or (
                not is_entity_term(key) and not any(c.isalnum() for c in key)
            ):
                raise ConfigError(self.file, f"{path}[{i}]", f"term {term!r} has nothing to match")
            keys.append(key)
        return keys

    def restricted(self, keys: frozenset[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The keys listed only under non-English languages, with those languages."""
        return tuple(
            (key, tuple(sorted(listed)))
            for key in sorted(keys)
            if (listed := self.languages.get(key)) and "*" not in listed
        )

    def _by_language(self, raw: Mapping[Any, Any], path: str) -> list[str]:
        """Terms listed per language (``{en: [...], ru: [...]}``): every list is read as
        one, since each language's pipeline matches only what its texts can hold."""
        if not raw:
            raise ConfigError(self.file, path, "must be a non-empty list of terms")
        keys = []
        for language, terms in raw.items():
            if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
                raise ConfigError(self.file, f"{path}.{language}", "must be an ISO 639-1 code")
            keys.extend(self.keys(terms, f"{path}.{language}", language=language))
        return keys

    def groups(self, raw: Any, path: str) -> tuple[frozenset[str], ...]:
        if not isinstance(raw, list) or not raw:
            raise ConfigError(
                self.file, path, "must be a non-empty list of groups like {any: [terms]}"
            )
        groups = []
        for i, group in enumerate(raw):
            gpath = f"{path}[{i}]"
            if not isinstance(group, Mapping) or set(group) != {"any"}:
                raise ConfigError(self.file, gpath, "must be a mapping with the single key 'any'")
            groups.append(frozenset(self.keys(group["any"], f"{gpath}.any")))
        return tuple(groups)


def _parse_rule(raw: Any, terms: _Terms, path: str) -> TopicRule:
    file = terms.file
    if not isinstance(raw, Mapping):
        raise ConfigError(file, path, "must be a mapping")
    _no_unknown_keys(raw, _RULE_KEYS, file, path)
    topic_id = raw.get("id")
    if not isinstance(topic_id, str) or not _TOPIC_ID.fullmatch(topic_id):
        raise ConfigError(
            file, f"{path}.id", "must be a lower-case id of letters, digits, '.', '_' or '-'"
        )
    title = raw.get("title", topic_id)
    if not isinstance(title, str) or not title.strip():
        raise ConfigError(file, f"{path}.title", "must be a non-empty string")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(file, f"{path}.description", "must be a string")
    none = frozenset(terms.keys(raw.get("none", []), f"{path}.none", allow_empty=True))
    min_score = raw.get("min_score", 0.0)
    if isinstance(min_score, bool) or not isinstance(min_score, int | float):
        raise ConfigError(file, f"{path}.min_score", "must be a number in [0, 1]")
    if not 0.0 <= float(min_score) <= 1.0:
        raise ConfigError(file, f"{path}.min_score", "must be a number in [0, 1]")
    own = None
    if "all" in raw or "patterns" not in raw:
        own = _parse_pattern(raw, terms, path)
    elif stray := sorted(_PATTERN_KEYS & set(raw)):
        raise ConfigError(
            file, f"{path}.{stray[0]}", "without 'all', put it inside each of 'patterns'"
        )
    alternatives = _parse_patterns(raw.get("patterns", []), terms, f"{path}.patterns")
    rule = TopicRule(
        id=topic_id,
        title=title.strip(),
        scope=own.scope if own else "sentence",
        groups=own.groups if own else (),
        none=none,
        min_matches=own.min_matches if own else 1,
        min_score=float(min_score),
        description=description.strip(),
        within=own.within if own else None,
        unless=own.unless if own else frozenset(),
        alternatives=alternatives,
    )
    return dataclasses.replace(rule, term_languages=terms.restricted(rule.terms))


def _parse_patterns(raw: Any, terms: _Terms, path: str) -> tuple[Pattern, ...]:
    if not isinstance(raw, list):
        raise ConfigError(terms.file, path, "must be a list of patterns like {all: [groups]}")
    patterns = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ConfigError(terms.file, f"{path}[{i}]", "must be a mapping")
        _no_unknown_keys(item, _PATTERN_KEYS, terms.file, f"{path}[{i}]")
        patterns.append(_parse_pattern(item, terms, f"{path}[{i}]"))
    return tuple(patterns)


def _parse_pattern(raw: Mapping[str, Any], terms: _Terms, path: str) -> Pattern:
    file = terms.file
    scope = raw.get("scope", "sentence")
    if scope not in SCOPES:
        raise ConfigError(file, f"{path}.scope", f"must be one of {', '.join(SCOPES)}")
    groups = terms.groups(raw.get("all"), f"{path}.all")
    unless = frozenset(terms.keys(raw.get("unless", []), f"{path}.unless", allow_empty=True))
    min_matches = raw.get("min_matches", 1)
    if isinstance(min_matches, bool) or not isinstance(min_matches, int) or min_matches < 1:
        raise ConfigError(file, f"{path}.min_matches", "must be a whole number >= 1")
    within = raw.get("within")
    if within is not None and (
        isinstance(within, bool) or not isinstance(within, int) or within < 1
    ):
        raise ConfigError(file, f"{path}.within", "must be a whole number of words >= 1")
    return Pattern(scope, groups, min_matches, within, unless)
