"""An alert as it waits in the outbox: with how widely its story was reported."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from newswatch.schemas import Alert


@dataclass(frozen=True)
class Story:
    """``copies``: near-duplicates of the story stored when it was queued; ``sources``: the
    sources that carried it, the alert's own first."""

    alert: Alert
    copies: int = 0
    sources: tuple[str, ...] = ()

    @property
    def other_sources(self) -> int:
        return len({s for s in self.sources if s != self.alert.source})

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert.to_dict(), "copies": self.copies, "sources": list(self.sources)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Story:
        return cls(
            alert=Alert.from_dict(record["alert"]),
            copies=int(record.get("copies", 0)),
            sources=tuple(record.get("sources", ())),
        )
