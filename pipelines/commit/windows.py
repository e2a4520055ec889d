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
raised (``connectors/kafka/alerts.py``): the manifest records them as delivered. The
commit queues the window's alerts for the delivery sinks (notify, webhook, feed, digest)
in the outbox, which the stream's sender thread drains (``pipelines/delivery/loop.py``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.dataset.layout import ALERTS, ARTICLES, DATASETS, REJECTED, OutputLayout
from newswatch.connectors.dataset.write import (
    ALERT_FILES,
    ARTICLE_FILES,
    REJECTED_FILES,
    stage_all,
)
from newswatch.connectors.kafka.poll import PartitionProgress
from newswatch.connectors.stream.spool import (
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
from newswatch.pipelines.commit.stream_status import (
    REPORTS,
    StreamTotals,
    report_status,
    source_counts,
    stream_status,
)

__all__ = ["REPORTS", "CommitWindows", "WindowCommitSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowCommitSettings:
    """What the window committer needs: where to write, how windows are named and sized,
    where commits go, the offsets the stream started from, and its status line."""

    root: str
    spool_root: str
    token: str  # names this process's windows: <window start>-<token>
    window_s: float
    targets: CommitTargets
    starts: tuple[tuple[PartitionKey, int], ...] = ()  # what the group had committed
    status_interval_s: float = 30.0
    status: bool = True  # a status record every status_interval_s (``stream_status.py``)


class _CommitWindowsFn(beam.DoFn):
    def __init__(self, settings: WindowCommitSettings) -> None:
        self._root = settings.root
        self._spool_root = settings.spool_root
        self._token = settings.token
        self._size_us = int(round(settings.window_s * 1e6))
        self._targets = settings.targets
        self._starts = dict(settings.starts)
        self._status_interval_s = settings.status_interval_s
        self._status = settings.status
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
        read, usable, source_rejected = source_counts(reports)
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
        pending = [
            window_dir(self._spool_root, window_run_id(window, self._token))
            for window in self._open
        ]
        report_status(stream_status(self._totals, pending, tick.at, final))


class CommitWindows(beam.PTransform):
    """Ticks in; commits each window once a later tick shows it has ended. Outputs nothing."""

    def __init__(self, settings: WindowCommitSettings) -> None:
        super().__init__()
        self._settings = settings

    def expand(self, ticks: beam.PCollection) -> beam.PCollection:
        return ticks | "CommitEndedWindows" >> beam.ParDo(_CommitWindowsFn(self._settings))
