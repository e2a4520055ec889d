"""Reading Kafka without end: a poller that reads what is available at each tick.

    from newswatch.connectors.kafka.poll import KafkaPolling, KafkaPoller

    spec = KafkaPolling.from_plan(source="wire", connection=conn, group_id="newswatch",
                                  ranges=plan_partitions(conn, source="wire", topic="news.raw",
                                                         group_id="newswatch"))
    poller = KafkaPoller(spec)
    poller.open()
    for item in poller.poll(datetime.now(UTC)):   # RawArticle, Rejection, PartitionReport,
        ...                                        # PartitionProgress
    poller.close()

``PollSources`` (``connectors/stream/polling.py``) runs pollers in the pipeline. A poller starts
each partition at the group's committed offset (what ``plan_partitions`` found) and keeps
its position in memory; offsets are committed for the group only by the window committer,
once the window's output is durable, so a restart reads again whatever was not committed.

One consumer reads every partition of a source (assigned, never a group member: a group
join waits a whole rebalance timeout on some brokers); each tick yields at most
``max_records`` messages, then a ``PartitionReport`` per partition that moved and a
``PartitionProgress`` (position and high watermark, for the lag in the status line).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from newswatch.connectors.kafka.connection import (
    KafkaConnection,
    KafkaUnavailable,
    PartitionRange,
)
from newswatch.connectors.kafka.messages import PartitionTally, parse_records
from newswatch.schemas import RawArticle, Rejection

__all__ = ["KafkaPoller", "KafkaPolling", "PartitionProgress"]


@dataclass(frozen=True)
class PartitionProgress:
    """Where a partition's reader stands: for the lag in the status line, never committed."""

    source: str
    topic: str
    partition: int
    next_offset: int
    high_watermark: int | None


@dataclass(frozen=True)
class KafkaPolling:
    """One Kafka source to poll: where each partition starts and the reading limits."""

    source: str
    connection: KafkaConnection
    topic: str
    group_id: str
    starts: tuple[tuple[int, int], ...]  # (partition, first offset to read)
    max_message_bytes: int = 1_000_000
    max_records: int = 2000  # per tick
    poll_timeout_ms: int = 50  # how long one tick waits for a fetch response

    @classmethod
    def from_plan(
        cls,
        *,
        source: str,
        connection: KafkaConnection,
        group_id: str,
        ranges: Sequence[PartitionRange],
        max_message_bytes: int = 1_000_000,
    ) -> KafkaPolling:
        topics = {r.topic for r in ranges}
        if len(topics) != 1:
            raise ValueError(f"{source}: expected the ranges of one topic, got {sorted(topics)}")
        return cls(
            source=source,
            connection=connection,
            topic=topics.pop(),
            group_id=group_id,
            starts=tuple(sorted((r.partition, r.start) for r in ranges)),
            max_message_bytes=max_message_bytes,
        )


class KafkaPoller:
    """Reads one Kafka source a tick at a time; positions live here, commits elsewhere."""

    def __init__(self, spec: KafkaPolling) -> None:
        self.spec = spec
        self._consumer: Any = None
        self._positions: dict[int, int] = dict(spec.starts)
        self._highs: dict[int, int | None] = {}

    def open(self) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        config = self.spec.connection.client_config()
        try:
            self._consumer = KafkaConsumer(
                **config,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                # A fetch waits at most this long for data: a tick never waits longer.
                fetch_max_wait_ms=max(10, self.spec.poll_timeout_ms),
            )
            tps = [TopicPartition(self.spec.topic, p) for p in self._positions]
            self._consumer.assign(tps)
            for tp in tps:
                self._consumer.seek(tp, self._positions[tp.partition])
        except KafkaError as err:
            raise KafkaUnavailable(
                f"cannot read {self.spec.topic} from {self.spec.connection.describe()}: {err}"
            ) from None

    def poll(self, now: datetime) -> Iterator[RawArticle | Rejection | Any]:
        """What arrived since the last tick: messages, then reports and progress."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        spec = self.spec
        try:
            batches = self._consumer.poll(
                timeout_ms=spec.poll_timeout_ms, max_records=spec.max_records
            )
        except KafkaError as err:
            raise KafkaUnavailable(
                f"reading {spec.topic} from {spec.connection.describe()} failed: {err}"
            ) from None
        tallies: dict[int, PartitionTally] = {}
        for tp in sorted(batches, key=_partition_of):
            tally = tallies[tp.partition] = PartitionTally()
            records = ((record.offset, record.value) for record in batches[tp])
            yield from parse_records(
                spec.source, spec.topic, tp.partition, records, spec.max_message_bytes, tally, now
            )
        for partition in sorted(self._positions):
            tp = TopicPartition(spec.topic, partition)
            start = self._positions[partition]
            # The consumer's position steps over compaction gaps and transaction markers.
            position = max(start, self._consumer.position(tp) or start)
            high = self._consumer.highwater(tp)
            if position > start:
                self._positions[partition] = position
                tally = tallies.get(partition, PartitionTally())
                yield tally.report(
                    spec.source, spec.group_id, spec.topic, partition, start, position
                )
            if position > start or high != self._highs.get(partition):
                self._highs[partition] = high
                yield PartitionProgress(spec.source, spec.topic, partition, position, high)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None


def _partition_of(tp: Any) -> int:
    return int(tp.partition)
