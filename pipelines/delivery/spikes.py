"""Spike alerts: a topic's matched stories in the last window far above its usual rate.

The last ``window`` (default 6 h) is compared with the windows of the same length over the
trailing baseline (default 14 days, 56 windows): a spike is a count of at least
``min_stories`` (3) above the baseline mean plus ``sigmas`` (3) standard deviations. A
story counts at its ``published_at`` (its ``created_at`` when it has none), so a run that
catches up on a week of backlog does not look like a surge. After a spike a topic is
quiet for ``cooldown``, so one surge raises one alert, not one per drain.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from newswatch.pipelines.delivery import store
from newswatch.pipelines.delivery.sinks import SpikeSettings
from newswatch.schemas import Alert
from newswatch.schemas.alert import SPIKE, STORY, SpikeBaseline, SpikeWindow

SPIKES = "spikes"
EVIDENCE_TITLES = 5


@dataclass(frozen=True)
class Surge:
    count: int
    mean: float
    stddev: float


def story_time(alert: Alert) -> datetime:
    return alert.published_at or alert.created_at


def measure(times: Iterable[datetime], now: datetime, settings: SpikeSettings) -> Surge:
    """Stories in [now - window, now) against the per-window counts of the baseline before it."""
    window = settings.window
    windows = max(1, int(settings.baseline_days * 86400 // window.total_seconds()))
    current_start = now - window
    counts = [0] * windows
    current = 0
    for moment in times:
        if current_start <= moment < now:
            current += 1
        elif moment < current_start:
            index = int((current_start - moment) / window)
            if index < windows:
                counts[index] += 1
    mean = sum(counts) / windows
    stddev = math.sqrt(sum((c - mean) ** 2 for c in counts) / windows)
    return Surge(current, mean, stddev)


def is_spike(surge: Surge, settings: SpikeSettings) -> bool:
    return (
        surge.count >= settings.min_stories
        and surge.count > surge.mean + settings.sigmas * surge.stddev
    )


def find_spikes(
    stories: Sequence[Alert],
    now: datetime,
    settings: SpikeSettings,
    last_spike: Mapping[str, datetime] | None = None,
) -> list[Alert]:
    """Spike alerts for the topics of ``stories`` (story alerts) that surge at ``now``.

    ``last_spike``: when each topic last spiked; a topic inside its cool-down is skipped.
    """
    last_spike = last_spike or {}
    by_topic: dict[str, list[Alert]] = {}
    for alert in stories:
        if alert.kind == STORY:
            by_topic.setdefault(alert.topic, []).append(alert)
    spikes = []
    for topic, alerts in sorted(by_topic.items()):
        previous = last_spike.get(topic)
        if previous is not None and now - previous < settings.cooldown:
            continue
        surge = measure((story_time(a) for a in alerts), now, settings)
        if is_spike(surge, settings):
            spikes.append(_spike_alert(topic, alerts, surge, now, settings))
    return spikes


def _spike_alert(
    topic: str, alerts: Sequence[Alert], surge: Surge, now: datetime, settings: SpikeSettings
) -> Alert:
    start = now - settings.window
    recent = sorted(
        (a for a in alerts if start <= story_time(a) < now),
        key=lambda a: (story_time(a), a.alert_id),
        reverse=True,
    )
    latest = recent[0]
    ident = hashlib.sha256(f"{SPIKE}\x00{topic}\x00{start.isoformat()}".encode()).hexdigest()
    return Alert(
        alert_id=ident[:32],
        topic=topic,
        topic_title=latest.topic_title,
        article_id=latest.article_id,
        cluster_id=latest.cluster_id,
        source=latest.source,
        title=latest.title,
        url=latest.url,
        published_at=latest.published_at,
        score=1.0,
        evidence=tuple(a.title for a in recent[:EVIDENCE_TITLES]),
        entities=(),
        created_at=now,
        kind=SPIKE,
        window=SpikeWindow(start=start, end=now),
        count=surge.count,
        baseline=SpikeBaseline(
            days=settings.baseline_days,
            mean=round(surge.mean, 4),
            stddev=round(surge.stddev, 4),
        ),
    )


def load_last_spikes(root: str) -> dict[str, datetime]:
    """When each topic last spiked (``_state/spikes/last.json``)."""
    data = store.read_json(store.state_path(root, SPIKES, "last.json"), {}) or {}
    return {topic: datetime.fromisoformat(at) for topic, at in data.items()}


def record_spikes(root: str, spikes: Iterable[Alert]) -> None:
    """Start the cool-down of each spike's topic; call once the spikes are queued."""
    last = load_last_spikes(root)
    for alert in spikes:
        last[alert.topic] = alert.created_at.astimezone(UTC)
    data = {topic: at.isoformat() for topic, at in sorted(last.items())}
    store.write_json(store.state_path(root, SPIKES, "last.json"), data)
