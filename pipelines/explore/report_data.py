"""What ``newswatch report`` shows, queried from the dataset's DuckDB views into plain records.

The window: ``--since 30d`` means the 30 days up to the newest stored article (``dt``),
so a dataset that stopped growing still shows its last month; ``--since 2024-06-01`` starts
on that day; neither starts before the first stored article. Source health and rejections cover the runs of the same length of time up to
the newest run (from that date, for a date). Latest alerts and run history are the newest
ones, whatever the window.

A spike (``spike_days``): a day with at least ``SPIKE_MIN_STORIES`` stories and more than
the mean plus ``SPIKE_SIGMAS`` standard deviations of the ``SPIKE_BASELINE_DAYS`` days before
it (days without a story count as zero; a day with no stored day before it is never a spike).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

__all__ = [
    "DayVolume",
    "Report",
    "Story",
    "TopicSection",
    "Window",
    "parse_since",
    "query_report",
    "spike_days",
]

SPIKE_BASELINE_DAYS = 7
SPIKE_SIGMAS = 3.0
SPIKE_MIN_STORIES = 3
TOP_STORIES = 10
TOP_ENTITIES = 12
LATEST_ALERTS = 20
RUN_HISTORY = 30


def parse_since(text: str) -> int | date:
    """``30d`` -> 30 (days), ``2024-06-01`` -> that date; ValueError otherwise."""
    days = re.fullmatch(r"(\d+)d", text.strip())
    if days and int(days.group(1)) > 0:
        return int(days.group(1))
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: give days (30d) or a date (2024-06-01)") from None


def spike_days(
    counts: Sequence[int],
    baseline: int = SPIKE_BASELINE_DAYS,
    sigmas: float = SPIKE_SIGMAS,
    minimum: int = SPIKE_MIN_STORIES,
) -> list[int]:
    """Indexes of the days in ``counts`` (one per day, in order) that are spikes."""
    spikes = []
    for i, count in enumerate(counts):
        before = counts[max(0, i - baseline) : i]
        if count < minimum or not before:
            continue
        mean = sum(before) / len(before)
        deviation = math.sqrt(sum((c - mean) ** 2 for c in before) / len(before))
        if count > mean + sigmas * deviation:
            spikes.append(i)
    return spikes


@dataclass(frozen=True)
class Window:
    start: date
    end: date
    runs_since: datetime
    first_stored: date | None = None  # the dataset's first day: spikes look back to it

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(d) for d in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class DayVolume:
    day: date
    stories: int  # distinct stories (cluster_id) with an article on the topic that day
    articles: int  # every copy counted
    spike: bool = False


@dataclass(frozen=True)
class Story:
    cluster_id: str
    title: str
    url: str
    first_seen: datetime
    sources: int
    copies: int
    score: float
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class TopicSection:
    id: str
    title: str
    days: tuple[DayVolume, ...]
    stories: tuple[Story, ...]
    entities: tuple[tuple[str, int], ...]  # (canonical name, stories)

    @property
    def spikes(self) -> list[DayVolume]:
        return [d for d in self.days if d.spike]


@dataclass(frozen=True)
class Report:
    root: str
    window: Window
    generated_at: datetime
    articles: int  # stored articles in the window
    topics: tuple[TopicSection, ...]
    alerts: tuple[dict[str, Any], ...]  # created_at, topic, title, url, source, score
    sources: tuple[dict[str, Any], ...]  # source, ok, not_modified, failed, last_status, ...
    rejections: tuple[dict[str, Any], ...]  # source, reason, rejected
    runs: tuple[dict[str, Any], ...]  # the runs view's columns


def _rows(
    connection: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    cursor = connection.execute(query, params or {})
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _window(connection: duckdb.DuckDBPyConnection, since: int | date, today: date) -> Window:
    [(first_day, newest_day, newest_run)] = connection.execute(
        "SELECT min(dt), max(dt), (SELECT max(started_at) FROM runs) FROM articles"
    ).fetchall()
    end = min(newest_day or today, today)
    last_run = newest_run or datetime.combine(today, datetime.min.time(), UTC)
    if isinstance(since, date):
        start = since
        runs_since = datetime.combine(since, datetime.min.time(), UTC)
    else:
        start = end - timedelta(days=since - 1)
        runs_since = last_run - timedelta(days=since)
    # Days before the first stored article would be an empty stretch on every chart.
    start = max(start, first_day or start)
    return Window(start=start, end=max(start, end), runs_since=runs_since, first_stored=first_day)


_VOLUME = """
SELECT t.id AS topic, a.dt AS day, count(DISTINCT a.cluster_id) AS stories, count(*) AS articles
FROM articles AS a, unnest(a.topics) AS u(t)
WHERE a.dt BETWEEN $first AND $end
GROUP BY ALL
"""


def _volumes(connection: duckdb.DuckDBPyConnection, window: Window) -> dict[str, list[DayVolume]]:
    """Per topic, every day of the window with its counts and whether it is a spike."""
    first = max(window.start - timedelta(SPIKE_BASELINE_DAYS), window.first_stored or window.start)
    counts: dict[str, dict[date, tuple[int, int]]] = {}
    for row in _rows(connection, _VOLUME, {"first": first, "end": window.end}):
        counts.setdefault(row["topic"], {})[row["day"]] = (row["stories"], row["articles"])
    days = [first + timedelta(d) for d in range((window.end - first).days + 1)]
    volumes = {}
    for topic, by_day in counts.items():
        series = [by_day.get(day, (0, 0)) for day in days]
        spikes = set(spike_days([stories for stories, _ in series]))
        volumes[topic] = [
            DayVolume(day, stories, articles, i in spikes)
            for i, (day, (stories, articles)) in enumerate(zip(days, series, strict=True))
            if day >= window.start
        ]
    return volumes


_STORIES = """
WITH hits AS (
    SELECT t.id AS topic, a.cluster_id, t.score, t.evidence
    FROM articles AS a, unnest(a.topics) AS u(t)
    WHERE a.dt BETWEEN $start AND $end AND ($all_topics OR list_contains($topics, t.id))
), scored AS (
    SELECT topic, cluster_id, max(score) AS score, arg_max(evidence, score) AS evidence
    FROM hits GROUP BY topic, cluster_id
), copies AS (
    SELECT cluster_id, count(*) AS copies, count(DISTINCT source) AS sources,
           min(coalesce(published_at, ingested_at)) AS first_seen,
           arg_min(title, coalesce(published_at, ingested_at)) AS title,
           arg_min(url, coalesce(published_at, ingested_at)) AS url
    FROM articles WHERE cluster_id IN (SELECT cluster_id FROM scored) GROUP BY ALL
)
SELECT s.topic, s.cluster_id, c.title, c.url, c.first_seen, c.sources, c.copies,
       s.score, s.evidence
