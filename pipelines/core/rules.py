"""Watched-topic rules: their YAML form, and matching them against an analysed text.

A rule says which groups of terms must co-occur inside one scope (a sentence, a
paragraph, or the whole document). Term occurrences are found by the NLP stage
(``nlp.py``); this module only evaluates the boolean structure, so it is plain Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from newswatch.pipelines.control.errors import ConfigError
from newswatch.schemas import TopicMatch

SCOPES = ("sentence", "paragraph", "document")
ENTITY_PREFIX = "entity:"
MAX_EVIDENCE = 5
MAX_EVIDENCE_CHARS = 500

_TOPIC_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SPACE = re.compile(r"\s+")
_RULE_KEYS = {"id", "title", "description", "scope", "all", "none", "min_matches", "min_score"}


def term_key(term: str) -> str:
    """How a term is keyed in an analysis: case-folded, whitespace folded, prefix kept."""
    term = _SPACE.sub(" ", term).strip()
    if term.lower().startswith(ENTITY_PREFIX):
        return ENTITY_PREFIX + term[len(ENTITY_PREFIX) :].strip().casefold()
    return term.casefold()


def is_entity_term(key: str) -> bool:
    return key.startswith(ENTITY_PREFIX)


@dataclass(frozen=True)
class TopicRule:
    id: str
    title: str
    scope: str
    groups: tuple[frozenset[str], ...]  # term keys; every group must hit inside one scope
    none: frozenset[str] = frozenset()
    min_matches: int = 1
    min_score: float = 0.0  # alerts only at or above this score; the match is stored regardless
    description: str = ""

    @property
    def terms(self) -> frozenset[str]:
        return frozenset().union(*self.groups, self.none)


@dataclass(frozen=True)
class AnalysedSentence:
    text: str
    paragraph: int  # 0 is the title
    terms: frozenset[str]  # keys of the rule terms that occur in this sentence


@dataclass(frozen=True)
class TextAnalysis:
    sentences: tuple[AnalysedSentence, ...]

    @property
    def terms(self) -> frozenset[str]:
        return frozenset().union(*(s.terms for s in self.sentences))


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
    if rule.none & analysis.terms:
        return None
    satisfied = [scope for scope in _scopes(analysis, rule.scope) if _satisfies(scope, rule)]
    if len(satisfied) < rule.min_matches or not satisfied:
        return None
    title = tuple(s for s in analysis.sentences if s.paragraph == 0)
    weight = len(satisfied) + (1 if title and _satisfies(title, rule) else 0)
    score = round(1.0 - 0.5**weight, 6)
    return TopicMatch(id=rule.id, score=score, evidence=_evidence(satisfied, rule))


def _scopes(analysis: TextAnalysis, scope: str) -> list[tuple[AnalysedSentence, ...]]:
    sentences = analysis.sentences
    if scope == "sentence":
        return [(s,) for s in sentences]
    if scope == "paragraph":
        paragraphs: dict[int, list[AnalysedSentence]] = {}
        for s in sentences:
            paragraphs.setdefault(s.paragraph, []).append(s)
        return [tuple(p) for p in paragraphs.values()]
    return [tuple(sentences)] if sentences else []


def _satisfies(scope: tuple[AnalysedSentence, ...], rule: TopicRule) -> bool:
    present = frozenset().union(*(s.terms for s in scope))
    return all(group & present for group in rule.groups)


def _evidence(scopes: Iterable[tuple[AnalysedSentence, ...]], rule: TopicRule) -> tuple[str, ...]:
    """The sentences that carry the match, those hitting the most groups first, in text order."""
    candidates: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    order = 0
    for scope in scopes:
        for sentence in scope:
            hits = sum(1 for group in rule.groups if group & sentence.terms)
            text = _SPACE.sub(" ", sentence.text).strip()[:MAX_EVIDENCE_CHARS]
            # Repeats are dropped before the cap, so they take no place a new sentence could.
            if hits and text not in seen:
                seen.add(text)
                candidates.append((-hits, order, text))
            order += 1
    best = sorted(candidates)[:MAX_EVIDENCE]
    return tuple(text for _, _, text in sorted(best, key=lambda c: c[1]))


def parse_topic_rules(data: Any, file: str) -> tuple[TopicRule, ...]:
    """Topic rules from their YAML form (a mapping with the key ``topics``)."""
    if not isinstance(data, Mapping) or set(data) != {"topics"}:
        raise ConfigError(file, "", "a topics file is a mapping with the single key 'topics'")
    raw_rules = data["topics"]
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ConfigError(file, "topics", "must be a non-empty list of topic rules")
    rules: list[TopicRule] = []
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, file, f"topics[{i}]")
        if any(r.id == rule.id for r in rules):
            raise ConfigError(file, f"topics[{i}].id", f"duplicate topic id {rule.id!r}")
        rules.append(rule)
    return tuple(rules)


def _parse_rule(raw: Any, file: str, path: str) -> TopicRule:
    if not isinstance(raw, Mapping):
        raise ConfigError(file, path, "must be a mapping")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise ConfigError(
            file, f"{path}.{unknown[0]}", f"unknown key (expected one of {sorted(_RULE_KEYS)})"
        )
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
    scope = raw.get("scope", "sentence")
    if scope not in SCOPES:
        raise ConfigError(file, f"{path}.scope", f"must be one of {', '.join(SCOPES)}")
    groups = _parse_groups(raw.get("all"), file, f"{path}.all")
    none = frozenset(_parse_terms(raw.get("none", []), file, f"{path}.none", allow_empty=True))
    min_matches = raw.get("min_matches", 1)
    if isinstance(min_matches, bool) or not isinstance(min_matches, int) or min_matches < 1:
        raise ConfigError(file, f"{path}.min_matches", "must be a whole number >= 1")
    min_score = raw.get("min_score", 0.0)
    if isinstance(min_score, bool) or not isinstance(min_score, int | float):
        raise ConfigError(file, f"{path}.min_score", "must be a number in [0, 1]")
    if not 0.0 <= float(min_score) <= 1.0:
        raise ConfigError(file, f"{path}.min_score", "must be a number in [0, 1]")
    return TopicRule(
        id=topic_id,
        title=title.strip(),
        scope=scope,
        groups=groups,
        none=none,
        min_matches=min_matches,
        min_score=float(min_score),
        description=description.strip(),
    )


def _parse_groups(raw: Any, file: str, path: str) -> tuple[frozenset[str], ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(file, path, "must be a non-empty list of groups like {any: [terms]}")
    groups = []
    for i, group in enumerate(raw):
        gpath = f"{path}[{i}]"
        if not isinstance(group, Mapping) or set(group) != {"any"}:
            raise ConfigError(file, gpath, "must be a mapping with the single key 'any'")
        groups.append(frozenset(_parse_terms(group["any"], file, f"{gpath}.any")))
    return tuple(groups)


def _parse_terms(raw: Any, file: str, path: str, allow_empty: bool = False) -> list[str]:
    if not isinstance(raw, list) or (not raw and not allow_empty):
        raise ConfigError(file, path, "must be a non-empty list of terms")
    keys = []
    for i, term in enumerate(raw):
        if not isinstance(term, str) or not term.strip():
            raise ConfigError(file, f"{path}[{i}]", "must be a non-empty string")
        key = term_key(term)
        if key == ENTITY_PREFIX or (not is_entity_term(key) and not any(c.isalnum() for c in key)):
            raise ConfigError(file, f"{path}[{i}]", f"term {term!r} has nothing to match")
        keys.append(key)
    return keys
