"""Kafka connections: planning what a run reads, committing offsets once the run's output is
durable, and producing messages (alerts, the local loop).

    conn = KafkaConnection(bootstrap_servers=("127.0.0.1:9092",))
    ranges = plan_partitions(conn, source="wire", topic="news.raw", group_id="newswatch")

The end of each partition is its high watermark. ``end_offsets()`` alone is not enough:
some Kafka-protocol brokers answer it with the start of the partition's last record batch
plus one, so the planner also fetches from the partition once and takes the high watermark
the fetch response reports.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KafkaConnection",
    "KafkaUnavailable",
    "PartitionRange",
    "PartitionReport",
    "commit_offsets",
    "plan_partitions",
    "produce_messages",
]

log = logging.getLogger(__name__)


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


def consumer_for(connection: KafkaConnection, group_id: str | None) -> Any:
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

    consumer = consumer_for(connection, group_id)
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
    consumer = consumer_for(connection, group_id)
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
