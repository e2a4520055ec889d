"""Writing the dataset: records of one kind, per ``dt=`` partition, sorted, chunked, staged.

``stage_records`` is the one writer: the batch transforms (``WriteArticles``,
``WriteAlertLog``, ``WriteRejected``) call it per partition after a GroupByKey, and the
stream's window commit calls it on a window's spooled records, so both write the same files.
Each kind is a ``RecordFiles``: its folder, suffix, partition, encoding and order.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import (
    ALERTS,
    ARTICLES,
    REJECTED,
    OutputLayout,
    StagedFile,
)
from newswatch.schemas import Alert, Article, Rejection, articles_to_table

__all__ = [
    "ALERT_FILES",
    "ARTICLE_FILES",
    "REJECTED_FILES",
    "RecordFiles",
    "WriteAlertLog",
    "WriteArticles",
    "WriteRejected",
    "encode_table",
    "stage_records",
]

MAX_ROWS_PER_FILE = 50_000


def encode_parquet(articles: Sequence[Article]) -> bytes:
    return encode_table(articles_to_table(articles))


def encode_table(table: pa.Table) -> bytes:
    """An article table as the bytes of one dataset Parquet file."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def encode_json_lines(records: Sequence[Alert | Rejection]) -> bytes:
    return "".join(r.to_json() + "\n" for r in records).encode("utf-8")


def article_partition(article: Article) -> str:
    return article.partition_date


def article_order(article: Article) -> str:
    return article.article_id


def alert_partition(alert: Alert) -> str:
    return alert.partition_date


def alert_order(alert: Alert) -> tuple[str, str]:
    return alert.topic, alert.cluster_id


def rejection_partition(rejection: Rejection) -> str:
    return rejection.rejected_at.strftime("%Y-%m-%d")


def rejection_order(rejection: Rejection) -> str:
    return rejection.to_json()


@dataclass(frozen=True)
class RecordFiles:
    """How records of one kind become dataset files."""

    kind: str
    suffix: str
    partition_of: Callable[[Any], str]  # the dt= day
    encode: Callable[[Sequence[Any]], bytes]
    order: Callable[[Any], Any]  # sorted, so reruns and any number of workers write the same


ARTICLE_FILES = RecordFiles(ARTICLES, "parquet", article_partition, encode_parquet, article_order)
ALERT_FILES = RecordFiles(ALERTS, "jsonl", alert_partition, encode_json_lines, alert_order)
REJECTED_FILES = RecordFiles(
    REJECTED, "jsonl", rejection_partition, encode_json_lines, rejection_order
)


def stage_records(
    layout: OutputLayout, files: RecordFiles, day: str, records: Iterable[Any]
) -> Iterator[StagedFile]:
    """Write one partition's records in staging, sorted, at most MAX_ROWS_PER_FILE a file."""
    ordered = sorted(records, key=files.order)
    for chunk, start in enumerate(range(0, len(ordered), MAX_ROWS_PER_FILE)):
        rows = ordered[start : start + MAX_ROWS_PER_FILE]
        name = layout.file_name(files.kind, chunk, files.suffix)
        staged = layout.staged_path(files.kind, day, name)
        filesystem.write_file(staged, files.encode(rows))
        yield StagedFile(files.kind, staged, layout.final_path(files.kind, day, name), len(rows))


def stage_all(
    layout: OutputLayout, files: RecordFiles, records: Iterable[Any]
) -> Iterator[StagedFile]:
    """``stage_records`` for records of any partitions, partition by partition."""
    partitions: dict[str, list[Any]] = {}
    for record in records:
        partitions.setdefault(files.partition_of(record), []).append(record)
    for day, values in sorted(partitions.items()):
        yield from stage_records(layout, files, day, values)


class _StagePartitionFn(beam.DoFn):
    def __init__(self, layout: OutputLayout, files: RecordFiles) -> None:
        self._layout = layout
        self._files = files
        self._written = Metrics.counter(self.__class__, f"{files.kind}_files_staged")

    def process(self, element: tuple[str, Iterable[Any]]) -> Iterator[StagedFile]:
        day, records = element
        for staged in stage_records(self._layout, self._files, day, records):
            self._written.inc()
            yield staged


class _KeyByPartition:
    """Picklable (record -> (day, record)) for one RecordFiles."""

    def __init__(self, files: RecordFiles) -> None:
        self._partition_of = files.partition_of

    def __call__(self, record: Any) -> tuple[str, Any]:
        return self._partition_of(record), record


class WriteRecords(beam.PTransform):
    """Records of one kind as files in staging, one folder per ``dt=``; yields StagedFiles."""

    def __init__(self, layout: OutputLayout, files: RecordFiles) -> None:
        super().__init__()
        self._layout = layout
        self._files = files

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return (
            records
            | "KeyByPartition" >> beam.Map(_KeyByPartition(self._files))
            | "GroupByPartition" >> beam.GroupByKey()
            | "WriteStaged" >> beam.ParDo(_StagePartitionFn(self._layout, self._files))
        )


class WriteArticles(WriteRecords):
    """Articles as Parquet in staging, one folder per ``dt=`` partition; yields StagedFiles."""

    def __init__(self, layout: OutputLayout) -> None:
        super().__init__(layout, ARTICLE_FILES)


class WriteAlertLog(WriteRecords):
    """Alerts as JSON Lines in staging (partitioned by the day raised); yields StagedFiles."""

    def __init__(self, layout: OutputLayout) -> None:
        super().__init__(layout, ALERT_FILES)


class WriteRejected(WriteRecords):
    """Rejected inputs as JSON Lines in staging (partitioned by the day rejected)."""

    def __init__(self, layout: OutputLayout) -> None:
        super().__init__(layout, REJECTED_FILES)
