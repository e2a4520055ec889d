"""Watched-topic rules from their YAML form (``topics.yaml``): patterns, named term sets,
terms per language; every mistake a ``ConfigError`` naming its key path."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.core.rules import (
    ENTITY_PREFIX,
    SCOPES,
    Pattern,
    TopicRule,
    is_entity_term,
    term_key,
)

__all__ = ["parse_topic_rules"]

_TOPIC_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_PATTERN_KEYS = {"scope", "all", "unless", "within", "min_matches"}
_RULE_KEYS = {"id", "title", "description", "none", "min_score", "patterns"} | _PATTERN_KEYS
_FILE_KEYS = {"topics", "terms"}


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
