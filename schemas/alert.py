"""The alert message; mirrors ``alert.schema.json`` (validated against it in the tests)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any


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
        return record

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)


def alert_json_schema() -> dict[str, Any]:
    """The JSON Schema every alert message satisfies."""
    return json.loads(files(__package__).joinpath("alert.schema.json").read_text("utf-8"))
