"""The dataset's end of the chain on a ``TestPipeline``: the writers (``WriteArticles``,
``WriteAlertLog``, ``WriteRejected``) stage files that read back as the records given, and
``CommitRun`` moves a run's staged files into the dataset and writes its run report."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from outputs import dataset_files, read_articles, read_jsonl

from newswatch.connectors.dataset.layout import OutputLayout, StagedFile
from newswatch.connectors.dataset.write import (
    ALERT_FILES,
    ARTICLE_FILES,
    REJECTED_FILES,
    WriteAlertLog,
    WriteArticles,
    WriteRejected,
    stage_all,
)
from newswatch.connectors.rss.read import FeedReport
from newswatch.pipelines.commit.manifest import CommitResult, CommitTargets
from newswatch.pipelines.commit.run_commit import CommitRun
from newswatch.schemas import ARTICLE_SCHEMA, Alert, Article, Entity, Rejection, TopicMatch

RUN = "20261130T090000Z-abc123"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
YESTERDAY = datetime(2026, 11, 29, 18, 30, tzinfo=UTC)

ARTICLES = [
    Article(
        article_id="b" * 32,
        source="wire",
        url="https://wire.example/b",
        title="Talks resume",
        text="Talks resumed in Geneva.",
        published_at=NOW,
        ingested_at=NOW,
        language="en",
        authors=("Ana Lima",),
        entities=(Entity("Geneva", "GPE", "Geneva"),),
        topics=(TopicMatch("talks", 0.5, ("Talks resumed in Geneva.",)),),
        cluster_id="b" * 32,
        minhash=b"\x01\x02",
        shingle_count=4,
    ),
    Article(
        article_id="a" * 32,
        source="wire",
        url="https://wire.example/a",
        title="Harbour reopens",
        text="The harbour reopened.",
        published_at=NOW,
        ingested_at=NOW,
        cluster_id="a" * 32,
    ),
    Article(
        article_id="c" * 32,
        source="site",
        url="https://site.example/c",
        title="Late report",
        text="Filed last night.",
        published_at=YESTERDAY,
        ingested_at=NOW,
        cluster_id="a" * 32,
        is_duplicate=True,
    ),
]
ALERT = Alert(
    alert_id="d" * 32,
    topic="talks",
    topic_title="Peace talks",
    article_id="b" * 32,
    cluster_id="b" * 32,
    source="wire",
    title="Talks resume",
    url="https://wire.example/b",
    published_at=NOW,
    score=0.5,
    evidence=("Talks resumed in Geneva.",),
    entities=("Geneva",),
    created_at=NOW,
)
REJECTION = Rejection(
    source="wire",
    reason="empty_text",
    detail="the item has neither a title nor any text",
    rejected_at=YESTERDAY,
    locator={"origin": "https://wire.example/feed.xml"},
    raw=b"<item/>",
)


def staged(root: Path, kind: str, day: str, name: str, records: int) -> StagedFile:
    return StagedFile(
        kind,
        f"{root}/_staging/{RUN}/{kind}/dt={day}/{name}",
        f"{root}/{kind}/dt={day}/{name}",
        records,
    )


def test_the_writers_stage_files_that_read_back_as_the_records(tmp_path: Path) -> None:
    layout = OutputLayout(str(tmp_path), RUN)
    with test_pipeline.TestPipeline() as p:
        written = (
            p | "Articles" >> beam.Create(ARTICLES) | WriteArticles(layout),
            p | "Alerts" >> beam.Create([ALERT]) | WriteAlertLog(layout),
            p | "Rejections" >> beam.Create([REJECTION]) | WriteRejected(layout),
        ) | beam.Flatten()
        assert_that(
            written,
            equal_to(
                [
                    staged(tmp_path, "articles", "2026-11-30", f"part-{RUN}-00000.parquet", 2),
                    staged(tmp_path, "articles", "2026-11-29", f"part-{RUN}-00000.parquet", 1),
                    staged(tmp_path, "alerts", "2026-11-30", f"alerts-{RUN}-00000.jsonl", 1),
                    staged(tmp_path, "rejected", "2026-11-29", f"rejected-{RUN}-00000.jsonl", 1),
                ]
            ),
        )

    staging = tmp_path / "_staging" / RUN
    today = pq.read_table(staging / "articles" / "dt=2026-11-30" / f"part-{RUN}-00000.parquet")
    assert today.schema.remove_metadata() == ARTICLE_SCHEMA.remove_metadata()
    # Sorted by id within the file.
    assert today.column("article_id").to_pylist() == ["a" * 32, "b" * 32]
    b = today.to_pylist()[1]
    assert (b["url"], b["published_at"], b["authors"]) == (
        "https://wire.example/b",
        NOW,
        ["Ana Lima"],
    )
    assert b["entities"] == [{"text": "Geneva", "label": "GPE", "canonical": "Geneva"}]
    assert b["topics"] == [{"id": "talks", "score": 0.5, "evidence": ["Talks resumed in Geneva."]}]
    assert (b["minhash"], b["shingle_count"]) == (b"\x01\x02", 4)
    late = pq.read_table(staging / "articles" / "dt=2026-11-29" / f"part-{RUN}-00000.parquet")
    assert late.to_pylist()[0]["is_duplicate"] is True

    alerts_file = staging / "alerts" / "dt=2026-11-30" / f"alerts-{RUN}-00000.jsonl"
    [alert_line] = alerts_file.read_text("utf-8").splitlines()
    alert = json.loads(alert_line)
    assert alert["alert_id"] == "d" * 32 and alert["topic"] == "talks"
    assert alert["created_at"] == "2026-11-30T09:00:00+00:00"
    assert alert["evidence"] == ["Talks resumed in Geneva."] and alert["entities"] == ["Geneva"]

    rejected_file = staging / "rejected" / "dt=2026-11-29" / f"rejected-{RUN}-00000.jsonl"
    [rejected] = [json.loads(line) for line in rejected_file.read_text("utf-8").splitlines()]
    assert rejected == {
        "origin": "https://wire.example/feed.xml",
        "source": "wire",
        "reason": "empty_text",
        "detail": "the item has neither a title nor any text",
        "rejected_at": "2026-11-29T18:30:00+00:00",
        "raw_base64": base64.b64encode(b"<item/>").decode(),
    }
    assert not (tmp_path / "articles").exists()  # nothing is visible before the commit


FEED_REPORT = FeedReport(
    source="world",
    url="https://world.example/feed.xml",
    status="ok",
    fetched_at=NOW,
    http_status=200,
    entries=3,
    rejected=1,
    etag='"v7"',
)


def test_commit_run_moves_staged_files_in_and_writes_the_run_report(tmp_path: Path) -> None:
    layout = OutputLayout(str(tmp_path), RUN)
    files = [
        *stage_all(layout, ARTICLE_FILES, ARTICLES),
        *stage_all(layout, ALERT_FILES, [ALERT]),
        *stage_all(layout, REJECTED_FILES, [REJECTION]),
    ]
    with test_pipeline.TestPipeline() as p:
        results = p | beam.Create([*files, FEED_REPORT]) | CommitRun(layout, CommitTargets())
        assert_that(
            results,
            equal_to([CommitResult(run_id=RUN, articles=3, alerts=1, rejected=1, files=4)]),
        )

    assert dataset_files(tmp_path) == [
        f"alerts/dt=2026-11-30/alerts-{RUN}-00000.jsonl",
        f"articles/dt=2026-11-29/part-{RUN}-00000.parquet",
        f"articles/dt=2026-11-30/part-{RUN}-00000.parquet",
        f"rejected/dt=2026-11-29/rejected-{RUN}-00000.jsonl",
    ]
    assert read_articles(tmp_path).column("article_id").to_pylist() == [
        "a" * 32,
        "b" * 32,
        "c" * 32,
    ]
    assert [a["alert_id"] for a in read_jsonl(tmp_path, "alerts")] == ["d" * 32]
    assert not (tmp_path / "_staging" / RUN).exists()
    assert list((tmp_path / "_state" / "commits").glob("*.json")) == []

    report = json.loads((tmp_path / "_state" / "runs" / f"{RUN}.json").read_text("utf-8"))
    assert report["run_id"] == RUN
    assert report["committed"] == {
        "run_id": RUN,
        "articles": 3,
        "alerts": 1,
        "rejected": 1,
        "files": 4,
        "alerts_sent": 0,
        "offsets": 0,
    }
    assert report["feeds"] == [
        {
            "source": "world",
            "url": "https://world.example/feed.xml",
            "status": "ok",
            "http_status": 200,
            "entries": 3,
            "rejected": 1,
            "error": None,
        }
    ]
    assert report["partitions"] == []
    feeds = json.loads((tmp_path / "_state" / "feeds.json").read_text("utf-8"))
    assert feeds["world"]["etag"] == '"v7"'
