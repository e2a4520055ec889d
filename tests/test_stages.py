"""Each stage transform of the chain on a ``TestPipeline``, and the chain itself in its batch
form: small module-level inputs, assertions on the records that come out.

The stages' pure logic is tested table-driven elsewhere (test_normalize, test_topics,
test_near_duplicates, ...); here each Beam shell is checked to route, join and tag what that
logic decides. ``ClusterNearDuplicates`` has its stage test in test_near_duplicates.py.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to
from articles import ARMS_STORIES, filler_story, make_article
from datasets import commit_records

from newswatch.connectors.dataset.write import ALERT_FILES, ARTICLE_FILES
from newswatch.pipelines import run as batch
from newswatch.pipelines.chain import AnalyseArticles
from newswatch.pipelines.control.config import load_config
from newswatch.pipelines.control.settings import Config, NlpSettings
from newswatch.pipelines.core.alerting import alert_id
from newswatch.pipelines.core.batching import balanced_batches
from newswatch.pipelines.core.normalization import NormalizeSettings, article_id
from newswatch.pipelines.stages.alerts import RaiseAlerts
from newswatch.pipelines.stages.analyse import (
    PASS,
    ExtractEntities,
    ExtractEntitiesStreaming,
    MatchTopics,
    _AnalyseBatchFn,
    _BalancedBatchesFn,
)
from newswatch.pipelines.stages.dedupe import DropSeen
from newswatch.pipelines.stages.normalize import Normalize
from newswatch.schemas import Alert, Article, RawArticle, Rejection, TopicMatch

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
FEED = "https://wire.example/feed.xml"
ARMS = "dprk-russia-arms"
DRONES = "iran-russia-drones"

# The bundled config: its topic rules and alias table (no file is read but the package's).
BUNDLED = load_config(None)


def raw(**fields: Any) -> RawArticle:
    return RawArticle(**{"source": "wire", "origin": FEED, "fetched_at": NOW, **fields})


def article(name: str, text: str = "Text.", hours_ago: float = 1, **fields: Any) -> Article:
    """An article of this run from https://wire.example/NAME, published ``hours_ago``."""
    return make_article(
        f"https://wire.example/{name}",
        **{
            "title": name,
            "text": text,
            "published_at": NOW - timedelta(hours=hours_ago),
            "ingested_at": NOW,
            **fields,
        },
    )


# --- Normalize --------------------------------------------------------------------------------

RAW_ITEMS = [
    raw(
        url="https://wire.example/harbour?utm_source=rss",
        title="Harbour <b>reopens</b>",
        summary="<p>The harbour reopened on Monday.</p>",
        published="2026-11-30T07:00:00Z",
        authors=(" Ana Lima ",),
        language="EN-GB",
    ),
    raw(guid="urn:wire:2", title="Only an id", summary="Kept by its guid."),
    raw(title="Orphan", summary="Neither a link nor an id."),
    raw(url="https://wire.example/empty"),
]
NORMALIZED = [
    Article(
        article_id=article_id("https://wire.example/harbour"),
        source="wire",
        url="https://wire.example/harbour",
        title="Harbour reopens",
        text="The harbour reopened on Monday.",
        published_at=datetime(2026, 11, 30, 7, 0, tzinfo=UTC),
        ingested_at=NOW,
        language="en",  # ISO 639-1: detected, and the feed's "EN-GB" agrees
        authors=("Ana Lima",),
        cluster_id=article_id("https://wire.example/harbour"),
    ),
    Article(
        article_id=article_id("guid:urn:wire:2"),
        source="wire",
        url="urn:wire:2",
        title="Only an id",
        text="Kept by its guid.",
        published_at=None,
        ingested_at=NOW,
        language="en",  # detected; the feed declared none
        cluster_id=article_id("guid:urn:wire:2"),
    ),
]
REJECTED = [
    Rejection(
        source="wire",
        reason="missing_url_and_id",
        detail="the item has neither a web link nor an id",
        rejected_at=NOW,
        locator={"origin": FEED},
    ),
    Rejection(
        source="wire",
        reason="empty_text",
        detail="the item has neither a title nor any text",
        rejected_at=NOW,
        locator={"origin": FEED},
    ),
]


