"""The rule language's newer forms: alternative patterns, ``within``, ``unless``, term sets.

Pure: hand-built analyses, no spaCy model. The old single-pattern form is covered by
test_topics.py; here it is also checked to match exactly as its ``patterns:`` spelling.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.core.rule_files import parse_topic_rules
from newswatch.pipelines.core.rules import (
    AnalysedSentence,
    Pattern,
    TextAnalysis,
    TopicRule,
    match_topic,
)
from newswatch.pipelines.quality.explanation import explain_rule
from newswatch.schemas import TopicMatch

RULES_YAML = """
terms:
  korea: ["entity:North Korea", "Pyongyang"]
  arms: ["shells", "missiles"]
topics:
  - id: arms
    patterns:
      - min_matches: 2
        all:
          - any: ["$korea"]
          - any: ["Moscow"]
          - any: ["$arms", "troops"]
        unless: ["South Korea"]
      - scope: paragraph
        within: 3
        all:
          - any: ["$korea"]
          - any: ["workers"]
    none: ["football"]
"""

ARMS = parse_topic_rules(yaml.safe_load(RULES_YAML), "topics.yaml")[0]


def sent(text: str, paragraph: int, *positions: tuple[str, int]) -> AnalysedSentence:
    """A sentence holding terms at word numbers of the document."""
    return AnalysedSentence(
        text=text,
        paragraph=paragraph,
        terms=frozenset(key for key, _ in positions),
        positions=tuple(sorted(positions)),
    )


def analysis(*sentences: AnalysedSentence) -> TextAnalysis:
    return TextAnalysis(tuple(sentences))


TITLE = sent("Talks", 0)
SHELLS_1 = sent(
    "Pyongyang sent shells to Moscow.", 1, ("pyongyang", 0), ("shells", 2), ("moscow", 4)
)
SHELLS_2 = sent(
    "Moscow got missiles from Pyongyang.", 1, ("moscow", 5), ("missiles", 7), ("pyongyang", 9)
)


def test_term_sets_expand_where_they_are_named() -> None:
    first, second = ARMS.patterns
    assert first == Pattern(
        scope="sentence",
        groups=(
            frozenset({"entity:north korea", "pyongyang"}),
            frozenset({"moscow"}),
            frozenset({"shells", "missiles", "troops"}),
        ),
        min_matches=2,
        unless=frozenset({"south korea"}),
    )
    assert second == Pattern(
        scope="paragraph",
        groups=(frozenset({"entity:north korea", "pyongyang"}), frozenset({"workers"})),
        within=3,
    )
    assert ARMS.groups == ()  # no top-level `all`: the patterns are the whole rule
    assert ARMS.terms >= {"south korea", "football", "workers"}


def test_a_topic_matches_when_any_pattern_does() -> None:
    # the first pattern needs two sentences; one is not enough
    assert match_topic(analysis(TITLE, SHELLS_1), ARMS) is None
    assert match_topic(analysis(TITLE, SHELLS_1, SHELLS_2), ARMS) == TopicMatch(
        "arms", 0.75, (SHELLS_1.text, SHELLS_2.text)
    )
    # the second pattern alone, in one paragraph
    workers = sent("North Korean workers arrived.", 1, ("entity:north korea", 0), ("workers", 2))
    assert match_topic(analysis(TITLE, workers), ARMS) == TopicMatch("arms", 0.5, (workers.text,))


def test_a_scope_two_patterns_agree_on_counts_once() -> None:
    both = sent(
        "Pyongyang workers sent shells to Moscow.",
        1,
        ("pyongyang", 0),
        ("workers", 1),
        ("shells", 3),
        ("moscow", 5),
    )
    match = match_topic(analysis(TITLE, both, SHELLS_2), ARMS)
    # the second pattern's window lies inside `both`, a sentence the first pattern counts
    # too: two scopes in all, not three
    assert match is not None and match.score == 0.75


@pytest.mark.parametrize(
    ("gap", "matches"),
    [(1, True), (3, True), (4, False), (20, False)],
)
def test_within_counts_words_between_the_terms(gap: int, matches: bool) -> None:
    s = sent("...", 1, ("pyongyang", 10), ("workers", 10 + gap))
    assert (match_topic(analysis(TITLE, s), ARMS) is not None) is matches


def test_within_spans_sentences_only_inside_its_scope() -> None:
    # "paragraph" scope: the window may cross a sentence boundary, never a paragraph
    a = sent("Pyongyang said so.", 1, ("pyongyang", 0))
    b = sent("Workers left.", 1, ("workers", 2))
    assert match_topic(analysis(TITLE, a, b), ARMS) is not None
    b_elsewhere = sent("Workers left.", 2, ("workers", 2))
    assert match_topic(analysis(TITLE, a, b_elsewhere), ARMS) is None


def test_within_needs_word_positions() -> None:
    bare = AnalysedSentence("Pyongyang workers.", 1, frozenset({"pyongyang", "workers"}))
    assert match_topic(analysis(TITLE, bare), ARMS) is None


def test_unless_vetoes_its_pattern_in_that_scope_only() -> None:
    vetoed = sent(
        "South Korea says Pyongyang sent shells to Moscow.",
        1,
        ("south korea", 0),
        ("pyongyang", 3),
        ("shells", 5),
        ("moscow", 7),
    )
    # the vetoed sentence does not count, so one satisfying sentence is left: no match
    assert match_topic(analysis(TITLE, vetoed, SHELLS_2), ARMS) is None
    # a third satisfying sentence elsewhere makes two again
    third = sent(
        "Moscow fired Pyongyang's shells.", 2, ("moscow", 12), ("pyongyang", 14), ("shells", 15)
    )
    match = match_topic(analysis(TITLE, vetoed, SHELLS_2, third), ARMS)
    assert match is not None and vetoed.text not in match.evidence
    report = explain_rule(analysis(TITLE, vetoed, SHELLS_2), ARMS)
    assert (report.patterns[0].satisfied, report.patterns[0].vetoed) == (1, 1)


def test_none_still_vetoes_the_whole_document() -> None:
    football = sent("Football tonight.", 3, ("football", 30))
    assert match_topic(analysis(TITLE, SHELLS_1, SHELLS_2, football), ARMS) is None
    assert explain_rule(analysis(TITLE, SHELLS_1, SHELLS_2, football), ARMS).vetoed_by == (
        "football",
    )


def test_top_level_all_and_patterns_combine() -> None:
    data = {
        "topics": [
            {
                "id": "t",
                "all": [{"any": ["a"]}],
                "within": 2,
                "unless": ["b"],
                "patterns": [{"all": [{"any": ["c"]}], "scope": "document"}],
            }
        ]
    }
    (rule,) = parse_topic_rules(data, "topics.yaml")
    assert rule.patterns == (
        Pattern("sentence", (frozenset({"a"}),), 1, 2, frozenset({"b"})),
        Pattern("document", (frozenset({"c"}),)),
    )


def pattern_rules(**pattern: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"all": [{"any": ["x"]}]}
    return {"topics": [{"id": "t", "patterns": [base, {**base, **pattern}]}]}


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (pattern_rules(alll=[]), "topics[0].patterns[1].alll", "unknown key"),
        (pattern_rules(none=["x"]), "topics[0].patterns[1].none", "unknown key"),
        (pattern_rules(within=0), "topics[0].patterns[1].within", "whole number of words"),
        (pattern_rules(within="5"), "topics[0].patterns[1].within", "whole number of words"),
        (pattern_rules(within=True), "topics[0].patterns[1].within", "whole number of words"),
        (pattern_rules(scope="title"), "topics[0].patterns[1].scope", "sentence, paragraph"),
        (pattern_rules(unless="b"), "topics[0].patterns[1].unless", "non-empty list of terms"),
        (pattern_rules(min_matches=0), "topics[0].patterns[1].min_matches", "whole number"),
        (pattern_rules(all=[]), "topics[0].patterns[1].all", "non-empty list of groups"),
        (
            {"topics": [{"id": "t", "patterns": {"all": []}}]},
            "topics[0].patterns",
            "list of patterns",
        ),
        (
            {"topics": [{"id": "t", "patterns": ["x"]}]},
            "topics[0].patterns[0]",
            "must be a mapping",
        ),
        # a pattern key at the top of a rule without `all` belongs inside the patterns
        (
            {"topics": [{"id": "t", "scope": "document", "patterns": [{"all": [{"any": ["x"]}]}]}]},
            "topics[0].scope",
            "inside each of 'patterns'",
        ),
        # term sets
        ({"terms": [], "topics": [{"id": "t", "all": [{"any": ["x"]}]}]}, "terms", "mapping"),
        ({"terms": {"a b": ["x"]}, "topics": []}, "terms.a b", "set name"),
        ({"terms": {"a": []}, "topics": []}, "terms.a", "non-empty list of terms"),
        ({"terms": {"a": ["$b"]}, "topics": []}, "terms.a[0]", "no term set '$b'"),
        (
            {"terms": {"arms": ["x"]}, "topics": [{"id": "t", "all": [{"any": ["$army"]}]}]},
            "topics[0].all[0].any[0]",
            "no term set '$army' (defined: $arms)",
        ),
        ({"topics": [{"id": "t", "all": [{"any": ["$arms"]}]}]}, "topics[0].all[0].any[0]", "none"),
        ({"topics": [], "term": {}}, "term", "unknown key"),
    ],
)
def test_errors_name_the_key_path(data: Any, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_topic_rules(data, "topics.yaml")
    assert (info.value.file, info.value.path) == ("topics.yaml", path)
    assert message in info.value.message


# --- the old form matches exactly as its `patterns:` spelling -----------------------------

VOCABULARY = ["a", "b", "c", "d", "e"]
SENTENCES = st.lists(
    st.builds(
        AnalysedSentence,
        text=st.sampled_from(["s1", "s2", "s3", "s4"]),
        paragraph=st.integers(min_value=0, max_value=3),
        terms=st.frozensets(st.sampled_from(VOCABULARY), max_size=4),
    ),
    max_size=12,
).map(lambda ss: TextAnalysis(tuple(sorted(ss, key=lambda s: s.paragraph))))
OLD_RULES = st.fixed_dictionaries(
    {
        "id": st.just("t"),
        "scope": st.sampled_from(["sentence", "paragraph", "document"]),
        "all": st.lists(
            st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=3).map(
                lambda terms: {"any": terms}
            ),
            min_size=1,
            max_size=3,
        ),
        "none": st.lists(st.sampled_from(VOCABULARY), max_size=1),
        "min_matches": st.integers(min_value=1, max_value=3),
    }
)


@given(SENTENCES, OLD_RULES)
def test_old_form_matches_as_a_single_pattern(text: TextAnalysis, old: dict[str, Any]) -> None:
    pattern = {k: old[k] for k in ("scope", "all", "min_matches")}
    new = {"id": "t", "none": old["none"], "patterns": [pattern]}
    (old_rule,) = parse_topic_rules({"topics": [old]}, "old.yaml")
    (new_rule,) = parse_topic_rules({"topics": [new]}, "new.yaml")
    assert old_rule.patterns == new_rule.patterns
    assert isinstance(old_rule, TopicRule)
    assert match_topic(text, old_rule) == match_topic(text, new_rule)
