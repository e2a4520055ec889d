"""entities.py: surface keys, the alias table and its YAML form, canonical entity names."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from newswatch.pipelines.control.config import default_alias_table
from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.core.aliases import (
    AliasEntry,
    AliasTable,
    canonical_entities,
    parse_alias_table,
    surface_key,
)
from newswatch.schemas import Entity

TABLE = AliasTable.of(
    [
        AliasEntry("North Korea", "GPE", ("DPRK", "Pyongyang", "North Korean")),
        AliasEntry("Russia", "GPE", ("Kremlin", "Moscow")),
        AliasEntry("Kim Jong Un", "PERSON", ("Kim Jong-un",), ("Kim",)),
        AliasEntry("Kim Yo Jong", "PERSON", ("Kim Yo-jong",)),
    ]
)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("the Kremlin's", "kremlin"),
        ("The Kremlin\u2019s", "kremlin"),
        ("THE KREMLIN", "kremlin"),
        ("Kim Jong-un", "kim jong un"),
        ("Kim  Jong\u2010Un", "kim jong un"),
        ("  North\nKorea\t", "north korea"),
        ("Russia's", "russia"),
        ("DPRK", "dprk"),
        ("Theresa May", "theresa may"),  # "the" only as a whole word
        ("The", "the"),
        ("Straße", "strasse"),  # case-folded, not just lower-cased
        ("", ""),
        ("   ", ""),
    ],
)
def test_surface_key(text: str, key: str) -> None:
    assert surface_key(text) == key


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([], ()),
        # aliases map for any label, the found text and label are kept as found
        ([("DPRK", "ORG")], (Entity("DPRK", "ORG", "North Korea"),)),
        ([("Pyongyang", "GPE")], (Entity("Pyongyang", "GPE", "North Korea"),)),
        ([("North Korean", "NORP")], (Entity("North Korean", "NORP", "North Korea"),)),
        ([("the Kremlin's", "FAC")], (Entity("Kremlin", "FAC", "Russia"),)),
        ([("Kim Jong-un", "PERSON")], (Entity("Kim Jong-un", "PERSON", "Kim Jong Un"),)),
        ([("KIM JONG UN", "PERSON")], (Entity("KIM JONG UN", "PERSON", "Kim Jong Un"),)),
        # unknown names are their own canonical name, tidied
        ([("Acme  Corp", "ORG")], (Entity("Acme Corp", "ORG", "Acme Corp"),)),
        ([("The Hague's", "GPE")], (Entity("Hague", "GPE", "Hague"),)),
        # a short form means the entity only when the full name is in the same document
        ([("Kim", "PERSON")], (Entity("Kim", "PERSON", "Kim"),)),
        (
            [("Kim", "PERSON"), ("Kim Jong-un", "PERSON")],
            (
                Entity("Kim", "PERSON", "Kim Jong Un"),
                Entity("Kim Jong-un", "PERSON", "Kim Jong Un"),
            ),
        ),
        (
            [("Kim", "PERSON"), ("DPRK", "GPE")],
            (Entity("Kim", "PERSON", "Kim"), Entity("DPRK", "GPE", "North Korea")),
        ),
        # another Kim named in full does not make "Kim" Kim Jong Un
        (
            [("Kim Yo-jong", "PERSON"), ("Kim", "PERSON")],
            (Entity("Kim Yo-jong", "PERSON", "Kim Yo Jong"), Entity("Kim", "PERSON", "Kim")),
        ),
        # a dropped label does not count as naming the entity in full
        ([("Kim", "PERSON"), ("Kim Jong Un", "DATE")], (Entity("Kim", "PERSON", "Kim"),)),
        # labels outside KEPT_LABELS are dropped, and so are blank spans
        (
            [
                ("Monday", "DATE"),
                ("five", "CARDINAL"),
                ("3%", "PERCENT"),
                ("Moscow", "GPE"),
                ("  ", "GPE"),
            ],
            (Entity("Moscow", "GPE", "Russia"),),
        ),
        ([("Moscow", "gpe")], ()),
        # duplicates collapse, first occurrence first; another label is another entity
        (
            [
                ("Moscow", "GPE"),
                ("DPRK", "ORG"),
                ("Moscow", "GPE"),
                ("Moscow ", "GPE"),
                ("Moscow", "ORG"),
                ("DPRK", "ORG"),
            ],
            (
                Entity("Moscow", "GPE", "Russia"),
                Entity("DPRK", "ORG", "North Korea"),
                Entity("Moscow", "ORG", "Russia"),
            ),
        ),
        # different surface forms of one entity stay apart (they are what the text says)
        (
            [("Moscow", "GPE"), ("Kremlin", "GPE")],
            (Entity("Moscow", "GPE", "Russia"), Entity("Kremlin", "GPE", "Russia")),
        ),
    ],
)
def test_canonical_entities(spans: list[tuple[str, str]], expected: tuple[Entity, ...]) -> None:
    assert canonical_entities(spans, TABLE) == expected


def test_canonical_entities_without_a_table() -> None:
    assert canonical_entities([("DPRK", "ORG")], AliasTable()) == (Entity("DPRK", "ORG", "DPRK"),)


@pytest.mark.parametrize(
    ("surface", "canonical"),
    [
        ("north korea", "North Korea"),
        ("The DPRK", "North Korea"),
        ("Kim-Jong-Un", "Kim Jong Un"),
        ("Kim", None),  # a short form is no alias
        ("Korea", None),
        ("", None),
    ],
)
def test_alias_table_lookup(surface: str, canonical: str | None) -> None:
    entry = TABLE.lookup(surface)
    assert (entry.canonical if entry else None) == canonical


def test_alias_table_lookup_short() -> None:
    entry = TABLE.lookup_short("kim")
    assert entry is not None and entry.canonical == "Kim Jong Un"
    assert TABLE.lookup_short("Kim Jong Un") is None


def test_later_tables_override_earlier_ones() -> None:
    bundled = AliasTable.of(
        [
            AliasEntry("Russia", "GPE", ("Kremlin", "Russian Federation")),
            AliasEntry("Moscow City", "GPE", ("Moscow",)),
            AliasEntry("Ukraine", "GPE", ("Kyiv",)),
        ]
    )
    user = AliasTable.of([AliasEntry("Russia", "GPE", ("Kremlin", "Moscow"), ("RF",))])
    merged = bundled.merged_with(user)

    def canonical(surface: str) -> str | None:
        entry = merged.lookup(surface)
        return entry.canonical if entry else None

    # the user's entry replaces the bundled one: its aliases win, the old ones are gone
    assert canonical("Moscow") == "Russia"
    assert canonical("Kremlin") == "Russia"
    assert canonical("Russian Federation") is None
    assert canonical("Kyiv") == "Ukraine"
    short = merged.lookup_short("RF")
    assert short is not None and short.canonical == "Russia"
    assert [e.canonical for e in merged.entries] == ["Moscow City", "Ukraine", "Russia"]
    # the tables themselves are unchanged
    assert [e.canonical for e in bundled.entries] == ["Russia", "Moscow City", "Ukraine"]
    assert bundled.lookup("Russian Federation") is not None


def test_later_entries_win_within_one_table() -> None:
    table = AliasTable.of([AliasEntry("A", "ORG", ("x",)), AliasEntry("B", "ORG", ("x",))])
    entry = table.lookup("X")
    assert entry is not None and entry.canonical == "B"


def test_ruler_patterns() -> None:
    table = AliasTable.of([AliasEntry("North Korea", "GPE", ("DPRK",), ("Korea",))])
    assert table.ruler_patterns(acronyms=False) == [
        {"label": "GPE", "pattern": "North Korea", "id": "North Korea"},
    ]
    assert table.ruler_patterns(acronyms=True) == [
        {"label": "GPE", "pattern": "DPRK", "id": "North Korea"},
    ]


ALIASES_YAML = """
entities:
  - canonical: " North Korea "
    label: GPE
    aliases: ["DPRK", " N. Korea "]
  - canonical: Kim Jong Un
    label: PERSON
    aliases: ["Kim Jong-un"]
    short_forms: ["Kim"]
  - canonical: Rosoboronexport
