"""Canonical entity names: the alias table and the mapping from NER spans to it.

The table is data (``defaults/aliases.yaml``, extensible from config): each entry names a
canonical entity, its label, the surface forms that always mean it (``aliases``) and short
forms that mean it only in a document that also names it in full (``short_forms``: "Kim"
is Kim Jong Un only where Kim Jong Un is named).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from newswatch.pipelines.control.errors import ConfigError
from newswatch.schemas import Entity

# Labels worth watching; dates, numbers and quantities are not entities an analyst follows.
KEPT_LABELS = frozenset(
    {"PERSON", "ORG", "GPE", "NORP", "LOC", "EVENT", "FAC", "PRODUCT", "LAW", "WORK_OF_ART"}
)

# Typographic variants of one character: sites differ in quotes, dashes and spaces, and
# "People’s Liberation Army" must be the same name as "People's Liberation Army".
_TYPOGRAPHY = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u02bc\u2032\uff07", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\uff02", '"'),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        **dict.fromkeys("\u00a0\u2007\u202f\u2009\u200a", " "),
        "\u00ad": None,  # soft hyphen
        "\u200b": None,  # zero-width space
    }
)
_SPACE = re.compile(r"\s+")
_POSSESSIVE = re.compile(r"'s$")
_LEADING_POSSESSIVE = re.compile(r"^(.+?)'s (.+)$")
# Single words NER tags as a name when they are part of one ("Defense" of "Defense
# Secretary", "State" of "Secretary of State", "Joint" of "Joint Chiefs"), and common
# nouns written as acronyms. On their own they name nothing an analyst follows.
GENERIC_WORDS = frozenset(
    """
    north south east west northern southern eastern central joint state states defense
    defence army navy ministry minister department agency council committee government
    office command forces force president secretary chief chiefs staff foreign interior
    military intelligence security national federal republic people background lots
    uav uavs drone drones icbm icbms srbm srbms slbm pow pows
    """.split()
)


def fold_typography(text: str) -> str:
    r"""Curly quotes and apostrophes straight, dashes as hyphens, odd spaces as spaces.

    >>> fold_typography("People\u2019s \u201cArmy\u201d\u00a0\u2013 Kim")
    'People\'s "Army" - Kim'
    """
    return text.translate(_TYPOGRAPHY)


def surface_key(text: str) -> str:
    """The lookup key of a surface form: case-folded, hyphens as spaces, no article or 's."""
    key = _SPACE.sub(" ", fold_typography(text).replace("-", " ")).strip().casefold()
    key = _POSSESSIVE.sub("", key)
    if key.startswith("the "):
        key = key[4:]
    return key


def display_name(text: str) -> str:
    """A span as a readable name: typography and whitespace folded, no leading article,
    no possessive."""
    name = _SPACE.sub(" ", fold_typography(text)).strip()
    name = _POSSESSIVE.sub("", name)
    if name[:4].lower() == "the ":
        name = name[4:]
    return name


@dataclass(frozen=True)
class AliasEntry:
    canonical: str
    label: str
    aliases: tuple[str, ...] = ()
    short_forms: tuple[str, ...] = ()


@dataclass(frozen=True)
class AliasTable:
    entries: tuple[AliasEntry, ...] = ()
    _by_surface: dict[str, AliasEntry] = field(default_factory=dict, compare=False, repr=False)
    _by_short: dict[str, AliasEntry] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, entries: Iterable[AliasEntry]) -> AliasTable:
        """Later entries override earlier ones, so a user table can refine the bundled one."""
        merged: dict[str, AliasEntry] = {}
        for entry in entries:
            # Moved to the end, so its surface forms also win over earlier entries' ones.
            merged.pop(entry.canonical, None)
            merged[entry.canonical] = entry
        by_surface: dict[str, AliasEntry] = {}
        by_short: dict[str, AliasEntry] = {}
        for entry in merged.values():
            for surface in (entry.canonical, *entry.aliases):
                by_surface[surface_key(surface)] = entry
            for short in entry.short_forms:
                by_short[surface_key(short)] = entry
        return cls(tuple(merged.values()), by_surface, by_short)

    def merged_with(self, other: AliasTable) -> AliasTable:
        return AliasTable.of((*self.entries, *other.entries))

    def lookup(self, surface: str) -> AliasEntry | None:
        return self._by_surface.get(surface_key(surface))

    def lookup_short(self, surface: str) -> AliasEntry | None:
        return self._by_short.get(surface_key(surface))

    def ruler_patterns(self, *, acronyms: bool) -> list[dict[str, Any]]:
        """Phrase patterns for spaCy's EntityRuler, so aliases NER misses are still found:
        the acronyms ("US", "UN", "ROK"), to be matched only as written, or the other
        names, to be matched in any case. Matched in any case, the pronoun "us" would
        become the United States."""
        patterns: list[dict[str, Any]] = []
        for entry in self.entries:
            for surface in (entry.canonical, *entry.aliases):
                if is_acronym(surface) != acronyms:
                    continue
                patterns.append({"label": entry.label, "pattern": surface, "id": entry.canonical})
                if "'" in surface:  # the matcher compares text as written: curly too
                    curly = surface.replace("'", "\u2019")
                    patterns.append({"label": entry.label, "pattern": curly, "id": entry.canonical})
        return patterns


