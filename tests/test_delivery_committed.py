"""What a commit hands to delivery: copies and sources of a story among the committed
articles, and spike alerts raised from the alert log after a commit."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import feedparser
from articles import make_article
from delivery_receivers import T0, TOPIC, story

from newswatch.pipelines.delivery import SpikeSettings
from newswatch.pipelines.delivery.after_commit import deliver_committed
from newswatch.pipelines.delivery.committed import stories_of
from newswatch.pipelines.delivery.feed import entry_id
from newswatch.pipelines.delivery.sinks import FeedSink
from newswatch.schemas import Alert
from newswatch.schemas.alert import SPIKE


def test_copies_and_sources_come_from_the_articles_of_the_alerts_cluster() -> None:
    original = make_article("https://a.example/1", source="wire")
    copies = [
        make_article("https://b.example/1", source="bbc", cluster_id=original.cluster_id),
        make_article("https://c.example/1", source="bbc", cluster_id=original.cluster_id),
        make_article("https://d.example/1", source="wire", cluster_id=original.cluster_id),
    ]
    alone = make_article("https://e.example/1", source="afp")
    clusters: dict[str, list[tuple[str, str]]] = {}
    for article in [original, *copies, alone]:
        clusters.setdefault(article.cluster_id, []).append((article.article_id, article.source))
    with_copies = story(1, article_id=original.article_id, cluster_id=original.cluster_id)
    without = story(2, article_id=alone.article_id, cluster_id=alone.cluster_id, source="afp")
    first, second = stories_of([with_copies, without], clusters)
    assert (first.copies, first.sources, first.other_sources) == (3, ("wire", "bbc"), 1)
    assert (second.copies, second.sources, second.other_sources) == (0, ("afp",), 0)


def write_alert_log(out: Path, alerts: list[Alert]) -> None:
    for alert in alerts:
        folder = out / "alerts" / f"dt={alert.partition_date}"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "alerts-test-00000.jsonl").open("a", encoding="utf-8") as log:
            log.write(alert.to_json() + "\n")


def test_a_burst_in_the_alert_log_raises_one_spike_outside_the_alert_log(tmp_path: Path) -> None:
    settings = SpikeSettings(window=timedelta(hours=6), baseline_days=2, min_stories=3)
    now = T0 + timedelta(days=3)
    burst = [
        story(n, created_at=now - timedelta(minutes=10 * n), published_at=None) for n in range(1, 5)
    ]
    quiet = [story(10, created_at=now - timedelta(days=1, hours=3), published_at=None)]
    write_alert_log(tmp_path, [*quiet, *burst])
    log_before = sorted(p.read_text() for p in (tmp_path / "alerts").rglob("*.jsonl"))
    feed = FeedSink(name="feed")
    report = deliver_committed(str(tmp_path), [feed], settings, now=now)
    assert report.error is None and report.spikes == 1
    # Within the cool-down the same surge raises nothing more.
    again = deliver_committed(str(tmp_path), [feed], settings, now=now + timedelta(hours=1))
    assert again.spikes == 0
    parsed = feedparser.parse((tmp_path / "feeds" / f"{TOPIC}.atom").read_bytes())
    [entry] = parsed.entries
    [kept] = (tmp_path / "_state" / "spikes" / "alerts").glob("*.json")
    spike = json.loads(kept.read_text("utf-8"))
    assert (spike["kind"], spike["topic"], spike["count"]) == (SPIKE, TOPIC, 4)
    assert entry.id == entry_id(spike["alert_id"])
    assert sorted(p.read_text() for p in (tmp_path / "alerts").rglob("*.jsonl")) == log_before
