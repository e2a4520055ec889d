"""The output dataset: partitioned Parquet and JSON Lines, staged per run, read back for state.

Layout under the output root (``<out>``)::

    articles/dt=YYYY-MM-DD/part-<run>-<n>.parquet   the articles (schemas.ARTICLE_SCHEMA)
    alerts/dt=YYYY-MM-DD/alerts-<run>-<n>.jsonl     one alert per line (schemas/alert.schema.json)
    rejected/dt=YYYY-MM-DD/rejected-<run>-<n>.jsonl inputs that could not be stored, with reasons
    _staging/<run>/...                              files of a run not yet committed
    _state/...                                      commit manifests, feed validators, run
                                                    reports, the stream's key indexes

Writers only ever write under ``_staging/<run>/``; files become visible in the dataset when
the run commits (``pipelines/commit/manifest.py``), so readers never see a partial run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.fileio import EmptyMatchTreatment
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics

from newswatch.connectors import filesystem
from newswatch.schemas import Alert, Article, Rejection, articles_to_table

__all__ = [
    "OutputLayout",
    "ReadStoredAlertKeys",
    "ReadStoredArticleIds",
    "StagedFile",
    "WriteAlertLog",
    "WriteArticles",
    "WriteRejected",
]

ARTICLES = "articles"
ALERTS = "alerts"
REJECTED = "rejected"
MAX_ROWS_PER_FILE = 50_000

T = TypeVar("T")


@dataclass(frozen=True)
class OutputLayout:
    """Where each kind of file of one run is staged and where it lands on commit."""

    root: str
    run_id: str

    @property
    def staging_dir(self) -> str:
        return filesystem.join(self.root, "_staging", self.run_id)

    @property
    def state_dir(self) -> str:
        return filesystem.join(self.root, "_state")

    def dataset_dir(self, kind: str) -> str:
        return filesystem.join(self.root, kind)

    def file_name(self, kind: str, chunk: int, suffix: str) -> str:
        prefix = "part" if kind == ARTICLES else kind
        return f"{prefix}-{self.run_id}-{chunk:05d}.{suffix}"

    def staged_path(self, kind: str, partition: str, name: str) -> str:
        return filesystem.join(self.staging_dir, kind, f"dt={partition}", name)

    def final_path(self, kind: str, partition: str, name: str) -> str:
        return filesystem.join(self.root, kind, f"dt={partition}", name)


@dataclass(frozen=True)
class StagedFile:
    """A file written in staging, and the dataset path it moves to when the run commits."""

    kind: str
    staged: str
    final: str
    records: int


def _chunks(items: Sequence[T], size: int) -> Iterator[tuple[int, Sequence[T]]]:
    for index, start in enumerate(range(0, len(items), size)):
        yield index, items[start : start + size]


class _WritePartitionFn(beam.DoFn):
    """Writes one partition's records as files in staging; emits a StagedFile per file."""

    def __init__(
        self,
        layout: OutputLayout,
        kind: str,
        suffix: str,
        encode: Callable[[Sequence[Any]], bytes],
        sort_key: Callable[[Any], Any],
    ) -> None:
        self._layout = layout
        self._kind = kind
        self._suffix = suffix
        self._encode = encode
        self._sort_key = sort_key
        self._files = Metrics.counter(self.__class__, f"{kind}_files_staged")

    def process(self, element: tuple[str, Iterable[Any]]) -> Iterator[StagedFile]:
        partition, records = element
        # Sorted, so that reruns and any number of workers produce the same files.
        ordered = sorted(records, key=self._sort_key)
        for chunk, rows in _chunks(ordered, MAX_ROWS_PER_FILE):
            name = self._layout.file_name(self._kind, chunk, self._suffix)
            staged = self._layout.staged_path(self._kind, partition, name)
            filesystem.write_file(staged, self._encode(rows))
            self._files.inc()
            yield StagedFile(
                kind=self._kind,
                staged=staged,
                final=self._layout.final_path(self._kind, partition, name),
                records=len(rows),
            )


