"""topics.py: topic rules from YAML and the matcher; nlp.py's pure parts (term index, paragraphs).

The matcher is tested on hand-built TextAnalysis objects: no spaCy model is loaded.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import yaml
from configs import TOPICS_YAML
from hypothesis import given
from hypothesis import strategies as st

from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.core.nlp import TermIndex, document_text, paragraph_starts
from newswatch.pipelines.core.rule_files import parse_topic_rules
from newswatch.pipelines.core.rules import (
    MAX_EVIDENCE,
    MAX_EVIDENCE_CHARS,
    AnalysedSentence,
    TextAnalysis,
    TopicRule,
    match_topic,
    match_topics,
    term_key,
)
from newswatch.schemas import TopicMatch

RULE = parse_topic_rules(yaml.safe_load(TOPICS_YAML), "topics.yaml")[0]

# Term keys as the NLP stage reports them: one per group, and the excluded term.
NK, RU, ARMS, FOOTBALL = "entity:north korea", "moscow", "artillery shells", "football"


def sent(text: str, paragraph: int, *terms: str) -> AnalysedSentence:
    return AnalysedSentence(text=text, paragraph=paragraph, terms=frozenset(terms))


def analysis(*sentences: AnalysedSentence) -> TextAnalysis:
    return TextAnalysis(tuple(sentences))


def with_scope(scope: str, **changes: Any) -> TopicRule:
    return dataclasses.replace(RULE, scope=scope, **changes)


TITLE = sent("Talks in Geneva", 0)
FULL = sent("Pyongyang shipped artillery shells to Moscow.", 1, "pyongyang", RU, ARMS)


# --- parsing ----------------------------------------------------------------------------------


def test_the_documented_yaml_shape_is_accepted() -> None:
    assert RULE == TopicRule(
        id="dprk-russia-arms",
        title="North Korea\u2013Russia arms cooperation",
        scope="sentence",
        groups=(
            frozenset({"entity:north korea", "pyongyang", "dprk"}),
            frozenset({"entity:russia", "moscow", "kremlin"}),
            frozenset(
                {"arms", "weapons", "artillery shells", "munitions", "missiles", "ammunition"}
            ),
        ),
        none=frozenset({"football"}),
        min_matches=1,
        min_score=0.0,
        description="",
    )
    assert RULE.terms == frozenset().union(*RULE.groups, {"football"})


def test_defaults_and_optional_keys() -> None:
    data = {
        "topics": [
            {"id": "a", "all": [{"any": ["x"]}]},
            {
                "id": "b.2_c",
                "title": "  Spaced title ",
                "description": " Why we watch it. ",
                "scope": "document",
                "all": [{"any": ["Entity: Kim Jong Un", "  Many   Spaces "]}],
                "none": [],
                "min_matches": 3,
                "min_score": 1,
            },
        ]
    }
    a, b = parse_topic_rules(data, "topics.yaml")
    assert a == TopicRule(id="a", title="a", scope="sentence", groups=(frozenset({"x"}),))
    assert b == TopicRule(
        id="b.2_c",
        title="Spaced title",
        scope="document",
        groups=(frozenset({"entity:kim jong un", "many spaces"}),),
        none=frozenset(),
        min_matches=3,
        min_score=1.0,
        description="Why we watch it.",
    )


@pytest.mark.parametrize(
    ("term", "key"),
    [
        ("Pyongyang", "pyongyang"),
        ("  Artillery \t Shells ", "artillery shells"),
        ("entity:North Korea", "entity:north korea"),
        ("Entity:  North Korea ", "entity:north korea"),
        ("ENTITY:Kim Jong Un", "entity:kim jong un"),
        ("Straße", "strasse"),
        ("entity:", "entity:"),
    ],
)
def test_term_key(term: str, key: str) -> None:
    assert term_key(term) == key


def rules_with(**changes: Any) -> dict[str, Any]:
    """The documented rule with some keys changed (a value of ... removes the key)."""
    data = copy.deepcopy(yaml.safe_load(TOPICS_YAML))
    for key, value in changes.items():
        if value is ...:
            del data["topics"][0][key]
        else:
            data["topics"][0][key] = value
    return data


def two_rules(second: dict[str, Any]) -> dict[str, Any]:
    data = rules_with()
    data["topics"].append(second)
    return data


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        # not a mapping, or the wrong top-level keys
        (None, "", "mapping with the key 'topics'"),
        (["dprk"], "", "mapping with the key 'topics'"),
        ({"topic": []}, "", "mapping with the key 'topics'"),
        ({**rules_with(), "extra": 1}, "extra", "unknown key"),
        ({"topics": None}, "topics", "non-empty list"),
        ({"topics": []}, "topics", "non-empty list"),
        ({"topics": {"id": "x"}}, "topics", "non-empty list"),
        ({"topics": ["dprk"]}, "topics[0]", "must be a mapping"),
        # all: missing, empty, not a list
        (rules_with(all=...), "topics[0].all", "non-empty list of groups"),
        (rules_with(all=[]), "topics[0].all", "non-empty list of groups"),
        (rules_with(all={"any": ["x"]}), "topics[0].all", "non-empty list of groups"),
        # a group without `any`, or with more
        (rules_with(all=[{"any": ["x"]}, {"anyy": ["y"]}]), "topics[0].all[1]", "single key 'any'"),
        (rules_with(all=[{"any": ["x"], "none": ["y"]}]), "topics[0].all[0]", "single key 'any'"),
        (rules_with(all=["x"]), "topics[0].all[0]", "single key 'any'"),
        # an empty `any`, or not a list
        (
            rules_with(all=[{"any": ["x"]}, {"any": []}]),
            "topics[0].all[1].any",
            "non-empty list of terms",
        ),
        (rules_with(all=[{"any": None}]), "topics[0].all[0].any", "non-empty list of terms"),
        (rules_with(all=[{"any": "arms"}]), "topics[0].all[0].any", "non-empty list of terms"),
        # terms that are not strings, or match nothing
        (rules_with(all=[{"any": ["x", 3]}]), "topics[0].all[0].any[1]", "non-empty string"),
        (rules_with(all=[{"any": ["x", None]}]), "topics[0].all[0].any[1]", "non-empty string"),
        (rules_with(all=[{"any": [["x"]]}]), "topics[0].all[0].any[0]", "non-empty string"),
        (rules_with(all=[{"any": ["  "]}]), "topics[0].all[0].any[0]", "non-empty string"),
        (
            rules_with(all=[{"any": ["x"]}, {"any": ["y", "entity:"]}]),
            "topics[0].all[1].any[1]",
            "nothing to match",
        ),
        (rules_with(all=[{"any": ["Entity:   "]}]), "topics[0].all[0].any[0]", "nothing to match"),
        (rules_with(all=[{"any": ["!!"]}]), "topics[0].all[0].any[0]", "nothing to match"),
        (rules_with(none="football"), "topics[0].none", "non-empty list of terms"),
        (rules_with(none=["football", 7]), "topics[0].none[1]", "non-empty string"),
        (rules_with(none=["entity:"]), "topics[0].none[0]", "nothing to match"),
        # bad ids
        (rules_with(id=...), "topics[0].id", "lower-case id"),
        (rules_with(id="DPRK"), "topics[0].id", "lower-case id"),
        (rules_with(id="-dprk"), "topics[0].id", "lower-case id"),
        (rules_with(id="dprk russia"), "topics[0].id", "lower-case id"),
        (rules_with(id="dprk\n"), "topics[0].id", "lower-case id"),
        (rules_with(id=""), "topics[0].id", "lower-case id"),
        (rules_with(id=42), "topics[0].id", "lower-case id"),
        (rules_with(id="a" * 65), "topics[0].id", "lower-case id"),
        # duplicate id: the second one is named
        (
            two_rules({"id": "dprk-russia-arms", "all": [{"any": ["x"]}]}),
            "topics[1].id",
            "duplicate topic id 'dprk-russia-arms'",
        ),
        # errors in a later rule name that rule
        (two_rules({"id": "other", "all": []}), "topics[1].all", "non-empty list of groups"),
        # bad scope
        (rules_with(scope="article"), "topics[0].scope", "sentence, paragraph, document"),
        (rules_with(scope="Sentence"), "topics[0].scope", "sentence, paragraph, document"),
        (rules_with(scope=None), "topics[0].scope", "sentence, paragraph, document"),
        # min_matches
        (rules_with(min_matches=0), "topics[0].min_matches", "whole number >= 1"),
        (rules_with(min_matches=-1), "topics[0].min_matches", "whole number >= 1"),
        (rules_with(min_matches=True), "topics[0].min_matches", "whole number >= 1"),
        (rules_with(min_matches="2"), "topics[0].min_matches", "whole number >= 1"),
        (rules_with(min_matches=1.5), "topics[0].min_matches", "whole number >= 1"),
        # min_score
        (rules_with(min_score=1.5), "topics[0].min_score", "number in [0, 1]"),
        (rules_with(min_score=-0.1), "topics[0].min_score", "number in [0, 1]"),
        (rules_with(min_score=float("nan")), "topics[0].min_score", "number in [0, 1]"),
        (rules_with(min_score=True), "topics[0].min_score", "number in [0, 1]"),
        (rules_with(min_score="0.5"), "topics[0].min_score", "number in [0, 1]"),
        # title and description
        (rules_with(title=""), "topics[0].title", "non-empty string"),
        (rules_with(title=5), "topics[0].title", "non-empty string"),
        (rules_with(description=["x"]), "topics[0].description", "must be a string"),
        # unknown keys, the first in sorted order named
        (rules_with(scopes="sentence"), "topics[0].scopes", "unknown key"),
        (rules_with(zzz=1, any=["x"]), "topics[0].any", "unknown key"),
    ],
)
def test_parse_topic_rules_errors(data: Any, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_topic_rules(data, "topics.yaml")
    err = info.value
    assert (err.file, err.path) == ("topics.yaml", path)
    assert message in err.message
    where = f"topics.yaml: {path}" if path else "topics.yaml"
    assert str(err) == f"{where}: {err.message}"


# --- matching: scopes ---------------------------------------------------------------------------

# All three groups, spread over two sentences of one paragraph.
SPLIT_IN_PARAGRAPH = analysis(
    TITLE,
    sent("Pyongyang and Moscow met.", 1, "pyongyang", RU),
    sent("They discussed artillery shells.", 1, ARMS),
)
# The same, but the two sentences are in different paragraphs.
SPLIT_OVER_PARAGRAPHS = analysis(
    TITLE,
    sent("Pyongyang and Moscow met.", 1, "pyongyang", RU),
    sent("They discussed artillery shells.", 2, ARMS),
)


@pytest.mark.parametrize(
    ("scope", "text", "expected"),
    [
        ("sentence", analysis(TITLE, FULL), TopicMatch(RULE.id, 0.5, (FULL.text,))),
        ("paragraph", analysis(TITLE, FULL), TopicMatch(RULE.id, 0.5, (FULL.text,))),
        ("document", analysis(TITLE, FULL), TopicMatch(RULE.id, 0.5, (FULL.text,))),
        ("sentence", SPLIT_IN_PARAGRAPH, None),
        (
            "paragraph",
            SPLIT_IN_PARAGRAPH,
            TopicMatch(
                RULE.id, 0.5, ("Pyongyang and Moscow met.", "They discussed artillery shells.")
            ),
        ),
        (
            "document",
            SPLIT_IN_PARAGRAPH,
            TopicMatch(
                RULE.id, 0.5, ("Pyongyang and Moscow met.", "They discussed artillery shells.")
            ),
        ),
        ("sentence", SPLIT_OVER_PARAGRAPHS, None),
        ("paragraph", SPLIT_OVER_PARAGRAPHS, None),
        (
            "document",
            SPLIT_OVER_PARAGRAPHS,
            TopicMatch(
                RULE.id, 0.5, ("Pyongyang and Moscow met.", "They discussed artillery shells.")
            ),
        ),
        # two groups only, in every scope
        ("document", analysis(TITLE, sent("Pyongyang and Moscow met.", 1, "pyongyang", RU)), None),
        # nothing at all
        ("sentence", analysis(), None),
        ("paragraph", analysis(), None),
        ("document", analysis(), None),
        ("document", analysis(TITLE), None),
    ],
)
def test_scopes(scope: str, text: TextAnalysis, expected: TopicMatch | None) -> None:
    assert match_topic(text, with_scope(scope)) == expected


@pytest.mark.parametrize("scope", ["sentence", "paragraph", "document"])
@pytest.mark.parametrize(
    "text",
    [
        analysis(sent("Football: Pyongyang beat Moscow", 0, FOOTBALL), FULL),
        analysis(
            TITLE,
            sent(
                "Pyongyang shipped shells to Moscow at the football ground.",
                1,
                "pyongyang",
                RU,
                ARMS,
                FOOTBALL,
            ),
        ),
        analysis(TITLE, FULL, sent("Elsewhere, football.", 7, FOOTBALL)),
    ],
)
def test_a_none_term_anywhere_blocks(scope: str, text: TextAnalysis) -> None:
    assert match_topic(text, with_scope(scope)) is None
    assert match_topics(text, [with_scope(scope)]) == ()


def test_min_matches_needs_that_many_satisfying_scopes() -> None:
    second = sent("Moscow got DPRK missiles.", 2, "dprk", RU, "missiles")
    rule = with_scope("sentence", min_matches=2)
    assert match_topic(analysis(TITLE, FULL), rule) is None
    assert match_topic(analysis(TITLE, FULL, second), rule) == TopicMatch(
        RULE.id, 0.75, (FULL.text, second.text)
    )
    # two satisfying sentences in one paragraph are a single paragraph scope
    same_paragraph = dataclasses.replace(second, paragraph=1)
    assert (
        match_topic(analysis(TITLE, FULL, same_paragraph), with_scope("paragraph", min_matches=2))
        is None
    )
    assert match_topic(
        analysis(TITLE, FULL, second), with_scope("paragraph", min_matches=2)
    ) == TopicMatch(RULE.id, 0.75, (FULL.text, second.text))
    # a document is one scope, so it can never match twice
    assert match_topic(analysis(TITLE, FULL, second), with_scope("document", min_matches=2)) is None


def test_entity_terms_and_plain_terms_are_interchangeable_within_a_group() -> None:
    text = analysis(
        TITLE, sent("North Korea sent munitions to the Kremlin.", 1, NK, "kremlin", "munitions")
    )
    assert match_topic(text, RULE) == TopicMatch(
        RULE.id, 0.5, ("North Korea sent munitions to the Kremlin.",)
    )


# --- matching: scores -------------------------------------------------------------------------


def body(n: int) -> list[AnalysedSentence]:
    return [
        sent(f"Pyongyang sent shells to Moscow, report {i}.", i + 1, "pyongyang", RU, ARMS)
        for i in range(n)
    ]


HEADLINE = sent("Pyongyang ships shells to Moscow", 0, "pyongyang", RU, ARMS)


@pytest.mark.parametrize(
    ("scope", "sentences", "score"),
    [
        ("sentence", [TITLE, *body(1)], 0.5),
        ("sentence", [TITLE, *body(2)], 0.75),
        ("sentence", [TITLE, *body(3)], 0.875),
        # a satisfying headline counts once more: headline + 2 body sentences = 4
        ("sentence", [HEADLINE, *body(2)], 0.9375),
        ("sentence", [HEADLINE], 0.75),
        ("paragraph", [HEADLINE, *body(1)], 0.875),
        ("document", [HEADLINE, *body(3)], 0.75),
        ("document", [TITLE, *body(3)], 0.5),
        # many scopes: rounded to 6 places, never above 1
        ("sentence", [TITLE, *body(19)], 0.999998),
        ("sentence", [TITLE, *body(40)], 1.0),
    ],
)
def test_score(scope: str, sentences: list[AnalysedSentence], score: float) -> None:
    match = match_topic(analysis(*sentences), with_scope(scope))
    assert match is not None
    assert match.score == score


def test_match_topics_keeps_rule_order_and_drops_misses() -> None:
    other = dataclasses.replace(
        RULE, id="kim", groups=(frozenset({"entity:kim jong un"}),), none=frozenset()
    )
    never = dataclasses.replace(RULE, id="never", groups=(frozenset({"nowhere"}),))
    text = analysis(
        TITLE,
        sent("Kim Jong Un met Moscow officials on arms.", 1, "entity:kim jong un", RU, "arms"),
    )
    assert match_topics(text, [never, other, RULE]) == (
        TopicMatch("kim", 0.5, ("Kim Jong Un met Moscow officials on arms.",)),
    )
    assert match_topics(analysis(TITLE, FULL), [RULE, never, other]) == (
        TopicMatch(RULE.id, 0.5, (FULL.text,)),
    )
    assert match_topics(analysis(TITLE, FULL), []) == ()


# --- matching: evidence -----------------------------------------------------------------------


def test_evidence_prefers_sentences_hitting_most_groups_then_keeps_text_order() -> None:
    text = analysis(
        sent("Headline without terms", 0),
        sent("A: Pyongyang said.", 1, "pyongyang"),
        sent("B: Moscow said.", 1, RU),
        sent("C: DPRK sends Kremlin arms.", 1, "dprk", "kremlin", "arms"),
        sent("D: Arms were seen.", 2, "arms"),
        sent("E: DPRK arms.", 2, "dprk", "arms"),
        sent("F: Missiles too.", 2, "missiles"),
        sent("G: Weather.", 3),
        sent("H: Pyongyang, Moscow, munitions.", 3, "pyongyang", RU, "munitions"),
    )
    match = match_topic(text, with_scope("document"))
    assert match == TopicMatch(
        RULE.id,
        0.5,
        (
            "A: Pyongyang said.",
            "B: Moscow said.",
            "C: DPRK sends Kremlin arms.",
            "E: DPRK arms.",
            "H: Pyongyang, Moscow, munitions.",
        ),
    )


def test_evidence_is_capped_at_five_sentences_in_text_order() -> None:
    sentences = body(7)
    match = match_topic(analysis(TITLE, *sentences), RULE)
    assert match is not None
    assert match.score == 0.992188
    assert match.evidence == tuple(s.text for s in sentences[:MAX_EVIDENCE])


def test_evidence_drops_repeats_before_the_cap() -> None:
    # Feeds often repeat the headline as the first body sentence.
    repeat = sent(" Pyongyang ships shells\n to   Moscow ", 1, "pyongyang", RU, ARMS)
    text = analysis(HEADLINE, repeat, *body(5))
    match = match_topic(text, RULE)
    assert match is not None
    assert match.score == round(1 - 0.5**8, 6)  # 7 satisfying sentences and the headline
    assert match.evidence == (HEADLINE.text, *(s.text for s in body(4)))


def test_evidence_folds_whitespace_and_truncates_long_sentences() -> None:
    long_text = "Pyongyang\n\tsent shells   to Moscow. " + "x" * 600
    match = match_topic(analysis(TITLE, sent(long_text, 1, "pyongyang", RU, ARMS)), RULE)
    assert match is not None
    (evidence,) = match.evidence
    assert len(evidence) == MAX_EVIDENCE_CHARS
    assert evidence == ("Pyongyang sent shells to Moscow. " + "x" * 600)[:MAX_EVIDENCE_CHARS]


# --- properties -------------------------------------------------------------------------------

VOCABULARY = sorted(RULE.terms | {"entity:kim jong un", "unrelated", "kremlin"})

SENTENCES = st.lists(
    st.builds(
        AnalysedSentence,
        text=st.text(max_size=700),
        paragraph=st.integers(min_value=0, max_value=4),
        terms=st.frozensets(st.sampled_from(VOCABULARY), max_size=6),
    ),
    max_size=30,
).map(lambda ss: TextAnalysis(tuple(sorted(ss, key=lambda s: s.paragraph))))

RULES = st.lists(
    st.builds(
        TopicRule,
        id=st.sampled_from(["a", "b", "c"]),
        title=st.just("t"),
        scope=st.sampled_from(["sentence", "paragraph", "document"]),
        groups=st.lists(
            st.frozensets(st.sampled_from(VOCABULARY), min_size=1), min_size=1, max_size=4
        ).map(tuple),
        none=st.frozensets(st.sampled_from(VOCABULARY), max_size=2),
        min_matches=st.integers(min_value=1, max_value=4),
    ),
    max_size=4,
)


@given(SENTENCES, RULES)
def test_match_topics_never_raises_and_scores_stay_in_range(
    text: TextAnalysis, rules: list[TopicRule]
) -> None:
    matches = match_topics(text, rules)
    assert len(matches) <= len(rules)
    for match in matches:
        assert 0.0 <= match.score <= 1.0
        assert match.score >= 0.5
        assert 1 <= len(match.evidence) <= MAX_EVIDENCE
        assert all(len(e) <= MAX_EVIDENCE_CHARS for e in match.evidence)
        assert len(set(match.evidence)) == len(match.evidence)


# --- nlp.py: term index, paragraphs, document text ---------------------------------------------

INDEX = TermIndex(
    {
        "artillery": (
            ("artillery", ("artillery",)),
            ("artillery shells", ("artillery", "shell")),
            ("artillery shells", ("artillery", "shells")),
        ),
        "weapon": (("weapons", ("weapon",)),),
        "weapons": (("weapons", ("weapons",)),),
        "north": (("north korean", ("north", "korean")),),
    }
)


@pytest.mark.parametrize(
    ("lowers", "lemmas", "found"),
    [
        (
            ["the", "artillery", "shells", "arrived"],
            ["the", "artillery", "shell", "arrive"],
            {"artillery", "artillery shells"},
        ),
        # lemma only: "weapon" in the text finds the term "weapons"
        (["a", "weapon"], ["a", "weapon"], {"weapons"}),
        (["weapons"], ["weapon"], {"weapons"}),
        # a phrase cut off by the end of the sentence
        (["more", "artillery"], ["more", "artillery"], {"artillery"}),
        (["north"], ["north"], set()),
        # whole tokens only
        (["northern", "korean"], ["northern", "korean"], set()),
        (["north", "korean", "troops"], ["north", "korean", "troop"], {"north korean"}),
        # a phrase must be whole in one of the two sequences, not mixed
        (["artillery", "shelling"], ["artillery", "shells"], {"artillery", "artillery shells"}),
        (["artillery", "shelled"], ["artilleries", "shell"], {"artillery"}),
        ([], [], set()),
    ],
)
def test_term_index_find(lowers: list[str], lemmas: list[str], found: set[str]) -> None:
    assert INDEX.find(lowers, [(lemma,) for lemma in lemmas]) == found


@pytest.mark.parametrize(
    ("lowers", "lemmas", "found"),
    [
        # A word whose part of speech is not known has every lemma it may have.
        (["shells"], [{"shells", "shell"}], set()),
        (
            ["artillery", "shells"],
            [{"artillery"}, {"shells", "shell"}],
            {"artillery", "artillery shells"},
        ),
        (["weapons", "x"], [{"weapons", "weapon"}, {"x"}], {"weapons"}),
        # Every token of a phrase must be among the lemmas at its place.
        (["north", "koreans"], [{"north"}, {"koreans", "korean"}], {"north korean"}),
        (["north", "korea"], [{"north"}, {"korea"}], set()),
        # A phrase longer than what is left of the sentence.
        (["north"], [{"north"}], set()),
    ],
)
def test_term_index_find_with_lemma_alternatives(
    lowers: list[str], lemmas: list[set[str]], found: set[str]
) -> None:
    assert INDEX.find(lowers, lemmas) == found


def test_empty_term_index_finds_nothing() -> None:
    assert TermIndex({}).find(["arms"], [("arm",)]) == set()


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("", [0]),
        ("Title", [0]),
        ("a\nb", [0]),
        ("Title\n\nBody", [0, 7]),
        ("T\n\nA\n\nB", [0, 3, 6]),
        ("\n\nbody", [0, 2]),
        ("a\n\n\n\nb", [0, 3, 5]),
    ],
)
def test_paragraph_starts(text: str, starts: list[int]) -> None:
    assert paragraph_starts(text) == starts


@pytest.mark.parametrize(
    ("title", "text", "max_chars", "expected"),
    [
        ("Title", "Body", 100, "Title\n\nBody"),
        ("Title", "Body", 8, "Title\n\nB"),
        ("Title", "Body", 3, "Tit"),
        # no title: paragraph 0 stays empty, so the body is never taken for a headline
        ("", "Body", 100, "\n\nBody"),
        ("", "", 100, "\n\n"),
        # a title is one paragraph, whatever its markup left in it
        ("Breaking\n\nnews  now", "Body", 100, "Breaking news now\n\nBody"),
    ],
)
def test_document_text(title: str, text: str, max_chars: int, expected: str) -> None:
    assert document_text(title, text, max_chars) == expected


@pytest.mark.parametrize(
    ("title", "body", "body_paragraph_starts"),
    [
        ("Headline", "First.\n\nSecond.", [10, 18]),
        ("", "First.\n\nSecond.", [2, 10]),
        ("Head\n\nline", "First.", [11]),
    ],
)
def test_body_paragraphs_start_after_paragraph_zero(
    title: str, body: str, body_paragraph_starts: list[int]
) -> None:
    assert paragraph_starts(document_text(title, body, 1000))[1:] == body_paragraph_starts
