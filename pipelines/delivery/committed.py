"""What a commit hands to delivery: the committed alerts of a run or window as stories, and
the recent alert log for spikes.

``queue_committed`` is the commit protocol's delivery step (``commit/manifest.py``): it
reads back the alert log and article files the commit has just moved into the dataset and
queues the alerts in the outbox. It is a local durable write, safe to repeat, and sends
nothing: a receiver that is down cannot hold up or undo a commit.

"Also reported by N sources": a story's copies and sources are counted among the articles
committed with its alert (the same run, pass or stream window), by ``cluster_id``. The
copies that reached the dataset in earlier runs are not looked up: an alert is raised
when its story is first stored or first matches, so its earlier copies are rare, and a
lookup would read every ``dt=`` partition of the clustering horizon at each commit. Copies
that arrive after the alert went out are not counted either (the alert has been sent).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import pyarrow.parquet as pq

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import ALERTS, OutputLayout
from newswatch.pipelines.delivery.outbox import enqueue
from newswatch.pipelines.delivery.sinks import DeliverySink
from newswatch.pipelines.delivery.story import Story
from newswatch.schemas import Alert
from newswatch.schemas.alert import STORY

_ARTICLE_COLUMNS = ["article_id", "cluster_id", "source"]


def read_alerts(paths: Iterable[str]) -> list[Alert]:
    """Every alert in these alert log files (JSON Lines), in file order."""
    alerts = []
    for path in paths:
        for line in filesystem.read_file(path).decode("utf-8").splitlines():
            if line.strip():
                alerts.append(Alert.from_dict(json.loads(line)))
    return alerts


def cluster_members(article_files: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """(article id, source) of every article in these Parquet files, by cluster id."""
    clusters: dict[str, list[tuple[str, str]]] = {}
    for path in article_files:
        table = pq.read_table(io.BytesIO(filesystem.read_file(path)), columns=_ARTICLE_COLUMNS)
        for row in table.to_pylist():
            clusters.setdefault(row["cluster_id"], []).append((row["article_id"], row["source"]))
    return clusters


def stories_of(alerts: Sequence[Alert], clusters: dict[str, list[tuple[str, str]]]) -> list[Story]:
    """Each alert with the copies of its story among ``clusters`` and their sources, the
    alert's own source first."""
    stories = []
    for alert in alerts:
        others = [m for m in clusters.get(alert.cluster_id, ()) if m[0] != alert.article_id]
        sources = sorted({source for _, source in others} - {alert.source})
        stories.append(Story(alert, copies=len(others), sources=(alert.source, *sources)))
    return stories


def queue_committed(
    root: str,
    run_id: str,
    alert_files: Sequence[str],
    article_files: Sequence[str],
    sinks: Sequence[DeliverySink],
) -> int:
    """Queue the alerts of a committed run for ``sinks``; the entries written (0: already)."""
    if not sinks or not alert_files:
        return 0
    alerts = read_alerts(alert_files)
    if not alerts:
        return 0
    return enqueue(root, run_id, stories_of(alerts, cluster_members(article_files)), sinks)


def recent_story_alerts(root: str, since: datetime) -> list[Alert]:
    """The story alerts of the alert log created at or after ``since`` (a day early, whole
    ``dt=`` partitions: the partition is the alert's UTC creation day)."""
    first_day = (since - timedelta(days=1)).strftime("%Y-%m-%d")
    layout = OutputLayout(root)
    paths = [
        path
        for path in filesystem.list_files(layout.committed_files(ALERTS, "jsonl"))
        if _partition_day(path) >= first_day
    ]
    return [a for a in read_alerts(sorted(paths)) if a.kind == STORY and a.created_at >= since]


def _partition_day(path: str) -> str:
    for part in reversed(path.replace("\\", "/").split("/")):
        if part.startswith("dt="):
            return part[3:]
    return ""
