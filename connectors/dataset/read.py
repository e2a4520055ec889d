"""Reading back what the dataset has committed: the state the batch stages join with.

Each reader takes one committed file's bytes (through Beam filesystems) and returns the
columns a stage needs: article ids (exact dedupe), alert keys (one alert per story) and
MinHash signatures (near-duplicates), or whole articles (``newswatch reprocess``). The
``Read*`` transforms match the files on any Beam filesystem; the near-duplicate stage and
the stream's indexes call the same per-file readers.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.fileio import EmptyMatchTreatment
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import ALERTS, ARTICLES, OutputLayout, partition_and_name
from newswatch.pipelines.core.alerting import alert_key
from newswatch.pipelines.core.minhash import Signed
from newswatch.pipelines.core.normalization import article_id, canonical_url
from newswatch.schemas import Article, articles_from_table

__all__ = [
    "ReadStoredAlertKeys",
    "ReadStoredArticleIds",
    "ReadStoredArticles",
    "StoredFile",
    "alert_keys_in",
    "article_ids_in",
    "articles_in",
    "horizon_signature_tables",
    "read_horizon_signatures",
    "signature_table",
    "signed_rows",
    "stored_article",
    "stored_article_files",
]

# What a later run needs of a stored article to cluster with it; no other column is read.
SIGNATURE_COLUMNS = ("article_id", "published_at", "cluster_id", "minhash", "shingle_count")


def article_ids_in(handle: BinaryIO) -> list[str]:
    """The ``article_id`` column of one committed Parquet file."""
    return [str(v) for v in pq.read_table(handle, columns=["article_id"]).column(0).to_pylist()]


def articles_in(handle: BinaryIO) -> list[Article]:
    """Every article of one committed Parquet file, whole, in the file's order."""
    return articles_from_table(pq.read_table(handle))


def alert_keys_in(handle: BinaryIO) -> Iterator[str]:
    """The ``alert_key`` of each alert in one committed JSON Lines file."""
    for line in io.TextIOWrapper(handle, encoding="utf-8"):
        if line.strip():
            record = json.loads(line)
            yield alert_key(record["topic"], record["cluster_id"])


def signature_table(handle: BinaryIO) -> pa.Table | None:
    """The ``SIGNATURE_COLUMNS`` of one committed Parquet file; None if it was written before
    signatures were stored (its articles take no part)."""
    parquet = pq.ParquetFile(handle)
    if not set(SIGNATURE_COLUMNS) <= set(parquet.schema_arrow.names):
        return None
    return parquet.read(columns=list(SIGNATURE_COLUMNS))


def signed_rows(table: pa.Table) -> list[Signed]:
    return [
        Signed(
            article_id=row["article_id"],
            published_at=row["published_at"],
            this_run=False,
            cluster_id=row["cluster_id"],
            minhash=row["minhash"],
            shingle_count=row["shingle_count"],
            day=row["published_at"].strftime("%Y-%m-%d") if row["published_at"] else "",
        )
        for row in table.to_pylist()
    ]


def horizon_signature_tables(
    root: str, partitions: Sequence[str]
) -> Iterator[tuple[str, pa.Table]]:
    """(dt day, ``signature_table``) of every committed article file in the given partitions."""
    layout = OutputLayout(root)
    for day in partitions:
        for path in filesystem.list_files(layout.committed_files(ARTICLES, "parquet", day)):
            table = signature_table(io.BytesIO(filesystem.read_file(path)))
            if table is not None:
                yield day, table


def read_horizon_signatures(root: str, partitions: Sequence[str]) -> Iterator[tuple[str, Signed]]:
    """(dt day, signature) of every committed article in the given ``dt=`` partitions."""
    for day, table in horizon_signature_tables(root, partitions):
        for signed in signed_rows(table):
            yield day, signed


class _ReadEachFile:
    """Picklable: a matched file opened through Beam filesystems, then ``read`` over it."""

    def __init__(self, read: Callable[[BinaryIO], Iterable[Any]]) -> None:
        self._read = read

    def __call__(self, readable: fileio.ReadableFile) -> Iterator[Any]:
        with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            yield from self._read(handle)


