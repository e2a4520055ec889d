"""The bundled topic rules against labelled news texts and the bundled sample feeds.

Runs the real spaCy model (loaded once for the module): the rules are only as good as the
entities and sentences the model gives them, so a stub would test nothing. The labelled
texts live in ``topic_cases.yaml``; each case names the exact set of topics it must match.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import feedparser
import pytest
import yaml

from newswatch.pipelines.control.config import default_alias_table, default_topic_rules
from newswatch.pipelines.core.nlp import TextAnalyser, document_text
from newswatch.pipelines.core.normalization import NormalizeSettings, normalize_entry
from newswatch.pipelines.core.rules import TextAnalysis, TopicRule, match_topics
from newswatch.schemas import Article, RawArticle

CASES_FILE = Path(__file__).with_name("topic_cases.yaml")
SAMPLES = files("newswatch.pipelines").joinpath("defaults/samples")
SAMPLE_FEEDS = {"world-wire.xml": "rss20", "asia-desk.atom.xml": "atom10"}
MAX_CHARS = 100_000
FETCHED_AT = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)
_SPACE = re.compile(r"\s+")

WIRE = "https://news.worldwire.example"
ASIA = "https://asiadesk.example"
TREATY_LINK = f"{WIRE}/world/asia/2024/06/19/putin-kim-sign-mutual-defence-treaty"

# Every sample item, by its link (or its guid when it has none), and the topics it must
# match. The treaty story is in both feeds, the second time with tracking parameters.
SAMPLE_TOPICS: dict[str, set[str]] = {
    f"{WIRE}/world/asia/2024/01/04/north-korea-russia-arms-deal-white-house": {"dprk-russia-arms"},
    TREATY_LINK: {"dprk-russia-arms"},
    f"{WIRE}/world/europe/2024/09/10/iran-ballistic-missiles-russia-blinken": {
        "iran-russia-drones"
    },
    f"{WIRE}/world/europe/2024/08/26/russian-forces-press-towards-pokrovsk": set(),
    f"{WIRE}/world/middle-east/2024/10/23/putin-pezeshkian-kazan-brics": set(),
    f"{WIRE}/sport/2024/07/30/north-korea-table-tennis-silver-paris": set(),
    f"{WIRE}/business/2024/07/31/fed-holds-rates-september-cut": set(),
    f"{WIRE}/climate/2024/11/24/cop29-baku-climate-finance-deal": set(),
    f"{TREATY_LINK}?utm_source=rss&utm_medium=asiadesk": {"dprk-russia-arms"},
    "urn:uuid:6f1c2a4e-8d0b-4c3e-9a57-2b1f0d4c8e11": {"dprk-russia-arms"},
    f"{ASIA}/korea/2024/10/31/kim-oversees-hwasong-19-icbm-test": set(),
    f"{ASIA}/korea/2024/02/13/russian-tourists-masikryong-ski-resort": set(),
    f"{ASIA}/china/2024/10/14/joint-sword-2024b-drills-taiwan": {"china-taiwan-military"},
    f"{ASIA}/taiwan/2024/07/22/han-kuang-exercises-island-wide": set(),
    f"{ASIA}/business/2024/10/31/samsung-q3-profit-ai-chips": set(),
}


# Canonical names the rules rely on, as NER plus the alias table give them.
CANONICAL_NAMES = [
    (
        "North Korean troops are fighting in Kursk, the Kremlin said.",
        {"North Korean": "North Korea", "Kremlin": "Russia"},
    ),
    (
        "Pyongyang shipped shells to Moscow, N. Korean defectors said.",
        {"Pyongyang": "North Korea", "Moscow": "Russia", "N. Korean": "North Korea"},
    ),
    (
        "Kim Jong Un met Putin. Kim later toured a factory with Shoigu.",
        {"Kim": "Kim Jong Un", "Putin": "Vladimir Putin", "Shoigu": "Sergei Shoigu"},
    ),
    # "Kim" alone is any Kim: Kim Jong Un only where he is named in full.
    ("North Korea's Kim toured a factory on Monday.", {"Kim": "Kim"}),
    (
        "The PLA sent jets near Taipei, Taiwanese officials said.",
        {"PLA": "People's Liberation Army", "Taipei": "Taiwan", "Taiwanese": "Taiwan"},
    ),
    ("Iranian drones were sent to Russia, Tehran said.", {"Iranian": "Iran", "Tehran": "Iran"}),
]


def _load_cases() -> list[dict[str, Any]]:
    return yaml.safe_load(CASES_FILE.read_text("utf-8"))["cases"]


CASES = _load_cases()


def _case_param(case: dict[str, Any]) -> Any:
    marks = []
    if case.get("known_miss"):
        marks.append(pytest.mark.xfail(strict=True, reason=case["known_miss"]))
    return pytest.param(case, id=case["id"], marks=marks)


def _case_text(case: dict[str, Any]) -> str:
    return document_text(case["title"], "\n\n".join(case["paragraphs"]), MAX_CHARS)


def _raw_article(entry: Any, feed: str) -> RawArticle:
    """A feedparser entry as a RawArticle: a plain stand-in for the RSS connector, so this
    test checks the sample feeds and the rules, not the connector."""
    content = entry.get("content")
    return RawArticle(
        source=feed,
        origin=f"package:newswatch.pipelines/defaults/samples/{feed}",
        fetched_at=FETCHED_AT,
        url=entry.get("link"),
        guid=entry.get("id"),
        title=entry.get("title"),
        summary=entry.get("summary"),
        content=content[0].get("value") if content else None,
        # dict.get: FeedParserDict answers a missing key with a look-alike and a warning.
        published=dict.get(entry, "published") or dict.get(entry, "updated"),
    )


def _parsed(feed: str) -> Any:
    return feedparser.parse(SAMPLES.joinpath(feed).read_bytes())


@pytest.fixture(scope="module")
def rules() -> tuple[TopicRule, ...]:
    return default_topic_rules()


@pytest.fixture(scope="module")
def analyser(rules: tuple[TopicRule, ...], spacy_loaded_once: None) -> TextAnalyser:
    return TextAnalyser.load("auto", default_alias_table(), rules)


def _analyse(analyser: TextAnalyser, text: str) -> TextAnalysis:
    _, analysis = next(iter(analyser.analyse([text])))
    return analysis


@pytest.fixture(scope="module")
def sample_articles() -> dict[str, Article]:
    """The sample items, normalized, keyed by link or guid as in SAMPLE_TOPICS."""
    articles = {}
    for feed in SAMPLE_FEEDS:
        for entry in _parsed(feed).entries:
            article = normalize_entry(_raw_article(entry, feed), NormalizeSettings())
            assert isinstance(article, Article), article
            articles[entry.get("link") or entry["id"]] = article
    return articles


def test_cases_name_known_topics(rules: tuple[TopicRule, ...]) -> None:
    known = {rule.id for rule in rules}
    assert len({case["id"] for case in CASES}) == len(CASES), "case ids must be unique"
    for rule_id in known:
        expecting = [case for case in CASES if rule_id in case["expect"]]
        assert expecting, f"no case expects {rule_id}"
        assert len(expecting) < len(CASES), f"no case is a negative for {rule_id}"
    for case in CASES:
        assert set(case["expect"]) <= known, case["id"]


@pytest.mark.parametrize(("text", "expected"), CANONICAL_NAMES)
def test_canonical_names_the_rules_rely_on(
    text: str, expected: dict[str, str], analyser: TextAnalyser
) -> None:
    entities, _ = next(iter(analyser.analyse([text])))
    canonical = {entity.text: entity.canonical for entity in entities}

    assert {surface: canonical.get(surface) for surface in expected} == expected


@pytest.mark.parametrize("case", [_case_param(c) for c in CASES])
def test_case_matches_expected_topics(
    case: dict[str, Any], analyser: TextAnalyser, rules: tuple[TopicRule, ...]
) -> None:
    text = _case_text(case)
    matches = match_topics(_analyse(analyser, text), rules)

    assert {m.id for m in matches} == set(case["expect"])
    flat = _SPACE.sub(" ", text)
    for match in matches:
        assert 0.0 < match.score <= 1.0
        assert match.evidence
        for sentence in match.evidence:
            assert sentence and sentence in flat


@pytest.mark.parametrize("feed", sorted(SAMPLE_FEEDS))
def test_sample_feed_parses(feed: str) -> None:
    parsed = _parsed(feed)

    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == SAMPLE_FEEDS[feed]
    for entry in parsed.entries:
        assert entry.get("title")
        assert entry.get("link") or entry.get("id")
        assert entry.get("content") or entry.get("summary")


def test_sample_items_are_all_labelled(sample_articles: dict[str, Article]) -> None:
    assert set(sample_articles) == set(SAMPLE_TOPICS)
    assert 12 <= len(sample_articles) <= 16


def test_sample_items_are_wire_shaped(sample_articles: dict[str, Article]) -> None:
    for key, article in sample_articles.items():
        assert article.published_at is not None, key
        assert article.published_at.year == 2024, key
        assert 2 <= len(article.text.split("\n\n")) <= 6, key
        assert 100 <= len(article.text.split()) <= 400, key


def test_wire_story_in_both_feeds_is_one_article(sample_articles: dict[str, Article]) -> None:
    first = sample_articles[TREATY_LINK]
    second = sample_articles[f"{TREATY_LINK}?utm_source=rss&utm_medium=asiadesk"]

    assert first.source != second.source
    assert first.url == second.url == TREATY_LINK
    assert first.article_id == second.article_id


@pytest.mark.parametrize("key", sorted(SAMPLE_TOPICS))
def test_sample_item_matches_as_designed(
    key: str,
    sample_articles: dict[str, Article],
    analyser: TextAnalyser,
    rules: tuple[TopicRule, ...],
) -> None:
    article = sample_articles[key]
    text = document_text(article.title, article.text, MAX_CHARS)
    matches = match_topics(_analyse(analyser, text), rules)

    assert {m.id for m in matches} == SAMPLE_TOPICS[key]
