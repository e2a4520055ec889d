"""What a connector hands to the pipeline: one news item as the source gave it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RawArticle:
    """One item from a feed or a Kafka message, before normalization.

    Text fields may still hold HTML and entities; ``published`` is the source's own
    date string (ISO 8601 or RFC 822). ``origin`` says where the item came from
    (the feed URL, or ``kafka://topic/partition/offset``) so a rejection can point at it.
    """

    source: str
    origin: str
    fetched_at: datetime
    url: str | None = None
    guid: str | None = None
    title: str | None = None
    summary: str | None = None
    content: str | None = None
    published: str | None = None
    authors: tuple[str, ...] = ()
    language: str | None = None
