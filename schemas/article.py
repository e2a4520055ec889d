"""The article record and its Arrow schema: the single source of truth for Parquet columns.

``ARTICLE_SCHEMA`` lists every column of ``<out>/articles/dt=*/*.parquet``; the
dataclasses mirror it, and ``articles_to_table`` and ``articles_from_table`` are the only
places that turn one into the other (a check at import keeps the two in step).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class Entity:
    """A named entity as found (``text``, spaCy ``label``) and its canonical name."""

    text: str
    label: str
    canonical: str


@dataclass(frozen=True)
class TopicMatch:
    """A watched topic that matched, its score in [0, 1] and the sentences that satisfied it."""

    id: str
    score: float
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Article:
    article_id: str
    source: str
    url: str
    title: str
    text: str
    published_at: datetime | None
    ingested_at: datetime
    language: str | None = None
    authors: tuple[str, ...] = ()
    entities: tuple[Entity, ...] = ()
    topics: tuple[TopicMatch, ...] = ()
    cluster_id: str = ""
    is_duplicate: bool = False
    # The text's MinHash (pipelines/core/minhash.py) and its number of distinct shingles: what a
    # later run needs to find copies of this article (pipelines/stages/clusters.py).
    minhash: bytes = b""
    shingle_count: int = 0

    @property
    def partition_date(self) -> str:
        """The ``dt=`` partition: the UTC date published, else the date ingested."""
        when = self.published_at or self.ingested_at
        return when.strftime("%Y-%m-%d")


_UTC_US = pa.timestamp("us", tz="UTC")

ENTITY_TYPE = pa.struct([("text", pa.string()), ("label", pa.string()), ("canonical", pa.string())])
TOPIC_TYPE = pa.struct(
    [("id", pa.string()), ("score", pa.float64()), ("evidence", pa.list_(pa.string()))]
)

ARTICLE_SCHEMA = pa.schema(
    [
        pa.field("article_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("published_at", _UTC_US),
        pa.field("ingested_at", _UTC_US, nullable=False),
        pa.field("language", pa.string()),
        pa.field("authors", pa.list_(pa.string())),
        pa.field("entities", pa.list_(ENTITY_TYPE)),
        pa.field("topics", pa.list_(TOPIC_TYPE)),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("is_duplicate", pa.bool_(), nullable=False),
        # num_perm little-endian uint32 values; empty when the text has no words
        pa.field("minhash", pa.binary(), nullable=False),
        pa.field("shingle_count", pa.int32(), nullable=False),
    ]
)

if [f.name for f in dataclasses.fields(Article)] != ARTICLE_SCHEMA.names:
    raise AssertionError("Article dataclass and ARTICLE_SCHEMA disagree on columns")


def _column_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _column_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_column_value(v) for v in value]
    return value


def articles_to_table(articles: Iterable[Article]) -> pa.Table:
    """Arrow table of articles in ARTICLE_SCHEMA, column by column."""
    rows = list(articles)
    columns = {
        name: [_column_value(getattr(a, name)) for a in rows] for name in ARTICLE_SCHEMA.names
    }
    return pa.Table.from_pydict(columns, schema=ARTICLE_SCHEMA)


@functools.cache
def _field_types(record: type) -> dict[str, Any]:
    return typing.get_type_hints(record)


def _record_value(value: Any, hint: Any) -> Any:
    """A column value as the dataclass field typed ``hint`` holds it: lists as tuples,
    structs as their dataclass (fields a file lacks take their defaults)."""
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_record_value(v, item) for v in value or ())
    if dataclasses.is_dataclass(hint) and isinstance(hint, type) and value is not None:
        return _record_of(hint, value)
    return value


def _record_of(record: type, values: dict[str, Any]) -> Any:
    types = _field_types(record)
    return record(**{n: _record_value(v, types[n]) for n, v in values.items() if n in types})


def articles_from_table(table: pa.Table) -> list[Article]:
    """The articles of a table read from the dataset, the inverse of ``articles_to_table``.

    Driven by the dataclass: a column the file lacks (written before it existed) takes its
    default, and a column the dataclass does not know (``dt`` from a Hive partitioning
    reader) is left out.
    """
    return [_record_of(Article, row) for row in table.to_pylist()]
