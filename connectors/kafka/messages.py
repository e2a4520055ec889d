"""Kafka message values to ``RawArticle`` records: a pure function per message, and the
tally of one partition's reads that becomes its ``PartitionReport`` (run and stream alike).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apache_beam.metrics import Metrics

from newswatch.connectors.kafka.connection import PartitionReport
from newswatch.schemas import RawArticle, Rejection

__all__ = ["KafkaCounters", "PartitionTally", "parse_message", "parse_records"]

# How much of an oversized message is kept in rejected/ for inspection.
MAX_RAW_KEPT = 64 * 1024
_TEXT_FIELDS = ("url", "id", "title", "text", "summary", "source", "language")


def parse_message(
    source: str,
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    max_bytes: int,
    fetched_at: datetime,
) -> RawArticle | Rejection:
    """One message value as a RawArticle, or a Rejection saying why not."""
    origin = f"kafka://{topic}/{partition}/{offset}"

    def reject(reason: str, detail: str, raw: bytes | None = value) -> Rejection:
        return Rejection(
            source=source,
            reason=reason,
            detail=detail,
            rejected_at=fetched_at,
            locator={"topic": topic, "partition": partition, "offset": offset},
            raw=raw,
        )

    if value is None or not value.strip():
        return reject("empty_message", "the message has no value")
    if len(value) > max_bytes:
        return reject(
            "too_large",
            f"{len(value)} bytes, over the {max_bytes}-byte limit (first {MAX_RAW_KEPT} kept)",
            raw=value[:MAX_RAW_KEPT],
        )
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as err:
        return reject("not_utf8", f"not UTF-8 text: {err.reason} at byte {err.start}")
    try:
        record = json.loads(text)
    except ValueError as err:
        return reject("not_json", f"not JSON: {err}")
    if not isinstance(record, dict):
        return reject("not_an_object", f"a JSON {type(record).__name__}, not an object")
    wrong = _wrong_type(record)
    if wrong:
        return reject("wrong_type", wrong)
    if not (record.get("url") or "").strip() and not (record.get("id") or "").strip():
        return reject("missing_url_and_id", "the article has neither 'url' nor 'id'")
    return RawArticle(
        source=(record.get("source") or "").strip() or source,
        origin=origin,
        fetched_at=fetched_at,
        url=record.get("url"),
        guid=record.get("id"),
        title=record.get("title"),
        summary=record.get("summary"),
        content=record.get("text"),
        published=record.get("published"),
        authors=tuple(record.get("authors", [])),
        language=record.get("language"),
    )


def _wrong_type(record: dict[str, Any]) -> str | None:
    """Why a field of a message has the wrong JSON type, or None."""
    for key in _TEXT_FIELDS:
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"'{key}' must be a string, not {type(record[key]).__name__}"
    published = record.get("published")
    if published is not None and not isinstance(published, str):
        return f"'published' must be a string, not {type(published).__name__}"
    authors = record.get("authors", [])
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        return "'authors' must be a list of strings"
    return None


@dataclass
class PartitionTally:
    """What was read from one partition: usable messages and rejected ones."""

    read: int = 0
    rejected: int = 0

    def add(self, item: RawArticle | Rejection) -> None:
        if isinstance(item, Rejection):
            self.rejected += 1
        else:
            self.read += 1

    def report(
        self, source: str, group_id: str, topic: str, partition: int, start: int, next_offset: int
    ) -> PartitionReport:
        return PartitionReport(
            source, group_id, topic, partition, start, next_offset, self.read, self.rejected
        )


def parse_records(
    source: str,
    topic: str,
    partition: int,
    records: Iterable[tuple[int, bytes | None]],
    max_bytes: int,
    tally: PartitionTally,
    fetched_at: datetime | None = None,
) -> Iterator[RawArticle | Rejection]:
    """Each (offset, value) parsed, and tallied; ``fetched_at`` defaults to each one's read time."""
    for offset, value in records:
        when = fetched_at or datetime.now(UTC)
        item = parse_message(source, topic, partition, offset, value, max_bytes, when)
        tally.add(item)
        yield item


class KafkaCounters:
    """The metrics of Kafka reads, counted per parsed message (run and stream)."""

    def __init__(self, owner: type) -> None:
        self._read = Metrics.counter(owner, "kafka_messages_read")
        self._rejected = Metrics.counter(owner, "kafka_messages_rejected")

    def count(self, item: RawArticle | Rejection) -> None:
        (self._rejected if isinstance(item, Rejection) else self._read).inc()