FROM scored AS s JOIN copies AS c USING (cluster_id)
QUALIFY row_number() OVER (
    PARTITION BY s.topic ORDER BY c.sources DESC, c.copies DESC, s.score DESC, c.first_seen
) <= $limit
ORDER BY s.topic, c.sources DESC, c.copies DESC, s.score DESC, c.first_seen
"""

_ENTITIES = """
SELECT t.id AS topic, e.canonical AS entity, count(DISTINCT a.cluster_id) AS stories
FROM articles AS a, unnest(a.topics) AS u(t), unnest(a.entities) AS v(e)
WHERE a.dt BETWEEN $start AND $end AND ($all_topics OR list_contains($topics, t.id))
GROUP BY topic, entity
QUALIFY row_number() OVER (PARTITION BY topic ORDER BY stories DESC, entity) <= $limit
ORDER BY topic, stories DESC, entity
"""

_TOPIC_TITLES = "SELECT topic, arg_max(topic_title, created_at) AS title FROM alerts GROUP BY ALL"


def _topic_sections(
    connection: duckdb.DuckDBPyConnection, window: Window, wanted: Sequence[str]
) -> tuple[TopicSection, ...]:
    params = {"start": window.start, "end": window.end, "all_topics": not wanted}
    params["topics"] = list(wanted) or [""]
    stories: dict[str, list[Story]] = {}
    for row in _rows(connection, _STORIES, {**params, "limit": TOP_STORIES}):
        topic = row.pop("topic")
        row["evidence"] = tuple(row["evidence"] or ())
        stories.setdefault(topic, []).append(Story(**row))
    entities: dict[str, list[tuple[str, int]]] = {}
    for row in _rows(connection, _ENTITIES, {**params, "limit": TOP_ENTITIES}):
        entities.setdefault(row["topic"], []).append((row["entity"], row["stories"]))
    titles = {r["topic"]: r["title"] for r in _rows(connection, _TOPIC_TITLES)}
    volumes = _volumes(connection, window)
    empty = [DayVolume(day, 0, 0) for day in window.days]
    ids = list(wanted) or sorted(volumes, key=lambda t: (-sum(d.stories for d in volumes[t]), t))
    return tuple(
        TopicSection(
            id=topic,
            title=titles.get(topic) or topic,
            days=tuple(volumes.get(topic, empty)),
            stories=tuple(stories.get(topic, ())),
            entities=tuple(entities.get(topic, ())),
        )
        for topic in ids
    )


_ALERTS = """
SELECT created_at, topic, title, url, source, language, score FROM alerts
WHERE $all_topics OR list_contains($topics, topic)
ORDER BY created_at DESC, topic, title LIMIT $limit
"""

_SOURCES = """
SELECT source,
       count(*) FILTER (WHERE status = 'ok') AS ok,
       count(*) FILTER (WHERE status = 'not_modified') AS not_modified,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       arg_max(status, started_at) AS last_status,
       arg_max(error, started_at) FILTER (WHERE error IS NOT NULL) AS last_error
FROM feeds WHERE started_at >= $since
GROUP BY ALL ORDER BY failed DESC, source
"""

_REJECTIONS = """
SELECT source, reason, count(*) AS rejected FROM rejected WHERE rejected_at >= $since
GROUP BY ALL ORDER BY rejected DESC, source, reason
"""

_RUNS = "SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT $limit"


def query_report(
    connection: duckdb.DuckDBPyConnection,
    root: str,
    since: int | date,
    topics: Sequence[str] = (),
    now: datetime | None = None,
) -> Report:
    """Everything the page shows; ``topics`` empty means every topic with articles."""
    now = now or datetime.now(UTC)
    window = _window(connection, since, now.date())
    [(count,)] = connection.execute(
        "SELECT count(*) FROM articles WHERE dt BETWEEN $start AND $end",
        {"start": window.start, "end": window.end},
    ).fetchall()
    selection = {"all_topics": not topics, "topics": list(topics) or [""]}
    return Report(
        root=root,
        window=window,
        generated_at=now,
        articles=count,
        topics=_topic_sections(connection, window, topics),
        alerts=tuple(_rows(connection, _ALERTS, {**selection, "limit": LATEST_ALERTS})),
        sources=tuple(_rows(connection, _SOURCES, {"since": window.runs_since})),
        rejections=tuple(_rows(connection, _REJECTIONS, {"since": window.runs_since})),
        runs=tuple(_rows(connection, _RUNS, {"limit": RUN_HISTORY})),
    )