def is_acronym(surface: str) -> bool:
    letters = [c for c in surface if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters) and len(letters) <= 6


def canonical_entities(spans: Sequence[tuple[str, str]], table: AliasTable) -> tuple[Entity, ...]:
    """Map (text, label) spans of one document to entities with canonical names.

    >>> table = AliasTable.of([AliasEntry("North Korea", "GPE", ("DPRK",))])
    >>> canonical_entities([("DPRK", "ORG")], table)
    (Entity(text='DPRK', label='ORG', canonical='North Korea'),)
    """
    # A document names the same things many times: each distinct span is looked at once.
    distinct = dict.fromkeys(spans)
    kept = [
        (text, label) for text, label in distinct if label in KEPT_LABELS and is_name(text, table)
    ]
    named = {entry.canonical for text, _ in kept if (entry := _full_name(text, table))}
    seen: set[tuple[str, str, str]] = set()
    out: list[Entity] = []
    for text, label in kept:
        canonical = canonical_name(text, table, named)
        key = (display_name(text), label, canonical)
        if key not in seen:
            seen.add(key)
            out.append(Entity(*key))
    return tuple(out)


def is_name(text: str, table: AliasTable) -> bool:
    """Whether a span names something: not a common-noun phrase ("coast guard vessels"),
    a fragment ("Joint"), a number or a link, unless the alias table knows it."""
    name = display_name(text)
    if table.lookup(name):
        return True
    if not any(c.isupper() for c in name) or "://" in name or name.startswith("www."):
        return False
    return surface_key(name) not in GENERIC_WORDS


def _full_name(text: str, table: AliasTable) -> AliasEntry | None:
    """The table's entry for a span, also when a place qualifies it: "Iran's Quds
    Aviation Industry", "South Korean National Intelligence Service"."""
    if entry := table.lookup(text):
        return entry
    name = display_name(text)
    possessive = _LEADING_POSSESSIVE.match(name)
    splits = [possessive.groups()] if possessive else []
    words = name.split()
    splits += [(" ".join(words[:n]), " ".join(words[n:])) for n in (1, 2) if len(words) > n]
    for qualifier, rest in splits:
        place = table.lookup(qualifier)
        if place is not None and place.label in ("GPE", "NORP", "LOC"):
            if entry := table.lookup(rest):
                return entry
    return None


def canonical_name(text: str, table: AliasTable, named_in_document: set[str]) -> str:
    """The canonical name of one span, given the canonical names the document states in full."""
    if entry := _full_name(text, table):
        return entry.canonical
    short = table.lookup_short(text)
    if short is not None and short.canonical in named_in_document:
        return short.canonical
    return display_name(text)


def parse_alias_table(data: Any, file: str) -> AliasTable:
    """The alias table from its YAML form; errors name the key path."""
    if not isinstance(data, Mapping) or set(data) != {"entities"}:
        raise ConfigError(file, "", "an alias table is a mapping with the single key 'entities'")
    raw_entries = data["entities"]
    if not isinstance(raw_entries, list):
        raise ConfigError(file, "entities", "must be a list")
    entries: list[AliasEntry] = []
    for i, raw in enumerate(raw_entries):
        path = f"entities[{i}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(file, path, "must be a mapping")
        unknown = set(raw) - {"canonical", "label", "aliases", "short_forms"}
        if unknown:
            raise ConfigError(file, f"{path}.{sorted(unknown)[0]}", "unknown key")
        canonical = raw.get("canonical")
        if not isinstance(canonical, str) or not canonical.strip():
            raise ConfigError(file, f"{path}.canonical", "must be a non-empty string")
        label = raw.get("label", "ORG")
        if not isinstance(label, str) or not label.isupper():
            raise ConfigError(file, f"{path}.label", "must be an upper-case spaCy label")
        entry = AliasEntry(
            canonical=canonical.strip(),
            label=label,
            aliases=_strings(raw.get("aliases", []), file, f"{path}.aliases"),
            short_forms=_strings(raw.get("short_forms", []), file, f"{path}.short_forms"),
        )
        _add_entry(entries, entry, file, path)
    return AliasTable.of(entries)


def _add_entry(entries: list[AliasEntry], entry: AliasEntry, file: str, path: str) -> None:
    """An entry repeated within one file adds its names to the earlier one, in its place:
    the table keeps its names in other languages in a section of their own."""
    at = next((i for i, e in enumerate(entries) if e.canonical == entry.canonical), None)
    if at is None:
        entries.append(entry)
        return
    earlier = entries[at]
    if earlier.label != entry.label:
        raise ConfigError(file, f"{path}.label", f"differs from {entry.canonical!r} above")
    entries[at] = AliasEntry(
        entry.canonical,
        entry.label,
        tuple(dict.fromkeys((*earlier.aliases, *entry.aliases))),
        tuple(dict.fromkeys((*earlier.short_forms, *entry.short_forms))),
    )


def _strings(value: Any, file: str, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(file, path, "must be a list of non-empty strings")
    return tuple(v.strip() for v in value)
