"""A committed run's counts from its report and its files, for a runner that keeps no
metrics (Beam's DaskRunner): the summary of ``newswatch run`` stays right without them.

Every item a run reads is stored, rejected, or dropped as a copy of an article already
stored or read twice, so the duplicates dropped follow from what the sources report and
what the run committed; the near-duplicates are the stored rows marked ``is_duplicate``.
What is counted only in flight (articles per language) has no such source and is left out.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import ARTICLES, OutputLayout

__all__ = ["counts_from_report"]


def counts_from_report(root: str, report: dict[str, Any]) -> dict[str, int]:
    """The counters the summary reads, as the run's metrics would have them."""
    feeds = report.get("feeds", [])
    partitions = report.get("partitions", [])
    committed = report.get("committed", {})
    counts = {
        "entries_read": sum(f.get("entries", 0) for f in feeds),
        "entries_rejected": sum(f.get("rejected", 0) for f in feeds),
        "kafka_messages_read": sum(p.get("read", 0) for p in partitions),
        "kafka_messages_rejected": sum(p.get("rejected", 0) for p in partitions),
    }
    items = sum(counts.values())
    counts["duplicates_dropped"] = (
        items - committed.get("articles", 0) - committed.get("rejected", 0)
    )
    counts["near_duplicates"] = stored_near_duplicates(root, report["run_id"])
    return counts


def stored_near_duplicates(root: str, run_id: str) -> int:
    """How many articles the run stored as copies of a known story (one column read)."""
    pattern = OutputLayout(root, run_id).run_files(ARTICLES, "parquet")
    copies = 0
    for path in filesystem.list_files(pattern):
        table = pq.read_table(io.BytesIO(filesystem.read_file(path)), columns=["is_duplicate"])
        copies += table.column(0).to_pylist().count(True)
    return copies