def test_normalize_splits_articles_from_rejections() -> None:
    with test_pipeline.TestPipeline() as p:
        out = p | beam.Create(RAW_ITEMS) | Normalize(NormalizeSettings())
        assert_that(out["articles"], equal_to(NORMALIZED), label="Articles")
        assert_that(out["rejected"], equal_to(REJECTED), label="Rejected")


# --- DropSeen ---------------------------------------------------------------------------------

STORED_EARLIER = article("stored", hours_ago=30)
TWICE_EARLY = article("twice", hours_ago=5, source="wire-a")
TWICE_LATE = dataclasses.replace(TWICE_EARLY, source="wire-b", published_at=NOW)
ONCE = article("once")
RUN_ARTICLES = [dataclasses.replace(STORED_EARLIER, ingested_at=NOW), TWICE_LATE, TWICE_EARLY, ONCE]


def test_drop_seen_drops_stored_ids_and_keeps_the_earliest_copy(tmp_path: Path) -> None:
    commit_records(tmp_path, ARTICLE_FILES, [STORED_EARLIER])
    with test_pipeline.TestPipeline() as p:
        out = p | beam.Create(RUN_ARTICLES) | DropSeen(str(tmp_path))
        assert_that(out, equal_to([TWICE_EARLY, ONCE]))


def test_drop_seen_on_an_empty_dataset_keeps_one_copy_of_each(tmp_path: Path) -> None:
    with test_pipeline.TestPipeline() as p:
        out = p | beam.Create(RUN_ARTICLES) | DropSeen(str(tmp_path / "none-yet"))
        assert_that(out, equal_to([RUN_ARTICLES[0], TWICE_EARLY, ONCE]))


# --- ExtractEntities + MatchTopics (the real spaCy model) --------------------------------------


ARMS_ARTICLE = article("arms", ARMS_STORIES[0]["text"], title=ARMS_STORIES[0]["title"])
FILLER = filler_story(3)
FILLER_ARTICLE = article("filler", FILLER["text"], title=FILLER["title"])
ARMS_EVIDENCE_SENTENCE = (
    "North Korea has shipped more than a million artillery shells to Russia for its war in "
    "Ukraine, the White House said on Friday."
)


def test_the_nlp_stages_of_two_passes_share_their_loaded_pipelines() -> None:
    # A worker keeps the loaded spaCy pipelines of one token; the next pass of a run (a new
    # pipeline, equal settings) must find them, other settings must not.
    config = load_config(None)
    one = _AnalyseBatchFn(config.nlp, config.aliases, config.topics)
    again = _AnalyseBatchFn(dataclasses.replace(config.nlp), config.aliases, tuple(config.topics))
    fewer_rules = _AnalyseBatchFn(config.nlp, config.aliases, config.topics[1:])
    other_settings = _AnalyseBatchFn(
        dataclasses.replace(config.nlp, max_chars=config.nlp.max_chars + 1),
        config.aliases,
        config.topics,
    )
    assert one._token == again._token
    assert len({one._token, fewer_rules._token, other_settings._token}) == 3


def canonical_names(item: Article | tuple[Article, Any]) -> tuple[str, list[str]]:
    a = item[0] if isinstance(item, tuple) else item
    return a.url, sorted({e.canonical for e in a.entities})


def topic_ids(a: Article) -> tuple[str, list[str]]:
    return a.url, [t.id for t in a.topics]


def contains_names(expected: dict[str, set[str]]) -> Any:
    """A matcher: each article's canonical names include the expected ones."""

    def check(actual: list[tuple[str, list[str]]]) -> None:
        found = dict(actual)
        if found.keys() != expected.keys():
            raise BeamAssertException(f"articles {sorted(found)} != {sorted(expected)}")
        for url, names in expected.items():
            if not names <= set(found[url]):
                raise BeamAssertException(f"{url}: {sorted(names - set(found[url]))} not found")

    return check


def arms_evidence(actual: list[Article]) -> None:
    [arms] = [a for a in actual if a.topics]
    [match] = arms.topics
    if not (match.id == ARMS and 0 < match.score <= 1 and ARMS_EVIDENCE_SENTENCE in match.evidence):
        raise BeamAssertException(f"unexpected match {match}")


