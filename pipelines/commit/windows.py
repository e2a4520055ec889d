"""Committing a stream window by window, and its periodic status line.

``CommitWindows`` consumes the stream's ticks. Every tick adds its fixed window to the open
ones; a window is closed by the first tick at or after its end (or by the final tick of a
drain): its spools (``connectors/stream/spool.py``) are written as dataset files in staging, the
same files a batch run writes, and committed with the batch protocol
(``pipelines/commit/manifest.py``: manifest, move, Kafka offsets, feed validators). Windows close in
time order, one after the other, in this one DoFn, so a window's offsets are never
committed before the files of an earlier window are in the dataset.

Why a window is complete when a later tick arrives: the stream is one fused stage on the
DirectRunner and each bundle is one tick (``connectors/stream/ticks.py``); every sink appends its
records to the spools at the end of its bundle, so when the bundle of a later tick starts,
everything read in the window is spooled. (Beam's own windowing cannot do this there: a
GroupByKey downstream of an endless source never fires on that runner, and event-time
timers fire at the end of every bundle, whatever the watermark.)

Offsets committed for a window are the highest ``next_offset`` its ``PartitionReport``s
carry, never lower than what was committed before. Alerts were sent to Kafka as they were
raised (``connectors/kafka/alerts.py``): the manifest records them as delivered.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.dataset.layout import ALERTS, ARTICLES, DATASETS, REJECTED, OutputLayout
from newswatch.connectors.dataset.write import (
    ALERT_FILES,
    ARTICLE_FILES,
    REJECTED_FILES,
    stage_all,
)
from newswatch.connectors.kafka.connection import PartitionReport
from newswatch.connectors.kafka.poll import PartitionProgress
from newswatch.connectors.rss.read import FeedReport
from newswatch.connectors.stream.spool import (
    count_spooled,
    delete_window,
    read_spools,
    window_dir,
    window_run_id,
    window_start_us,
)
from newswatch.connectors.stream.ticks import Tick
from newswatch.pipelines.commit.manifest import (
    CommitTargets,
    PartitionKey,
    commit,
    manifest_of,
)

__all__ = ["REPORTS", "CommitWindows", "PartitionKey", "StreamTotals"]

log = logging.getLogger(__name__)

REPORTS = "reports"


@dataclass
class StreamTotals:
    """Counts since the stream started, for the status line."""

    read: int = 0  # messages and feed entries read, rejected ones included
    stored: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    rejected: int = 0
    alerts: int = 0
    windows: int = 0
    committed: dict[PartitionKey, int] = field(default_factory=dict)
    high: dict[PartitionKey, int | None] = field(default_factory=dict)


def _source_counts(reports: Iterable[Any]) -> tuple[int, int, int]:
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


class _CommitWindowsFn(beam.DoFn):
    def __init__(
        self,
        root: str,
        spool_root: str,
        token: str,
        window_s: float,
        targets: CommitTargets,
        starts: Mapping[PartitionKey, int],
        status_interval_s: float,
        status: bool,
    ) -> None:
        self._root = root
        self._spool_root = spool_root
        self._token = token
        self._size_us = int(round(window_s * 1e6))
        self._targets = targets
        self._starts = dict(starts)
        self._status_interval_s = status_interval_s
        self._status = status
        self._open: list[int] = []
        self._totals = StreamTotals()
        self._last_status = 0.0
        self._committed = {
            kind: Metrics.counter(self.__class__, f"{kind}_committed") for kind in DATASETS
        }
        self._windows = Metrics.counter(self.__class__, "windows_committed")

    def setup(self) -> None:
        self._open = []
        self._totals = StreamTotals(committed=dict(self._starts))
        self._last_status = time.monotonic()

    def process(self, tick: Tick) -> None:
        start_us = window_start_us(int(tick.at * 1e6), self._size_us)
        if start_us not in self._open:
            self._open.append(start_us)
        for window in sorted(self._open):
            if tick.final or window + self._size_us <= int(tick.at * 1e6):
                self._close(window)
                self._open.remove(window)
        if tick.final or time.monotonic() - self._last_status >= self._status_interval_s:
            self._last_status = time.monotonic()
            self._print_status(tick, final=tick.final)

    def _close(self, start_us: int) -> None:
        run_id = window_run_id(start_us, self._token)
        directory = window_dir(self._spool_root, run_id)
        articles = read_spools(directory, ARTICLES)
        alerts = read_spools(directory, ALERTS)
        rejected = read_spools(directory, REJECTED)
        reports = read_spools(directory, REPORTS)
        layout = OutputLayout(self._root, run_id)
        files = [
            *stage_all(layout, ARTICLE_FILES, articles),
            *stage_all(layout, ALERT_FILES, alerts),
            *stage_all(layout, REJECTED_FILES, rejected),
        ]
        totals = self._totals
        for progress in reports:
            if isinstance(progress, PartitionProgress):
                totals.high[(progress.source, progress.topic, progress.partition)] = (
                    progress.high_watermark
                )
        # Alerts went to Kafka as they were raised (``connectors/kafka/alerts.py``).
        manifest = manifest_of(
            run_id, files, reports, committed=totals.committed, alerts_delivered=True
        )
        if manifest.files or manifest.offsets or manifest.feeds:
            commit(self._root, manifest, self._targets)
            for offset in manifest.offsets:
                totals.committed[(offset.source, offset.topic, offset.partition)] = offset.offset
            totals.windows += 1
            self._windows.inc()
        delete_window(self._spool_root, run_id)
        read, usable, source_rejected = _source_counts(reports)
        totals.read += read
        totals.stored += len(articles)
        totals.near_duplicates += sum(1 for a in articles if a.is_duplicate)
        totals.exact_duplicates += max(
            0, usable - (len(rejected) - source_rejected) - len(articles)
        )
        totals.rejected += len(rejected)
        totals.alerts += len(alerts)
        self._committed[ARTICLES].inc(len(articles))
        self._committed[ALERTS].inc(len(alerts))
        self._committed[REJECTED].inc(len(rejected))

    def _print_status(self, tick: Tick, final: bool) -> None:
        if not self._status:
            return
        totals = self._totals
        pending_read = pending_alerts = pending_stored = 0
        high = dict(totals.high)
        for window in self._open:
            directory = window_dir(self._spool_root, window_run_id(window, self._token))
            reports = read_spools(directory, REPORTS)
            pending_read += _source_counts(reports)[0]
            pending_alerts += count_spooled(directory, ALERTS)
            pending_stored += count_spooled(directory, ARTICLES)
            for progress in reports:
                if isinstance(progress, PartitionProgress):
                    key = (progress.source, progress.topic, progress.partition)
                    high[key] = progress.high_watermark
        lags = []
        for key in sorted(totals.committed):
            source, _, partition = key
            top = high.get(key)
            lag = "?" if top is None else str(max(0, top - totals.committed[key]))
            lags.append(f"{source}/{partition}={lag}")
        when = datetime.fromtimestamp(tick.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = (
            f"newswatch stream {when}{' (stopped)' if final else ''}"
            f"  in {totals.read + pending_read}"
            f"  stored {totals.stored} (+{pending_stored} pending)"
            f"  duplicates {totals.exact_duplicates + totals.near_duplicates}"
            f" ({totals.exact_duplicates} exact, {totals.near_duplicates} near)"
            f"  rejected {totals.rejected}"
            f"  alerts {totals.alerts + pending_alerts}"
            f"  windows {totals.windows}"
            f"  lag {' '.join(lags) if lags else '-'}"
        )
        print(line, file=sys.stderr, flush=True)


class CommitWindows(beam.PTransform):
    """Ticks in; commits each window once a later tick shows it has ended. Outputs nothing.

    ``starts`` are the offsets the stream started from (what the group had committed);
    with ``status``, a one-line status goes to stderr every ``status_interval_s``.
    """

    def __init__(
        self,
        *,
        root: str,
        spool_root: str,
        token: str,
        window_s: float,
        targets: CommitTargets,
        starts: Mapping[PartitionKey, int] | None = None,
        status_interval_s: float = 30.0,
        status: bool = True,
    ) -> None:
        super().__init__()
        self._fn_args = (
            root,
            spool_root,
            token,
            window_s,
            targets,
            dict(starts or {}),
            status_interval_s,
            status,
        )

    def expand(self, ticks: beam.PCollection) -> beam.PCollection:
        return ticks | "CommitEndedWindows" >> beam.ParDo(_CommitWindowsFn(*self._fn_args))
