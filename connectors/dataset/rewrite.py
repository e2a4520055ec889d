"""Rewriting committed article files with new ``entities`` and ``topics``, in staging.

``replace_columns`` is one file's table with those columns taken from re-analysed
articles: the same rows in the same order, every other column as it was (the file's own
schema, so a column this code does not know passes through). ``StageRewrittenFiles``
writes each file whose columns changed under ``_staging/<run>/`` with the dataset path it
replaces as its ``final``; ``pipelines/commit/rewrite.py`` renames it over the old file.

    rewritten = (path, articles) pairs | StageRewrittenFiles(OutputLayout(root, run_id))
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import (
    ARTICLES,
    OutputLayout,
    StagedFile,
    partition_and_name,
)
from newswatch.connectors.dataset.write import encode_table
from newswatch.schemas import ARTICLE_SCHEMA, Article, articles_to_table

__all__ = ["REANALYSED_COLUMNS", "StageRewrittenFiles", "replace_columns"]

# What text analysis decides; everything else an article stores stays as it was.
REANALYSED_COLUMNS = ("entities", "topics")


def replace_columns(
    table: pa.Table, articles: Iterable[Article], columns: Sequence[str] = REANALYSED_COLUMNS
) -> pa.Table:
    """``table`` with ``columns`` taken from the article of the same ``article_id``.

    Every row must have its article: a row left out would be a row lost.
    """
    by_id = {a.article_id: a for a in articles}
    ids = table.column("article_id").to_pylist()
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} rows have no re-analysed article, e.g. {missing[0]}")
    fresh = articles_to_table(by_id[i] for i in ids)
    for name in columns:
        field = ARTICLE_SCHEMA.field(name)
        index = table.schema.get_field_index(name)
        if index < 0:  # a file written before the column existed
            table = table.append_column(field, fresh.column(name))
        else:
            table = table.set_column(index, field, fresh.column(name))
    return table


def columns_equal(before: pa.Table, after: pa.Table, columns: Sequence[str]) -> bool:
    return all(
        name in before.schema.names and before.column(name).equals(after.column(name))
        for name in columns
    )


class _StageRewrittenFileFn(beam.DoFn):
    def __init__(self, layout: OutputLayout) -> None:
        self._layout = layout
        self._rewritten = Metrics.counter(self.__class__, "files_rewritten")
        self._unchanged = Metrics.counter(self.__class__, "files_unchanged")

    def process(self, element: tuple[str, Iterable[Article]]) -> Iterator[StagedFile]:
        path, articles = element
        before = pq.read_table(io.BytesIO(filesystem.read_file(path)))
        after = replace_columns(before, articles)
        if columns_equal(before, after, REANALYSED_COLUMNS):
            self._unchanged.inc()
            return
        day, name = partition_and_name(path)
        staged = self._layout.staged_path(ARTICLES, day, name)
        filesystem.write_file(staged, encode_table(after))
        self._rewritten.inc()
        yield StagedFile(ARTICLES, staged, path, after.num_rows)


class StageRewrittenFiles(beam.PTransform):
    """(file path, its re-analysed articles) in; a StagedFile for each file that changed.

    The staged file keeps its old name, under ``_staging/<run>/articles/dt=<day>/``.
    """

    def __init__(self, layout: OutputLayout) -> None:
        super().__init__()
        self._layout = layout

    def expand(self, by_file: beam.PCollection) -> beam.PCollection:
        return by_file | "StageRewritten" >> beam.ParDo(_StageRewrittenFileFn(self._layout))