@pytest.mark.parametrize("form", [ExtractEntities, ExtractEntitiesStreaming])
def test_extract_entities_and_match_topics(form: type, spacy_loaded_once: None) -> None:
    with test_pipeline.TestPipeline() as p:
        analysed = (
            p
            | beam.Create([ARMS_ARTICLE, FILLER_ARTICLE])
            | form(BUNDLED.nlp, BUNDLED.aliases, BUNDLED.topics)
        )
        matched = analysed | MatchTopics(BUNDLED.topics)
        arms_names = {"North Korea", "Russia", "Kim Jong Un", "Vladimir Putin", "John Kirby"}
        assert_that(
            analysed | "Entities" >> beam.Map(canonical_names),
            contains_names({ARMS_ARTICLE.url: arms_names, FILLER_ARTICLE.url: set()}),
            label="CanonicalEntities",
        )
        assert_that(
            matched | "Topics" >> beam.Map(topic_ids),
            equal_to([(ARMS_ARTICLE.url, [ARMS]), (FILLER_ARTICLE.url, [])]),
            label="MatchedTopics",
        )
        assert_that(matched, arms_evidence, label="Evidence")


def test_a_pass_becomes_batches_of_equal_work_in_id_order() -> None:
    # Text lengths 1..20 times a paragraph: by count, batches of 3 would differ 20-fold.
    articles = [article(f"a{i:02d}", text="Words of a paragraph. " * (i + 1)) for i in range(20)]
    fn = _BalancedBatchesFn(NlpSettings(batch_size=3))
    batches = list(fn.process((PASS, reversed(articles))))
    assert [number for number, _ in batches] == list(range(8))  # 20 / 3 -> 7, made 8
    work = [sum(len(a.title) + len(a.text) for a in batch) for _, batch in batches]
    longest = max(len(a.title) + len(a.text) for a in articles)
    assert max(work) - min(work) <= longest
    assert all(1 <= len(batch) <= 3 for _, batch in batches)
    ids = [a.article_id for _, batch in batches for a in batch]
    assert sorted(ids) == sorted(a.article_id for a in articles)
    assert all(
        [a.article_id for a in batch] == sorted(a.article_id for a in batch) for _, batch in batches
    )
    # The same articles in any order make the same batches.
    assert list(fn.process((PASS, articles))) == batches


def test_balanced_batches() -> None:
    assert balanced_batches([], len, 4) == []
    assert balanced_batches(["abc"], len, 4) == [["abc"]]
    # Never an empty batch, however many the multiple asks for.
    assert balanced_batches(["a", "bb", "ccc"], len, 64, multiple=8) == [["ccc"], ["bb"], ["a"]]
    # Costliest first, each to the lightest batch with room; order kept within a batch.
    words = ["aaaaaaaaa", "b", "c", "d", "eeeee", "fffff", "gg"]
    assert balanced_batches(words, len, 4, multiple=2) == [
        ["aaaaaaaaa", "c", "gg"],
        ["b", "d", "eeeee", "fffff"],
    ]
    for size, multiple in ((0, 1), (1, 0)):
        with pytest.raises(ValueError):
            balanced_batches(words, len, size, multiple)


# --- RaiseAlerts ------------------------------------------------------------------------------


def matched(name: str, cluster: str, *topics: tuple[str, float], **fields: Any) -> Article:
    return article(
        name,
        cluster_id=article_id(f"https://wire.example/{cluster}"),
        topics=tuple(TopicMatch(t, score, (f"{name} says so.",)) for t, score in topics),
        **fields,
    )


STORY_FIRST = matched("story", "story", (ARMS, 0.6))
STORY_BETTER = matched("story-copy", "story", (ARMS, 0.9))  # same story, better scored
TWO_TOPICS = matched("both", "both", (ARMS, 0.8), (DRONES, 0.7))
ALERTED_BEFORE = matched("old", "old", (ARMS, 0.9))
A_DUPLICATE = matched("dup", "dup", (ARMS, 0.9), is_duplicate=True)
NO_TOPIC = article("quiet")
PREVIOUS_ALERT = Alert(
    alert_id=alert_id(ARMS, ALERTED_BEFORE.cluster_id),
    topic=ARMS,
    topic_title="North Korea–Russia arms cooperation",
    article_id=ALERTED_BEFORE.article_id,
    cluster_id=ALERTED_BEFORE.cluster_id,
    source="wire",
    title="old",
    url=ALERTED_BEFORE.url,
    published_at=None,
    score=0.9,
    evidence=(),
    entities=(),
    created_at=NOW - timedelta(days=1),
)


def alert_fields(alert: Alert) -> tuple[str, str, str, str, float]:
    return alert.alert_id, alert.topic, alert.cluster_id, alert.article_id, alert.score