def encode_parquet(articles: Sequence[Article]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(articles_to_table(articles), sink, compression="zstd")
    return sink.getvalue()


def encode_json_lines(records: Sequence[Alert | Rejection]) -> bytes:
    return "".join(r.to_json() + "\n" for r in records).encode("utf-8")


def article_partition(article: Article) -> tuple[str, Article]:
    return article.partition_date, article


def article_order(article: Article) -> str:
    return article.article_id


def alert_partition(alert: Alert) -> tuple[str, Alert]:
    return alert.partition_date, alert


def alert_order(alert: Alert) -> tuple[str, str]:
    return alert.topic, alert.cluster_id


def rejection_partition(rejection: Rejection) -> tuple[str, Rejection]:
    return rejection.rejected_at.strftime("%Y-%m-%d"), rejection


def rejection_order(rejection: Rejection) -> str:
    return rejection.to_json()


class _WritePartitioned(beam.PTransform):
    def __init__(self, layout: OutputLayout, kind: str, suffix: str, partition_of, encode, order):
        super().__init__()
        self._layout = layout
        self._kind = kind
        self._suffix = suffix
        self._partition_of = partition_of
        self._encode = encode
        self._order = order

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return (
            records
            | "KeyByPartition" >> beam.Map(self._partition_of)
            | "GroupByPartition" >> beam.GroupByKey()
            | "WriteStaged"
            >> beam.ParDo(
                _WritePartitionFn(self._layout, self._kind, self._suffix, self._encode, self._order)
            )
        )


class WriteArticles(_WritePartitioned):
    """Articles as Parquet in staging, one folder per ``dt=`` partition; yields StagedFiles."""

    def __init__(self, layout: OutputLayout) -> None:
        super().__init__(
            layout, ARTICLES, "parquet", article_partition, encode_parquet, article_order
        )


class WriteAlertLog(_WritePartitioned):
    """Alerts as JSON Lines in staging (partitioned by the day raised); yields StagedFiles."""

    def __init__(self, layout: OutputLayout) -> None:
        super().__init__(layout, ALERTS, "jsonl", alert_partition, encode_json_lines, alert_order)


class WriteRejected(_WritePartitioned):
    """Rejected inputs as JSON Lines in staging (partitioned by the day rejected)."""

    def __init__(self, layout: OutputLayout) -> None:
        super().__init__(
            layout, REJECTED, "jsonl", rejection_partition, encode_json_lines, rejection_order
        )


def article_ids_in(handle: BinaryIO) -> list[str]:
    """The ``article_id`` column of one committed Parquet file."""
    return [str(v) for v in pq.read_table(handle, columns=["article_id"]).column(0).to_pylist()]


def alert_keys_in(handle: BinaryIO) -> Iterator[tuple[str, str]]:
    """(topic, cluster_id) of each alert in one committed JSON Lines file."""
    for line in io.TextIOWrapper(handle, encoding="utf-8"):
        if line.strip():
            record = json.loads(line)
            yield record["topic"], record["cluster_id"]


def _opened(read: Callable[[BinaryIO], Iterable[Any]]) -> Callable[[fileio.ReadableFile], Any]:
    def read_file(readable: fileio.ReadableFile) -> Iterator[Any]:
        with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            yield from read(handle)

    return read_file


class _ReadCommitted(beam.PTransform):
    def __init__(self, pattern: str, read: Callable[[fileio.ReadableFile], Iterator[Any]]):
        super().__init__()
        self._pattern = pattern
        self._read = read

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Match" >> fileio.MatchFiles(self._pattern, EmptyMatchTreatment.ALLOW)
            | "Open" >> fileio.ReadMatches()
            | "Read" >> beam.FlatMap(self._read)
        )


class ReadStoredArticleIds(_ReadCommitted):
    """``article_id`` of every committed article (the seen-set of exact dedupe)."""

    def __init__(self, root: str) -> None:
        super().__init__(
            filesystem.join(root, ARTICLES, "dt=*", "*.parquet"), _opened(article_ids_in)
        )


class ReadStoredAlertKeys(_ReadCommitted):
    """(topic, cluster_id) of every committed alert: the ledger behind one alert per story."""

    def __init__(self, root: str) -> None:
        super().__init__(filesystem.join(root, ALERTS, "dt=*", "*.jsonl"), _opened(alert_keys_in))
