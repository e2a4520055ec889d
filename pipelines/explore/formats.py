"""Query results as text: an aligned table for people, CSV and JSON Lines for programs.

    >>> print(format_rows(["topic", "n"], [("dprk-russia-arms", 3)], "table"))
    topic             n
    ----------------  -
    dprk-russia-arms  3
    (1 row)

In every format a timestamp is ISO 8601 (UTC), a date ``YYYY-MM-DD``, binary data base64.
CSV writes lists and structs as JSON; JSON Lines writes one object per row, keys in the
query's column order.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

__all__ = ["FORMATS", "format_rows", "plain_value"]

FORMATS = ("table", "csv", "json")
# A table cell longer than this is cut with an ellipsis: a person reads it, the other
# formats keep everything.
MAX_CELL = 60


def plain_value(value: Any) -> Any:
    """The value as JSON-ready Python: ISO strings for times, base64 for bytes."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID | timedelta):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value


def _text(value: Any) -> str:
    """One value as CSV or table text: scalars as they are, lists and structs as JSON."""
    if value is None:
        return ""
    plain = plain_value(value)
    if isinstance(plain, list | dict):
        return json.dumps(plain, ensure_ascii=False, default=str)
    if isinstance(plain, bool):
        return "true" if plain else "false"
    return str(plain)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = " ".join(_text(value).split())  # a table row stays on one line
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(name), *(len(r[i]) for r in cells)]) for i, name in enumerate(columns)]
    numeric = [
        bool(rows) and all(_is_number(r[i]) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]
    lines = ["  ".join(name.ljust(w) for name, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        aligned = (
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(row, widths, numeric, strict=True)
        )
        lines.append("  ".join(aligned).rstrip())
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines)


def _csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_text(v) for v in row] for row in rows)
    return sink.getvalue().rstrip("\n")


def _json_lines(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return "\n".join(
        json.dumps(
            {name: plain_value(v) for name, v in zip(columns, row, strict=True)},
            ensure_ascii=False,
            default=str,  # a type DuckDB may add later is written as its text
        )
        for row in rows
    )


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """The result in ``fmt`` (one of FORMATS), without a trailing newline."""
    if fmt == "table":
        return _table(columns, rows)
    if fmt == "csv":
        return _csv(columns, rows)
    if fmt == "json":
        return _json_lines(columns, rows)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
