"""A record that could not become an article, kept with the reason (the dead-letter stream)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Rejection:
    """Why one input was not stored. Written to ``<out>/rejected/dt=YYYY-MM-DD/*.jsonl``.

    ``locator`` identifies the input precisely (feed URL and entry index, or Kafka
    topic, partition and offset); ``raw`` keeps the original bytes when there are any.
    """

    source: str
    reason: str
    detail: str
    rejected_at: datetime
    locator: dict[str, Any] = field(default_factory=dict)
    raw: bytes | None = None

    def to_json(self) -> str:
        # The locator first: its keys never overwrite the record's own.
        record: dict[str, Any] = {
            **self.locator,
            "source": self.source,
            "reason": self.reason,
            "detail": self.detail,
            "rejected_at": self.rejected_at.isoformat(),
            "raw_base64": base64.b64encode(self.raw).decode("ascii")
            if self.raw is not None
            else None,
        }
        return json.dumps(record, ensure_ascii=False, sort_keys=True)
