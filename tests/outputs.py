"""Reading a run's output back the way users' tools do: pyarrow datasets, DuckDB, JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds


def read_articles(out: Path) -> pa.Table:
    """Every committed article, sorted by id; empty (with no columns) when there are none."""
    root = out / "articles"
    if not root.exists():
        return pa.table({})
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    return table.sort_by("article_id")


def read_jsonl(out: Path, kind: str) -> list[dict[str, Any]]:
    records = []
    for path in sorted((out / kind).glob("dt=*/*.jsonl")):
        records.extend(json.loads(line) for line in path.read_text("utf-8").splitlines() if line)
    return records


def dataset_files(out: Path) -> list[str]:
    """Every file a reader can see, relative to the output folder."""
    return sorted(
        str(p.relative_to(out))
        for kind in ("articles", "alerts", "rejected")
        for p in (out / kind).glob("dt=*/*")
    )


def run_reports(out: Path) -> list[dict[str, Any]]:
    """The run report of every committed run (or pass), oldest first."""
    paths = sorted((out / "_state" / "runs").glob("*.json"))  # run ids sort by start time
    return [json.loads(p.read_text("utf-8")) for p in paths]
