"""DuckDB views over a stored dataset: ``articles``, ``alerts``, ``rejected``, ``runs``, ``feeds``.

    >>> import tempfile
    >>> connection = open_dataset(Path(tempfile.mkdtemp()))   # a dataset with nothing yet
    >>> connection.sql("SELECT count(*) FROM articles").fetchall()
    [(0,)]

Column names and types come from ``schemas/``: the Arrow schema of articles, the JSON Schema
of alerts and the ``Rejection`` record. A view reads the files of its folder when a query
runs (Hive partitions: ``dt`` is a DATE column); a folder with no files yet gives an empty
view with the same columns, so a query written today also runs on a fresh dataset.

``runs`` and ``feeds`` read the run reports under ``_state/runs/`` that each committed
``newswatch run`` writes (``pipelines/commit/run_report.py``'s ``write_run_report``; the stream's
windows write none): one row per run, and one row per feed per run. Timestamps are shown in UTC whatever the
machine's time zone.

Only local folders: DuckDB reads object stores through extensions that newswatch does not
install.
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from newswatch.connectors.dataset.layout import (
    ALERTS,
    ARTICLES,
    REJECTED,
    RUN_REPORTS,
    OutputLayout,
)
from newswatch.schemas import ARTICLE_SCHEMA, Rejection, alert_json_schema
from newswatch.schemas.alert import SPIKE_ONLY

__all__ = [
    "VIEWS",
    "alert_columns",
    "article_columns",
    "arrow_sql_type",
    "open_dataset",
    "rejected_columns",
]

VIEWS = ("articles", "alerts", "rejected", "runs", "feeds")
Columns = list[tuple[str, str]]

# The Hive partition column of every dataset folder.
_PARTITION = ("dt", "DATE")
_HIVE = "hive_partitioning = true, hive_types = {'dt': 'DATE'}"


def arrow_sql_type(arrow_type: pa.DataType) -> str:
    """DuckDB's name for an Arrow type of ``ARTICLE_SCHEMA`` (raises on a type it lacks)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "VARCHAR"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_list(arrow_type):
        return arrow_sql_type(arrow_type.value_type) + "[]"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(f'"{field.name}" {arrow_sql_type(field.type)}' for field in arrow_type)
        return f"STRUCT({fields})"
    simple = {
        pa.bool_(): "BOOLEAN",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float64(): "DOUBLE",
        pa.binary(): "BLOB",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    raise TypeError(f"no DuckDB type for Arrow type {arrow_type}")


def json_schema_sql_type(prop: dict[str, Any]) -> str:
    """DuckDB's type for one property of a JSON Schema (``null`` in a type list = nullable)."""
    kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    [kind] = [k for k in kinds if k != "null"]
    if kind == "string":
        return "TIMESTAMPTZ" if prop.get("format") == "date-time" else "VARCHAR"
    if kind == "array":
        return json_schema_sql_type(prop["items"]) + "[]"
    return {"number": "DOUBLE", "integer": "BIGINT", "boolean": "BOOLEAN"}[kind]


def _python_sql_type(annotation: Any) -> str:
    """DuckDB's type for a field annotation of a schema dataclass (``X | None`` is X)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args and typing.get_origin(annotation) is not tuple:
        [annotation] = args
    return {str: "VARCHAR", datetime: "TIMESTAMPTZ", int: "BIGINT", float: "DOUBLE"}[annotation]


def article_columns() -> Columns:
    return [(field.name, arrow_sql_type(field.type)) for field in ARTICLE_SCHEMA]


def alert_columns() -> Columns:
    """The alert log's columns: story alerts' (spike alerts are never in the log)."""
    properties: dict[str, dict[str, Any]] = alert_json_schema()["properties"]
    return [
        (name, json_schema_sql_type(prop))
        for name, prop in properties.items()
        if name not in SPIKE_ONLY
    ]


def rejected_columns() -> Columns:
    """The record ``Rejection.to_json`` writes: its fields, ``raw`` as base64 text, and the
    locator's keys (feed URL and entry, or Kafka topic, partition, offset) in one JSON column."""
    hints = typing.get_type_hints(Rejection)
    columns: Columns = []
    for field in dataclasses.fields(Rejection):
        if field.name == "raw":
            columns.append(("raw_base64", "VARCHAR"))
        elif field.name == "locator":
            columns.append(("locator", "JSON"))
        else:
            columns.append((field.name, _python_sql_type(hints[field.name])))
    return columns


# The run report's layout is write_run_report's (pipelines/commit.py); importing it here
# would pull in Beam, seconds of start-up for a query. tests/test_sql.py checks these
# against the report a real run writes.
_COMMITTED = [
    ("articles", "BIGINT"),
    ("alerts", "BIGINT"),
    ("rejected", "BIGINT"),
    ("files", "BIGINT"),
    ("alerts_sent", "BIGINT"),
    ("offsets", "BIGINT"),
]
FEED_REPORT_COLUMNS: Columns = [
    ("source", "VARCHAR"),
    ("url", "VARCHAR"),
    ("status", "VARCHAR"),
    ("http_status", "INTEGER"),
    ("entries", "BIGINT"),
    ("rejected", "BIGINT"),
    ("error", "VARCHAR"),
]


def _struct(columns: Columns) -> str:
    return "STRUCT(" + ", ".join(f'"{name}" {kind}' for name, kind in columns) + ")"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _typed_nulls(columns: Columns) -> str:
    """An empty SELECT with these columns: what a view shows before any file exists."""
    nulls = ", ".join(f'CAST(NULL AS {kind}) AS "{name}"' for name, kind in columns)
    return f"SELECT {nulls} WHERE false"


def _has_files(folder: Path, pattern: str) -> bool:
    return folder.is_dir() and next(folder.glob(pattern), None) is not None


def _articles_sql(root: Path) -> str:
    columns = article_columns()
    if not _has_files(root / ARTICLES, "dt=*/*.parquet"):
        return _typed_nulls([*columns, _PARTITION])
    # Cast to the schema's types, so files written by an older release read the same.
    select = ", ".join(f'CAST("{name}" AS {kind}) AS "{name}"' for name, kind in columns)
    glob = _quote(str(root / ARTICLES / "dt=*" / "*.parquet"))
    return f"SELECT {select}, dt FROM read_parquet({glob}, {_HIVE}, union_by_name = true)"


def _alerts_sql(root: Path) -> str:
    columns = alert_columns()
    if not _has_files(root / ALERTS, "dt=*/*.jsonl"):
        return _typed_nulls([*columns, _PARTITION])
    spec = "{" + ", ".join(f"{_quote(n)}: {_quote(k)}" for n, k in columns) + "}"
    glob = _quote(str(root / ALERTS / "dt=*" / "*.jsonl"))
    names = ", ".join(f'"{name}"' for name, _ in columns)
    return (
        f"SELECT {names}, dt FROM read_json({glob}, format = 'newline_delimited', "
        f"columns = {spec}, {_HIVE})"
    )


def _rejected_sql(root: Path) -> str:
    columns = rejected_columns()
    if not _has_files(root / REJECTED, "dt=*/*.jsonl"):
        return _typed_nulls([*columns, _PARTITION])
    own = [(name, kind) for name, kind in columns if name != "locator"]
    # What is left of a record without the rejection's own keys is where it came from.
    strip = "{" + ", ".join(f'"{name}": null' for name, _ in own) + "}"
    select = [
        f'CAST(json ->> {_quote(name)} AS {kind}) AS "{name}"'
        if name != "locator"
        else f"json_merge_patch(json, {_quote(strip)}) AS locator"
        for name, kind in columns
    ]
    glob = _quote(str(root / REJECTED / "dt=*" / "*.jsonl"))
    return f"SELECT {', '.join(select)}, dt FROM read_ndjson_objects({glob}, {_HIVE})"


def _run_reports_sql(root: Path) -> str:
    """One row per run report: run_id, its start (from the id), committed counts, feeds."""
    report = [
        ("run_id", "VARCHAR"),
        ("committed", _struct(_COMMITTED)),
        ("feeds", _struct(FEED_REPORT_COLUMNS) + "[]"),
    ]
    folder = Path(OutputLayout(str(root)).state(RUN_REPORTS))
    if not _has_files(folder, "*.json"):
        source = _typed_nulls(report)
    else:
        spec = "{" + ", ".join(f"{_quote(n)}: {_quote(k)}" for n, k in report) + "}"
        source = f"SELECT * FROM read_json({_quote(str(folder / '*.json'))}, columns = {spec})"
    # Run ids start with the UTC start time (commit.new_run_id): 20261128T141924Z-20b086.
    started = "timezone('UTC', strptime(left(run_id, 16), '%Y%m%dT%H%M%SZ'))"
    return f"SELECT run_id, {started} AS started_at, committed, feeds FROM ({source})"


def _runs_sql(root: Path) -> str:
    counts = ", ".join(f'committed."{name}" AS "{name}"' for name, _ in _COMMITTED)
    by_status = ", ".join(
        f"len(list_filter(feeds, lambda f: f.status = '{status}')) AS feeds_{status}"
        for status in ("ok", "not_modified", "failed")
    )
    return f"SELECT run_id, started_at, {counts}, {by_status} FROM ({_run_reports_sql(root)})"


def _feeds_sql(root: Path) -> str:
    fields = ", ".join(f'feed."{name}" AS "{name}"' for name, _ in FEED_REPORT_COLUMNS)
    reports = _run_reports_sql(root)
    return f"SELECT run_id, started_at, {fields} FROM ({reports}), unnest(feeds) AS u(feed)"


def open_dataset(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the dataset's views; nothing is copied."""
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"CREATE VIEW articles AS {_articles_sql(root)}")
    connection.execute(f"CREATE VIEW alerts AS {_alerts_sql(root)}")
    connection.execute(f"CREATE VIEW rejected AS {_rejected_sql(root)}")
    connection.execute(f"CREATE VIEW runs AS {_runs_sql(root)}")
    connection.execute(f"CREATE VIEW feeds AS {_feeds_sql(root)}")
    return connection
