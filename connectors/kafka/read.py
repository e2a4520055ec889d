"""A bounded Kafka source: each partition read up to where it stood when the run began.

    conn = KafkaConnection(bootstrap_servers=("127.0.0.1:9092",))
    ranges = plan_partitions(conn, source="wire", topic="news.raw", group_id="newswatch")
    outputs = pipeline | ReadFromKafka(connection=conn, ranges=ranges, group_id="newswatch")
    outputs["articles"], outputs["rejected"], outputs["reports"]

Offsets are committed for the group only by the run's commit, once its output is durable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam

from newswatch.connectors.kafka.connection import (
    KafkaConnection,
    KafkaUnavailable,
    PartitionRange,
    PartitionReport,
    consumer_for,
)
from newswatch.connectors.kafka.messages import KafkaCounters, PartitionTally, parse_records
from newswatch.connectors.split_by_type import SplitByType
from newswatch.schemas import Rejection

__all__ = ["ReadFromKafka"]


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
        self._counters = KafkaCounters(self.__class__)

    def setup(self) -> None:
        self._consumer = consumer_for(self._connection, None)

    def process(self, piece: PartitionRange) -> Iterator[Any]:
        from kafka import TopicPartition

        tally = PartitionTally()
        if piece.end > piece.start:
            tp = TopicPartition(piece.topic, piece.partition)
            self._consumer.assign([tp])
            self._consumer.seek(tp, piece.start)
            records = self._records(tp, piece)
            for item in parse_records(
                piece.source, piece.topic, piece.partition, records, self._max_bytes, tally
            ):
                self._counters.count(item)
                yield item
        report = tally.report(
            piece.source, self._group_id, piece.topic, piece.partition, piece.start, piece.end
        )
        yield report

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

    @classmethod
    def from_config(cls, source: Any, ranges: Sequence[PartitionRange]) -> ReadFromKafka:
        """One configured Kafka source (``KafkaSource``) and its planned ranges."""
        return cls(
            connection=KafkaConnection.from_config(source),
            ranges=[r for r in ranges if r.source == source.name],
            group_id=source.group_id,
            max_message_bytes=source.max_message_bytes,
            stall_timeout_s=source.read_timeout_s,
        )

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        items = (
            pbegin
            | "Partitions" >> beam.Create(self._ranges)
            | "Spread" >> beam.Reshuffle()
            | "ReadPartition"
            >> beam.ParDo(
                _KafkaPartitionReaderFn(
                    self._connection, self._group_id, self._max_bytes, self._stall_timeout_s
                )
            )
        )
        return items | "ByType" >> SplitByType(
            "articles", rejected=Rejection, reports=PartitionReport
        )