def test_raise_alerts_once_per_topic_and_story_and_never_again(tmp_path: Path) -> None:
    commit_records(tmp_path, ALERT_FILES, [PREVIOUS_ALERT])
    articles = [STORY_FIRST, STORY_BETTER, TWO_TOPICS, ALERTED_BEFORE, A_DUPLICATE, NO_TOPIC]
    expected = [
        (alert_id(ARMS, STORY_BETTER.cluster_id), ARMS, STORY_BETTER.cluster_id,
         STORY_BETTER.article_id, 0.9),
        (alert_id(ARMS, TWO_TOPICS.cluster_id), ARMS, TWO_TOPICS.cluster_id,
         TWO_TOPICS.article_id, 0.8),
        (alert_id(DRONES, TWO_TOPICS.cluster_id), DRONES, TWO_TOPICS.cluster_id,
         TWO_TOPICS.article_id, 0.7),
    ]  # fmt: skip
    with test_pipeline.TestPipeline() as p:
        alerts = p | beam.Create(articles) | RaiseAlerts(BUNDLED.topics, str(tmp_path))
        assert_that(alerts | beam.Map(alert_fields), equal_to(expected))


# --- AnalyseArticles: the chain with the batch forms of the stateful stages --------------------


def story_item(
    story: dict[str, Any], url: str, hours_ago: float, source: str = "wire"
) -> RawArticle:
    return raw(
        source=source,
        url=url,
        title=story["title"],
        summary="".join(f"<p>{p}</p>" for p in story["text"].split("\n\n")),
        published=(NOW - timedelta(hours=hours_ago)).isoformat(),
    )


ARMS_TEXT = ARMS_STORIES[0]
CHAIN_INPUT = [
    story_item(ARMS_TEXT, "https://wire.example/arms", hours_ago=3),
    # The same URL from another feed: one article.
    story_item(ARMS_TEXT, "https://wire.example/arms?utm_medium=feed", 2, source="mirror"),
    # The same story under another URL: stored, as a near-duplicate of the first.
    story_item(ARMS_TEXT, "https://site.example/world/arms", hours_ago=1, source="site"),
    story_item(filler_story(1), "https://wire.example/filler", hours_ago=2),
    story_item(filler_story(2), "https://wire.example/stored-before", hours_ago=2),
    raw(title="No link"),
]
ARMS_ID = article_id("https://wire.example/arms")


def stored_row(a: Article) -> tuple[str, str, bool, tuple[str, ...]]:
    """(url, its cluster: "arms", "own" or the id, is_duplicate, topic ids)."""
    cluster = "arms" if a.cluster_id == ARMS_ID else "own" if a.cluster_id == a.article_id else "?"
    return a.url, cluster, a.is_duplicate, tuple(t.id for t in a.topics)


def alert_row(alert: Alert) -> tuple[str, str, str]:
    return alert.topic, alert.url, alert.cluster_id


def rejection_reason(rejection: Rejection) -> str:
    return rejection.reason


@pytest.fixture
def chain_config(tmp_path: Path) -> Config:
    before = article("stored-before", hours_ago=30)
    commit_records(tmp_path, ARTICLE_FILES, [before])
    return dataclasses.replace(BUNDLED, output=str(tmp_path))


def test_the_chain_with_batch_stages(chain_config: Config, spacy_loaded_once: None) -> None:
    with test_pipeline.TestPipeline() as p:
        out = (
            p
            | beam.Create(CHAIN_INPUT)
            | AnalyseArticles(chain_config, batch.batch_stages(chain_config))
        )
        assert_that(
            out["articles"] | "Stored" >> beam.Map(stored_row),
            equal_to(
                [
                    ("https://wire.example/arms", "arms", False, (ARMS,)),
                    ("https://site.example/world/arms", "arms", True, (ARMS,)),
                    ("https://wire.example/filler", "own", False, ()),
                ]
            ),
            label="Articles",
        )
        assert_that(
            out["alerts"] | "Alerts" >> beam.Map(alert_row),
            equal_to([(ARMS, "https://wire.example/arms", ARMS_ID)]),
            label="Alerts",
        )
        assert_that(
            out["rejected"] | "Reasons" >> beam.Map(rejection_reason),
            equal_to(["missing_url_and_id"]),
            label="Rejected",
        )
