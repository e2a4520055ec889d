"""The commit step of a bounded run, as a transform: every staged file and source report of
the run in, one commit (``manifest.py``) and its run report out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors.dataset.layout import DATASETS, OutputLayout, StagedFile
from newswatch.connectors.kafka.connection import PartitionReport
from newswatch.connectors.rss.read import FeedReport
from newswatch.pipelines.commit.manifest import (
    CommitResult,
    CommitTargets,
    SourceReport,
    commit,
    manifest_of,
)
from newswatch.pipelines.commit.run_report import write_run_report

__all__ = ["CommitRun"]


class _CommitFn(beam.DoFn):
    def __init__(self, layout: OutputLayout, targets: CommitTargets) -> None:
        self._layout = layout
        self._targets = targets
        self._stored = {
            kind: Metrics.counter(self.__class__, f"{kind}_committed") for kind in DATASETS
        }

    def process(
        self, element: tuple[None, Iterable[StagedFile | SourceReport | None]]
    ) -> Iterator[CommitResult]:
        _, gathered = element
        items = [i for i in gathered if i is not None]  # the one None is the start marker
        files = [i for i in items if isinstance(i, StagedFile)]
        feeds = sorted((i for i in items if isinstance(i, FeedReport)), key=_feed_order)
        partitions = sorted(
            (i for i in items if isinstance(i, PartitionReport)), key=_partition_order
        )
        manifest = manifest_of(self._layout.run_id, files, [*feeds, *partitions])
        result = commit(self._layout.root, manifest, self._targets)
        write_run_report(self._layout, result, feeds, partitions)
        for kind, counter in self._stored.items():
            counter.inc(getattr(result, kind))
        yield result


def _feed_order(report: FeedReport) -> str:
    return report.source


def _partition_order(report: PartitionReport) -> tuple[str, str, int]:
    return report.source, report.topic, report.partition


class CommitRun(beam.PTransform):
    """Commits a run once all of its staged files and source reports are in.

    The input is every StagedFile the writers produced and every FeedReport and
    PartitionReport of the sources read; they all reach one commit step, which runs after
    the writers have finished.
    """

    def __init__(self, layout: OutputLayout, targets: CommitTargets) -> None:
        super().__init__()
        self._layout = layout
        self._targets = targets

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        # Gathered under one key, with a start marker so that the commit runs even when
        # nothing at all came in (a pass with nothing to read). Not ToList: its value for
        # an empty input comes through a side input, which Beam's DaskRunner computes as a
        # graph of its own from inside a task, outside the run's graph.
        start = items.pipeline | "Start" >> beam.Create([None])
        return (
            (start, items)
            | "WithStart" >> beam.Flatten()
            | "OneKey" >> beam.Map(under_one_key)
            | "Gather" >> beam.GroupByKey()
            | "Commit" >> beam.ParDo(_CommitFn(self._layout, self._targets))
        )


def under_one_key(item: Any) -> tuple[None, Any]:
    return None, item
