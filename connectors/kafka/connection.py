"""Kafka: a bounded source that reads each partition up to where it stood when the run began,
offset commits made only after the run's output is durable, and the alert producer.

    from newswatch.connectors.kafka.connection import KafkaConnection, ReadFromKafka, plan_partitions

    conn = KafkaConnection(bootstrap_servers=("127.0.0.1:9092",))
    ranges = plan_partitions(conn, source="wire", topic="news.raw", group_id="newswatch")
    outputs = pipeline | ReadFromKafka(connection=conn, ranges=ranges)
    outputs["articles"], outputs["rejected"], outputs["reports"]

The end of each partition is its high watermark. ``end_offsets()`` alone is not enough:
some Kafka-protocol brokers answer it with the start of the partition's last record batch
plus one, so the planner also fetches from the partition once and takes the high watermark
the fetch response reports.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from newswatch.schemas import RawArticle, Rejection

__all__ = [
    "KafkaConnection",
    "KafkaUnavailable",
    "PartitionRange",
    "PartitionReport",
    "ReadFromKafka",
    "commit_offsets",
    "parse_message",
    "plan_partitions",
    "produce_messages",
]

log = logging.getLogger(__name__)

REJECTED = "rejected"
REPORTS = "reports"
# How much of an oversized message is kept in rejected/ for inspection.
MAX_RAW_KEPT = 64 * 1024
_TEXT_FIELDS = ("url", "id", "title", "text", "summary", "source", "language")


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached or did not answer in time."""


@dataclass(frozen=True)
class KafkaConnection:
    """Where the cluster is and how to authenticate; passwords come from the environment."""

    bootstrap_servers: tuple[str, ...]
    security: Mapping[str, str] = field(default_factory=dict)
    request_timeout_ms: int = 30_000
    # How long to try the bootstrap servers before saying the cluster is unreachable.
    bootstrap_timeout_ms: int = 10_000

    @classmethod
    def from_config(cls, cfg: Any) -> KafkaConnection:
        return cls(bootstrap_servers=tuple(cfg.bootstrap_servers), security=dict(cfg.security))

    def client_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "request_timeout_ms": self.request_timeout_ms,
            "bootstrap_timeout_ms": self.bootstrap_timeout_ms,
            "client_id": "newswatch",
        }
        for key, value in self.security.items():
            if key == "sasl_plain_password_env":
                if value not in os.environ:
                    raise KafkaUnavailable(
                        f"environment variable {value} (the SASL password) is not set"
                    )
                config["sasl_plain_password"] = os.environ[value]
            else:
                config[key] = value
        return config

    def describe(self) -> str:
        return ",".join(self.bootstrap_servers)


@dataclass(frozen=True)
class PartitionRange:
    """Offsets [start, end) of one partition that one run reads."""

    source: str
    topic: str
    partition: int
    start: int
    end: int


@dataclass(frozen=True)
class PartitionReport:
    """What was read from one partition: ``next_offset`` is what to commit for the group."""

    source: str
    group_id: str
    topic: str
    partition: int
    start: int
    next_offset: int
    read: int
    rejected: int


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
    for key in _TEXT_FIELDS:
        if record.get(key) is not None and not isinstance(record[key], str):
            return reject(
                "wrong_type", f"'{key}' must be a string, not {type(record[key]).__name__}"
            )
    published = record.get("published")
    if published is not None and not isinstance(published, str):
        return reject("wrong_type", f"'published' must be a string, not {type(published).__name__}")
    authors = record.get("authors", [])
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        return reject("wrong_type", "'authors' must be a list of strings")
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
        published=published,
        authors=tuple(authors),
        language=record.get("language"),
    )


