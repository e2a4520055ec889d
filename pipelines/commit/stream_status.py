"""The stream's periodic status: counts since it started, pending windows and Kafka lag.

``report_status`` logs it on the ``newswatch.status`` logger: one text line, or under
``--log-format json`` a JSON object whose ``status`` field holds the numbers, for machines::

    newswatch stream 2026-11-28T15:17:09Z  in 1230  stored 1200 (+12 pending)  duplicates 18
    (15 exact, 3 near)  rejected 2  alerts 5  windows 20  lag wire/0=0 wire/1=3
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from newswatch.connectors.dataset.layout import ALERTS, ARTICLES
from newswatch.connectors.kafka.connection import PartitionReport
from newswatch.connectors.kafka.poll import PartitionProgress
from newswatch.connectors.rss.read import FeedReport
from newswatch.connectors.stream.spool import count_spooled, read_spools
from newswatch.pipelines.commit.manifest import PartitionKey
from newswatch.pipelines.control.settings import STATUS_LOGGER

__all__ = ["StreamStatus", "StreamTotals", "report_status", "stream_status"]

REPORTS = "reports"


@dataclass
class StreamTotals:
    """Counts since the stream started, kept by the window committer."""

    read: int = 0  # messages and feed entries read, rejected ones included
    stored: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    rejected: int = 0
    alerts: int = 0
    windows: int = 0
    committed: dict[PartitionKey, int] = field(default_factory=dict)
    high: dict[PartitionKey, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamStatus:
    """One status report; committed counts plus what the open windows hold (pending)."""

    at: str  # UTC, ISO 8601 to the second
    stopped: bool
    read: int
    stored: int
    pending_stored: int
    exact_duplicates: int
    near_duplicates: int
    rejected: int
    alerts: int
    windows: int
    lag: dict[str, int | None]  # "<source>/<partition>" -> messages behind (None: unknown)

    def line(self) -> str:
        lags = " ".join(f"{k}={'?' if v is None else v}" for k, v in self.lag.items())
        return (
            f"newswatch stream {self.at}{' (stopped)' if self.stopped else ''}"
            f"  in {self.read}"
            f"  stored {self.stored} (+{self.pending_stored} pending)"
            f"  duplicates {self.exact_duplicates + self.near_duplicates}"
            f" ({self.exact_duplicates} exact, {self.near_duplicates} near)"
            f"  rejected {self.rejected}"
            f"  alerts {self.alerts}"
            f"  windows {self.windows}"
            f"  lag {lags or '-'}"
        )


def source_counts(reports: Iterable[Any]) -> tuple[int, int, int]:
    """(items read, read and usable, rejected at the source) from a window's reports."""
    usable = rejected = 0
    for report in reports:
        if isinstance(report, PartitionReport):
            usable += report.read
            rejected += report.rejected
        elif isinstance(report, FeedReport):
            usable += report.entries
            rejected += report.rejected
    return usable + rejected, usable, rejected


def stream_status(
    totals: StreamTotals, pending_windows: Sequence[str], at: float, stopped: bool
) -> StreamStatus:
    """The status from the committed totals and the spools of the open windows."""
    pending_read = pending_alerts = pending_stored = 0
    high = dict(totals.high)
    for directory in pending_windows:
        reports = read_spools(directory, REPORTS)
        pending_read += source_counts(reports)[0]
        pending_alerts += count_spooled(directory, ALERTS)
        pending_stored += count_spooled(directory, ARTICLES)
        for progress in reports:
            if isinstance(progress, PartitionProgress):
                high[(progress.source, progress.topic, progress.partition)] = (
                    progress.high_watermark
                )
    lag: dict[str, int | None] = {}
    for key in sorted(totals.committed):
        source, _, partition = key
        top = high.get(key)
        lag[f"{source}/{partition}"] = None if top is None else max(0, top - totals.committed[key])
    return StreamStatus(
        at=datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        stopped=stopped,
        read=totals.read + pending_read,
        stored=totals.stored,
        pending_stored=pending_stored,
        exact_duplicates=totals.exact_duplicates,
        near_duplicates=totals.near_duplicates,
        rejected=totals.rejected,
        alerts=totals.alerts + pending_alerts,
        windows=totals.windows,
        lag=lag,
    )


def report_status(status: StreamStatus) -> None:
    logging.getLogger(STATUS_LOGGER).info(status.line(), extra={"status": asdict(status)})
