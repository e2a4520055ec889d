"""The alert message; mirrors ``alert.schema.json`` (validated against it in the tests).

Two kinds: a ``story`` alert (one watched topic matched by one story; the default, and the
only kind before spikes existed) and a ``spike`` alert (a topic's matched stories in a recent
window far above its trailing baseline), which also carries ``window``, ``count`` and
``baseline``. Story alerts are written exactly as before, plus ``"kind": "story"``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

STORY = "story"
SPIKE = "spike"
# Properties only spike alerts carry. The alert log holds story alerts only (spike alerts
# are delivered, not logged), so its readers leave these out.
SPIKE_ONLY = ("window", "count", "baseline")


@dataclass(frozen=True)
class SpikeWindow:
    """The window whose matched stories made the spike: [start, end), UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class SpikeBaseline:
    """Stories per window over the trailing baseline: their mean and standard deviation."""

    days: int
    mean: float
    stddev: float


@dataclass(frozen=True)
class Alert:
    alert_id: str
    topic: str
    topic_title: str
    article_id: str
    cluster_id: str
    source: str
    title: str
    url: str
    published_at: datetime | None
    score: float
    evidence: tuple[str, ...]
    entities: tuple[str, ...]
    created_at: datetime
    kind: str = STORY
    # Spike alerts only: None on story alerts, and then not written.
    window: SpikeWindow | None = None
    count: int | None = None
    baseline: SpikeBaseline | None = None
    # The article's ISO 639-1 language (None when unknown): the evidence is in it.
    language: str | None = None

    @property
    def partition_date(self) -> str:
        return self.created_at.strftime("%Y-%m-%d")

    def to_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["published_at"] = self.published_at.isoformat() if self.published_at else None
        record["created_at"] = self.created_at.isoformat()
        record["evidence"] = list(self.evidence)
        record["entities"] = list(self.entities)
        for key in SPIKE_ONLY:
            if record[key] is None:
                del record[key]
        if self.window is not None:
            record["window"] = {
                "start": self.window.start.isoformat(),
                "end": self.window.end.isoformat(),
            }
        return record

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Alert:
        """The alert a ``to_dict()`` record describes; a record without ``kind`` is a story."""
        window = record.get("window")
        baseline = record.get("baseline")
        published = record.get("published_at")
        return cls(
            alert_id=record["alert_id"],
            topic=record["topic"],
            topic_title=record.get("topic_title", ""),
            article_id=record["article_id"],
            cluster_id=record["cluster_id"],
            source=record.get("source", ""),
            title=record["title"],
            url=record["url"],
            published_at=datetime.fromisoformat(published) if published else None,
            score=float(record["score"]),
            evidence=tuple(record["evidence"]),
            entities=tuple(record["entities"]),
            created_at=datetime.fromisoformat(record["created_at"]),
            kind=record.get("kind", STORY),
            window=SpikeWindow(
                datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
            )
            if window
            else None,
            count=record.get("count"),
            baseline=SpikeBaseline(**baseline) if baseline else None,
            language=record.get("language"),
        )


def alert_json_schema() -> dict[str, Any]:
    """The JSON Schema every alert message satisfies."""
    return json.loads(files(__package__).joinpath("alert.schema.json").read_text("utf-8"))
