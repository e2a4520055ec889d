"""Entity names across typography, fragments, qualified names and the bundled domain table.

The pure cases call ``canonical_entities``; the last ones run the real spaCy model, since
what matters is what the NLP stage makes of real text.
"""

from __future__ import annotations

import pytest

from newswatch.pipelines.control.config import default_alias_table, default_topic_rules
from newswatch.pipelines.core.aliases import (
    AliasEntry,
    AliasTable,
    canonical_entities,
    display_name,
    fold_typography,
    surface_key,
)
from newswatch.pipelines.core.nlp import TextAnalyser
from newswatch.schemas import Entity

BUNDLED = default_alias_table()


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("People\u2019s Liberation Army", "People's Liberation Army"),
        ("\u2018Kim\u2019", "'Kim'"),
        ("\u201cHwasong\u201d", '"Hwasong"'),
        ("Komsomolsk\u2013on\u2014Amur", "Komsomolsk-on-Amur"),
        ("Kim\u00a0Jong\u202fUn", "Kim Jong Un"),
        ("Kim\u00adJong", "KimJong"),
        ("plain", "plain"),
    ],
)
def test_fold_typography(text: str, folded: str) -> None:
    assert fold_typography(text) == folded


def test_apostrophe_variants_are_one_entity() -> None:
    spans = [
        ("People\u2019s Liberation Army", "ORG"),
        ("People's Liberation Army", "ORG"),
        ("People\u02bcs Liberation Army", "ORG"),
    ]
    assert canonical_entities(spans, BUNDLED) == (
        Entity("People's Liberation Army", "ORG", "People's Liberation Army"),
    )
    assert surface_key("Kim Jong\u2013un") == surface_key("Kim Jong-un") == "kim jong un"
    assert display_name("the Kremlin\u2019s") == "Kremlin"


@pytest.mark.parametrize(
    "span",
    [
        ("Joint", "ORG"),
        ("Defense", "ORG"),
        ("State", "ORG"),
        ("North", "LOC"),
        ("UAVs", "ORG"),
        ("coast guard vessels", "ORG"),
        ("east coast", "LOC"),
        ("35", "PRODUCT"),
        ("https://news.example/story-1", "ORG"),
    ],
)
def test_fragments_and_common_nouns_are_not_entities(span: tuple[str, str]) -> None:
    assert canonical_entities([span], BUNDLED) == ()


def test_a_known_alias_is_kept_whatever_its_case() -> None:
    table = AliasTable.of([AliasEntry("Wonsan Kalma", "FAC", ("kalma",))])
    assert canonical_entities([("kalma", "FAC")], table) == (
        Entity("kalma", "FAC", "Wonsan Kalma"),
    )


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Iran\u2019s Quds Aviation Industry", "Qods Aviation Industries"),
        ("South Korean National Intelligence Service", "National Intelligence Service"),
        ("U.S. Treasury Department", "United States Department of the Treasury"),
        ("Russian Sukhoi SU-35", "Sukhoi Su-35"),
        # a qualifier that is no place leaves the name as it is
        ("Acme Quds Aviation Industry", "Acme Quds Aviation Industry"),
    ],
)
def test_a_place_qualifying_a_known_name_is_dropped(text: str, canonical: str) -> None:
    (entity,) = canonical_entities([(text, "ORG")], BUNDLED)
    assert entity.canonical == canonical


@pytest.mark.parametrize(
    ("surface", "canonical"),
    [
        ("NIS", "National Intelligence Service"),
        ("JCS", "Joint Chiefs of Staff"),
        ("KCNA", "Korean Central News Agency"),
        ("Tass", "TASS"),
        ("Yonhap", "Yonhap News Agency"),
        ("Choe Son-hui", "Choe Son Hui"),
        ("Andrey Belousov", "Andrei Belousov"),
        ("Sergey Shoigu", "Sergei Shoigu"),
        ("Kim Yo-jong", "Kim Yo Jong"),
        ("Kim Ju-ae", "Kim Ju Ae"),
        ("KN-23s", "KN-23"),
        ("Hwasong-11B", "KN-24"),
        ("Hwasong-11", "Hwasong-11"),
        ("Geran-2", "HESA Shahed 136"),
        ("Shahed-136", "HESA Shahed 136"),
        ("Fath 360", "Fath-360"),
        ("Vostochny spaceport", "Vostochny Cosmodrome"),
        ("Rajin", "Rason"),
        ("Kursk region", "Kursk Oblast"),
    ],
)
def test_bundled_domain_names(surface: str, canonical: str) -> None:
    entry = BUNDLED.lookup(surface)
    assert entry is not None and entry.canonical == canonical


@pytest.fixture(scope="module")
def analyser(spacy_loaded_once: None) -> TextAnalyser:
    return TextAnalyser.load("auto", BUNDLED, default_topic_rules())


def test_the_nlp_stage_gives_one_entity_for_apostrophe_variants(analyser: TextAnalyser) -> None:
    text = (
        "People\u2019s Liberation Army jets flew near Taiwan.\n\n"
        "The People's Liberation Army said the drills were routine."
    )
    entities, analysis = next(iter(analyser.analyse([text])))
    names = [e for e in entities if e.canonical == "People's Liberation Army"]
    assert len({(e.text, e.label) for e in names}) == len(names) == 1
    # topic terms written with a straight apostrophe find the curly one too
    assert all("entity:people's liberation army" in s.terms for s in analysis.sentences)


def test_the_nlp_stage_names_domain_entities(analyser: TextAnalyser) -> None:
    text = (
        "South Korea\u2019s NIS said Shahed-136 drones and KN-23 missiles were shipped "
        "from Rajin to the Vostochny spaceport."
    )
    entities, _ = next(iter(analyser.analyse([text])))
    canonical = {e.canonical for e in entities}
    assert {"National Intelligence Service", "KN-23", "Rason"} <= canonical


def test_the_rulers_find_acronyms_as_written_and_names_in_any_case(
    analyser: TextAnalyser,
) -> None:
    # The statistical NER labels none of these aliases in these sentences: whatever is
    # found comes from the alias rulers ("RIA" an acronym, "Tass" a name).
    text = "They said RIA would act.\n\nThey said ria would act, and tass agreed."
    entities, _ = next(iter(analyser.analyse([text])))
    found = {(e.text, e.canonical) for e in entities}
    assert ("RIA", "RIA Novosti") in found
    assert ("tass", "TASS") in found
    assert "ria" not in {e.text for e in entities}
