"""The streaming stages' on-disk indexes of committed keys (``pipelines/commit/committed_keys.py``),
over real Parquet and JSON Lines files laid out as a run commits them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from articles import make_article

from newswatch.pipelines.commit.committed_keys import (
    ALERT_KEYS,
    ARTICLE_IDS,
    CommittedKeys,
    SeenKeys,
    index_dir_for,
)
from newswatch.pipelines.core.alerting import alert_key
from newswatch.pipelines.core.normalization import article_id
from newswatch.schemas import Alert, Article
from newswatch.schemas.article import articles_to_table

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def _article(url: str) -> Article:
    return make_article(url, published_at=NOW, ingested_at=NOW)


def old_url(n: int) -> str:
    return f"https://a.example/{n}"


def commit_articles(out: Path, day: str, name: str, urls: list[str]) -> list[str]:
    folder = out / "articles" / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    articles = [_article(url) for url in urls]
    pq.write_table(articles_to_table(articles), folder / f"part-{name}.parquet")
    return [a.article_id for a in articles]


def commit_alerts(out: Path, name: str, keys: list[tuple[str, str]]) -> None:
    folder = out / "alerts" / "dt=2026-11-28"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        Alert(
            alert_id=f"{topic}-{cluster}",
            topic=topic,
            topic_title=topic,
            article_id=cluster,
            cluster_id=cluster,
            source="wire",
            title="t",
            url="https://x.example/",
            published_at=None,
            score=1.0,
            evidence=(),
            entities=(),
            created_at=NOW,
        ).to_json()
        for topic, cluster in keys
    ]
    (folder / f"alerts-{name}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")


def test_the_index_reads_each_committed_file_once_and_survives_a_restart(tmp_path: Path) -> None:
    out = tmp_path / "data"
    old = commit_articles(out, "2025-01-01", "r1-0", [old_url(n) for n in range(3)])
    index = CommittedKeys(str(out), ARTICLE_IDS)
    assert index.path == str(out / "_state" / "index" / "article_ids.sqlite")
    assert index.sync() == 1
    new = commit_articles(out, "2026-11-28", "r2-0", ["https://b.example/1", old_url(0)])
    assert index.sync() == 1 and index.sync() == 0
    assert len(index) == 4  # the repeated id is held once
    assert all(i in index for i in [*old, *new])
    assert article_id("https://c.example/") not in index and 7 not in index
    index.close()

    reopened = CommittedKeys(str(out), ARTICLE_IDS)
    assert reopened.files_read() == 2 and reopened.sync() == 0
    assert all(i in reopened for i in [*old, *new])
    reopened.close()


def test_the_index_is_rebuilt_when_the_dataset_loses_a_file(tmp_path: Path) -> None:
    out = tmp_path / "data"
    gone = commit_articles(out, "2025-01-01", "r1-0", [old_url(0), old_url(1)])
    kept = commit_articles(out, "2026-11-28", "r2-0", ["https://b.example/1"])
    index = CommittedKeys(str(out), ARTICLE_IDS)
    assert index.sync() == 2
    (out / "articles" / "dt=2025-01-01" / "part-r1-0.parquet").unlink()  # a retention job
    assert index.sync() == 1  # read again from scratch: only what is left
    assert kept[0] in index and not any(i in index for i in gone)
    assert len(index) == 1
    index.close()


def test_an_unreadable_index_is_rebuilt(tmp_path: Path) -> None:
    out = tmp_path / "data"
    ids = commit_articles(out, "2026-11-28", "r1-0", [old_url(0)])
    path = Path(index_dir_for(str(out))) / "article_ids.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database, " * 100)
    index = CommittedKeys(str(out), ARTICLE_IDS)
    assert index.sync() == 1 and ids[0] in index
    index.close()


def test_alert_keys_are_indexed_per_topic_and_story(tmp_path: Path) -> None:
    out = tmp_path / "data"
    commit_alerts(out, "r1-0", [("dprk-russia-arms", "c1"), ("other", "c2")])
    index = CommittedKeys(str(out), ALERT_KEYS)
    assert index.sync() == 1
    assert alert_key("dprk-russia-arms", "c1") in index
    assert alert_key("other", "c2") in index
    assert alert_key("other", "c1") not in index  # same story, another topic: not raised yet
    assert index.path.endswith("alert_keys.sqlite")
    index.close()


def test_seen_keys_hold_passed_keys_in_memory_only_until_they_are_committed(
    tmp_path: Path,
) -> None:
    out = tmp_path / "data"
    commit_articles(out, "2026-11-28", "r1-0", [old_url(0)])
    now = [0.0]
    seen = SeenKeys(CommittedKeys(str(out), ARTICLE_IDS), refresh_s=60, clock=lambda: now[0])
    passed = [article_id(f"https://p.example/{n}") for n in range(3)]
    assert [seen.first_time(key) for key in passed] == [True, True, True]
    assert [seen.first_time(key) for key in passed] == [False, False, False]
    assert not seen.first_time(article_id(old_url(0)))  # committed before the stream
    assert seen.recent == 3
    # The window holding two of them commits; the next lookup after refresh_s reads it.
    commit_articles(out, "2026-11-28", "w1-0", ["https://p.example/0", "https://p.example/1"])
    now[0] = 59.0
    assert not seen.first_time(passed[0]) and seen.recent == 3
    now[0] = 60.0
    assert not seen.first_time(passed[0]) and seen.recent == 1  # only the uncommitted one
    assert [seen.first_time(key) for key in passed] == [False, False, False]
    assert seen.first_time(article_id("https://p.example/new"))
    seen.close()