def _consumer(connection: KafkaConnection, group_id: str | None) -> Any:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return KafkaConsumer(
            **connection.client_config(),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
    except KafkaError as err:
        raise KafkaUnavailable(f"cannot reach Kafka at {connection.describe()}: {err}") from None


def plan_partitions(
    connection: KafkaConnection,
    *,
    source: str,
    topic: str,
    group_id: str,
    timeout_s: float = 30.0,
) -> list[PartitionRange]:
    """Per partition: from the group's committed offset (earliest when none) to the high watermark."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    consumer = _consumer(connection, group_id)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise KafkaUnavailable(f"topic {topic!r} does not exist on {connection.describe()}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        beginning = consumer.beginning_offsets(tps, timeout_ms=timeout_s * 1000)
        listed_end = consumer.end_offsets(tps, timeout_ms=timeout_s * 1000)
        high = _high_watermarks(consumer, tps, beginning, listed_end, timeout_s)
        ranges = []
        for tp in tps:
            committed = consumer.committed(tp)
            start = beginning[tp] if committed is None else committed
            if start < beginning[tp]:
                log.warning(
                    "%s/%d: offsets %d..%d expired before they were read",
                    topic,
                    tp.partition,
                    start,
                    beginning[tp] - 1,
                )
                start = beginning[tp]
            end = max(listed_end[tp], high.get(tp, 0))
            ranges.append(PartitionRange(source, topic, tp.partition, start, max(start, end)))
        return ranges
    except KafkaError as err:
        raise KafkaUnavailable(f"Kafka at {connection.describe()} did not answer: {err}") from None
    finally:
        consumer.close(autocommit=False)


def _high_watermarks(
    consumer: Any,
    tps: Sequence[Any],
    beginning: Mapping[Any, int],
    listed_end: Mapping[Any, int],
    timeout_s: float,
) -> dict[Any, int]:
    pending = [tp for tp in tps if listed_end[tp] > beginning[tp]]
    for tp in pending:
        consumer.seek(tp, max(beginning[tp], listed_end[tp] - 1))
    deadline = time.monotonic() + timeout_s
    high: dict[Any, int] = {}
    while pending:
        if time.monotonic() > deadline:
            raise KafkaUnavailable(
                f"no fetch response from {len(pending)} partitions in {timeout_s:g}s"
            )
        consumer.poll(timeout_ms=200, max_records=1, update_offsets=False)
        for tp in list(pending):
            if consumer.highwater(tp) is not None:
                high[tp] = consumer.highwater(tp)
                pending.remove(tp)
    return high


class _KafkaPartitionReaderFn(beam.DoFn):
    """Reads one planned partition range; never past its end, failing loudly if it stalls."""

    def __init__(
        self,
        connection: KafkaConnection,
        group_id: str,
        max_message_bytes: int,
        stall_timeout_s: float,
    ) -> None:
        self._connection = connection
        self._group_id = group_id
        self._max_bytes = max_message_bytes
        self._stall_timeout_s = stall_timeout_s
        self._consumer: Any = None
        self._read = Metrics.counter(self.__class__, "kafka_messages_read")
        self._rejected = Metrics.counter(self.__class__, "kafka_messages_rejected")

    def setup(self) -> None:
        self._consumer = _consumer(self._connection, None)

    def process(self, piece: PartitionRange) -> Iterator[Any]:
        from kafka import TopicPartition

        read = rejected = 0
        if piece.end > piece.start:
            tp = TopicPartition(piece.topic, piece.partition)
            self._consumer.assign([tp])
            self._consumer.seek(tp, piece.start)
            for offset, value in self._records(tp, piece):
                fetched_at = datetime.now(UTC)
                item = parse_message(
                    piece.source,
                    piece.topic,
                    piece.partition,
                    offset,
                    value,
                    self._max_bytes,
                    fetched_at,
                )
                if isinstance(item, Rejection):
                    rejected += 1
                    self._rejected.inc()
                    yield TaggedOutput(REJECTED, item)
                else:
                    read += 1
                    self._read.inc()
                    yield item
        yield TaggedOutput(
            REPORTS,
            PartitionReport(
                piece.source,
                self._group_id,
                piece.topic,
                piece.partition,
                piece.start,
                piece.end,
                read,
                rejected,
            ),
        )

    def _records(self, tp: Any, piece: PartitionRange) -> Iterator[tuple[int, bytes | None]]:
        position = piece.start
        last_progress = time.monotonic()
        while position < piece.end:
            batches = self._consumer.poll(timeout_ms=500, max_records=500)
            records = batches.get(tp, [])
            for record in records:
                if record.offset >= piece.end:
                    return
                if record.offset >= position:
                    yield record.offset, record.value
                    position = record.offset + 1
            # Compaction and transaction markers leave gaps: the consumer's position is the truth.
            position = max(position, min(self._consumer.position(tp), piece.end))
            if records or position >= piece.end:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > self._stall_timeout_s:
                raise KafkaUnavailable(
                    f"{piece.topic}/{piece.partition}: no data from {self._connection.describe()} "
                    f"for {self._stall_timeout_s:g}s at offset {position} (planned end {piece.end})"
                )

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)


class ReadFromKafka(beam.PTransform):
    """Bounded read of planned partition ranges, partitions spread over workers.

    Returns ``{"articles": RawArticle, "rejected": Rejection, "reports": PartitionReport}``.
    """

    def __init__(
        self,
        *,
        connection: KafkaConnection,
        ranges: Sequence[PartitionRange],
        group_id: str,
        max_message_bytes: int = 1_000_000,
        stall_timeout_s: float = 60.0,
    ) -> None:
        super().__init__()
        self._connection = connection
        self._ranges = list(ranges)
        self._group_id = group_id
        self._max_bytes = max_message_bytes
        self._stall_timeout_s = stall_timeout_s

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        outputs = (
            pbegin
            | "Partitions" >> beam.Create(self._ranges)
            | "Spread" >> beam.Reshuffle()
            | "ReadPartition"
            >> beam.ParDo(
                _KafkaPartitionReaderFn(
                    self._connection, self._group_id, self._max_bytes, self._stall_timeout_s
                )
            ).with_outputs(REJECTED, REPORTS, main="articles")
        )
        return {
            "articles": outputs.articles,
            "rejected": outputs[REJECTED],
            "reports": outputs[REPORTS],
        }


def commit_offsets(
    connection: KafkaConnection, group_id: str, offsets: Iterable[tuple[str, int, int]]
) -> None:
    """Commit (topic, partition, next offset) for a consumer group, without joining it."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    wanted = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for t, p, o in offsets}
    if not wanted:
        return
    consumer = _consumer(connection, group_id)
    try:
        consumer.assign(list(wanted))
        consumer.commit(wanted)
    except KafkaError as err:
        raise KafkaUnavailable(
            f"committing offsets to {connection.describe()} failed: {err}"
        ) from None
    finally:
        consumer.close(autocommit=False)


def produce_messages(
    connection: KafkaConnection,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    timeout_s: float = 60.0,
) -> int:
    """Send (key, value) pairs with acks=all and wait until every one is acknowledged."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        producer = KafkaProducer(**connection.client_config(), acks="all", linger_ms=5, retries=5)
    except KafkaError as err:
        raise KafkaUnavailable(f"cannot reach Kafka at {connection.describe()}: {err}") from None
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in messages]
        producer.flush(timeout=timeout_s)
        for future in futures:
            future.get(timeout=timeout_s)
        return len(futures)
    except KafkaError as err:
        raise KafkaUnavailable(
            f"sending to {topic} on {connection.describe()} failed: {err}"
        ) from None
    finally:
        producer.close(timeout=timeout_s)