class _ReadMatching(beam.PTransform):
    """File patterns in; ``read`` over each matching file out (no match is no file)."""

    def __init__(self, read: Callable[[BinaryIO], Iterable[Any]]):
        super().__init__()
        self._read = read

    def expand(self, patterns: beam.PCollection) -> beam.PCollection:
        return (
            patterns
            | "Match" >> fileio.MatchAll(EmptyMatchTreatment.ALLOW)
            | "Open" >> fileio.ReadMatches()
            | "Read" >> beam.FlatMap(_ReadEachFile(self._read))
        )


class _ReadCommitted(beam.PTransform):
    def __init__(self, patterns: Sequence[str], read: Callable[[BinaryIO], Iterable[Any]]):
        super().__init__()
        self._patterns = list(patterns)
        self._read = read

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "ReadFiles" >> _ReadMatching(self._read)
        )


class ReadStoredArticleIds(_ReadCommitted):
    """``article_id`` of every committed article (the seen-set of exact dedupe)."""

    def __init__(self, root: str) -> None:
        super().__init__([OutputLayout(root).committed_files(ARTICLES, "parquet")], article_ids_in)


class _ArticlesOfFile:
    """Picklable: a matched Parquet file to (its path, article) for each of its rows."""

    def __call__(self, readable: fileio.ReadableFile) -> Iterator[tuple[str, Article]]:
        path = readable.metadata.path
        with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            for article in articles_in(handle):
                yield path, article


class ReadStoredArticles(beam.PTransform):
    """Paths of committed article files in; ``(path, Article)`` for every row out.

    The path comes along so that a stage can write each file again
    (``connectors/dataset/rewrite.py``).

        files = pipeline | beam.Create(["/data/articles/dt=2026-11-30/part-r1-00000.parquet"])
        stored = files | ReadStoredArticles()
    """

    def expand(self, paths: beam.PCollection) -> beam.PCollection:
        return (
            paths
            | "Match" >> fileio.MatchAll(EmptyMatchTreatment.DISALLOW)
            | "Open" >> fileio.ReadMatches()
            | "Read" >> beam.FlatMap(_ArticlesOfFile())
        )


class ReadStoredAlertKeys(_ReadCommitted):
    """``alert_key`` of every committed alert: the ledger behind one alert per story."""

    def __init__(self, root: str) -> None:
        super().__init__([OutputLayout(root).committed_files(ALERTS, "jsonl")], alert_keys_in)


def stored_article(
    root: str, url_or_id: str, columns: Sequence[str] = ("article_id", "url", "title", "text")
) -> dict[str, Any]:
    """The stored article with this URL or article id; LookupError when there is none.

    Each committed file's ``article_id`` column is read first, the text only of the file
    that holds the article, newest partitions first.
    """
    wanted = article_id(canonical_url(url_or_id)) if "://" in url_or_id else url_or_id
    pattern = OutputLayout(root).committed_files(ARTICLES, "parquet")
    for path in reversed(filesystem.list_files(pattern)):
        parquet = pq.ParquetFile(io.BytesIO(filesystem.read_file(path)))
        ids = parquet.read(columns=["article_id"]).column(0).to_pylist()
        if wanted in ids:
            return parquet.read(columns=list(columns)).to_pylist()[ids.index(wanted)]
    raise LookupError(f"no stored article {url_or_id!r} under {root}")


@dataclass(frozen=True)
class StoredFile:
    """A committed article file, its ``dt=`` day and how many articles it holds."""

    path: str
    day: str
    articles: int


def stored_article_files(root: str, since: str = "", until: str = "") -> list[StoredFile]:
    """The committed article files of the ``dt=`` days from ``since`` to ``until``
    (ISO dates, both included; empty for no bound), oldest day first.

    Only each file's Parquet footer is read, for its number of rows.
    """
    found = []
    for path in filesystem.list_files(OutputLayout(root).committed_files(ARTICLES, "parquet")):
        day, _ = partition_and_name(path)
        if (since and day < since) or (until and day > until):
            continue
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            rows = pq.ParquetFile(handle).metadata.num_rows
        found.append(StoredFile(path, day, rows))
    return sorted(found, key=_file_order)


def _file_order(stored: StoredFile) -> tuple[str, str]:
    return stored.day, stored.path