"""


def test_parse_alias_table() -> None:
    table = parse_alias_table(yaml.safe_load(ALIASES_YAML), "aliases.yaml")
    assert table.entries == (
        AliasEntry("North Korea", "GPE", ("DPRK", "N. Korea")),
        AliasEntry("Kim Jong Un", "PERSON", ("Kim Jong-un",), ("Kim",)),
        AliasEntry("Rosoboronexport", "ORG"),
    )
    assert canonical_entities(
        [("Kim", "PERSON"), ("N. Korea", "GPE"), ("Kim Jong-un", "PERSON")], table
    ) == (
        Entity("Kim", "PERSON", "Kim Jong Un"),
        Entity("N. Korea", "GPE", "North Korea"),
        Entity("Kim Jong-un", "PERSON", "Kim Jong Un"),
    )


def test_parse_alias_table_empty_list() -> None:
    assert parse_alias_table({"entities": []}, "aliases.yaml").entries == ()


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (None, "", "single key 'entities'"),
        (["x"], "", "single key 'entities'"),
        ({}, "", "single key 'entities'"),
        ({"entities": [], "extra": 1}, "", "single key 'entities'"),
        ({"entities": {"canonical": "A"}}, "entities", "must be a list"),
        ({"entities": None}, "entities", "must be a list"),
        ({"entities": ["North Korea"]}, "entities[0]", "must be a mapping"),
        (
            {"entities": [{"canonical": "A"}, {"canonical": ""}]},
            "entities[1].canonical",
            "non-empty string",
        ),
        (
            {"entities": [{"canonical": "A"}, {"canonical": "   "}]},
            "entities[1].canonical",
            "non-empty string",
        ),
        ({"entities": [{"label": "GPE"}]}, "entities[0].canonical", "non-empty string"),
        ({"entities": [{"canonical": 5}]}, "entities[0].canonical", "non-empty string"),
        ({"entities": [{"canonical": "A", "label": "gpe"}]}, "entities[0].label", "upper-case"),
        ({"entities": [{"canonical": "A", "label": 3}]}, "entities[0].label", "upper-case"),
        (
            {"entities": [{"canonical": "A", "aliases": "B"}]},
            "entities[0].aliases",
            "list of non-empty strings",
        ),
        (
            {"entities": [{"canonical": "A", "aliases": None}]},
            "entities[0].aliases",
            "list of non-empty strings",
        ),
        (
            {"entities": [{"canonical": "A", "aliases": ["B", " "]}]},
            "entities[0].aliases",
            "list of non-empty strings",
        ),
        (
            {"entities": [{"canonical": "A", "short_forms": [1]}]},
            "entities[0].short_forms",
            "list of non-empty strings",
        ),
        ({"entities": [{"canonical": "A", "alias": ["B"]}]}, "entities[0].alias", "unknown key"),
        (
            {"entities": [{"canonical": "A"}, {"canonical": "B", "zzz": 1, "aaa": 2}]},
            "entities[1].aaa",
            "unknown key",
        ),
    ],
)
def test_parse_alias_table_errors(data: Any, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_alias_table(data, "aliases.yaml")
    err = info.value
    assert (err.file, err.path) == ("aliases.yaml", path)
    assert message in err.message
    where = f"aliases.yaml: {path}" if path else "aliases.yaml"
    assert str(err) == f"{where}: {err.message}"


def test_bundled_alias_table() -> None:
    table = default_alias_table()
    assert canonical_entities(
        [("the D.P.R.K.", "ORG"), ("Kim", "PERSON"), ("Kim Jong-un", "PERSON"), ("Kremlin", "ORG")],
        table,
    ) == (
        Entity("D.P.R.K.", "ORG", "North Korea"),
        Entity("Kim", "PERSON", "Kim Jong Un"),
        Entity("Kim Jong-un", "PERSON", "Kim Jong Un"),
        Entity("Kremlin", "ORG", "Russia"),
    )


def test_ruler_patterns_match_acronyms_only_as_written() -> None:
    table = AliasTable.of(
        [AliasEntry("United States", "GPE", ("US", "U.S.", "United States of America"))]
    )
    acronyms = {p["pattern"]: p for p in table.ruler_patterns(acronyms=True)}
    names = {p["pattern"]: p for p in table.ruler_patterns(acronyms=False)}
    assert set(acronyms) == {"US", "U.S."}
    assert acronyms["US"]["id"] == "United States"
    assert acronyms["U.S."]["label"] == "GPE"
    assert set(names) == {"United States", "United States of America"}
