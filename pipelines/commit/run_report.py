"""A committed run's report: what it committed and how each source fared, for the summary,
for operators and for the report page (``<out>/_state/runs/<run>.json``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import RUN_REPORTS, OutputLayout
from newswatch.connectors.kafka.connection import PartitionReport
from newswatch.connectors.rss.read import FeedReport
from newswatch.pipelines.commit.manifest import CommitResult

__all__ = ["read_run_report", "run_report_path", "write_run_report"]


def run_report_path(root: str, run_id: str) -> str:
    return OutputLayout(root).state(RUN_REPORTS, f"{run_id}.json")


def write_run_report(
    layout: OutputLayout,
    result: CommitResult,
    feeds: Sequence[FeedReport],
    partitions: Sequence[PartitionReport],
) -> None:
    """What a run committed and how each source fared, for the summary and for operators."""
    report = {
        "run_id": result.run_id,
        "committed": asdict(result),
        "feeds": [
            {
                "source": f.source,
                "url": f.url,
                "status": f.status,
                "http_status": f.http_status,
                "entries": f.entries,
                "rejected": f.rejected,
                "error": f.error,
            }
            for f in feeds
        ],
        "partitions": [asdict(p) for p in partitions],
    }
    path = run_report_path(layout.root, layout.run_id)
    filesystem.replace_file(path, json.dumps(report, indent=1, sort_keys=True).encode())


def read_run_report(root: str, run_id: str) -> dict[str, Any] | None:
    path = run_report_path(root, run_id)
    if not filesystem.exists(path):
        return None
    return json.loads(filesystem.read_file(path))
