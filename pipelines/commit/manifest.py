"""Committing a run: outputs into the dataset first, then alerts out, then source positions.

A run writes only into ``<out>/_staging/<run>/``. When all its outputs are written, one
commit step records a manifest (``<out>/_state/commits/<run>.json``: every staged file and
its destination, the Kafka offsets and feed validators to save) and applies it:

1. move the staged files into the dataset (each move atomic on a local disk);
2. send the run's alerts to the Kafka alert sinks (acks=all, flushed), then mark that
   in the manifest so a retry does not send them again;
3. commit the Kafka source offsets, save the feed validators;
4. delete the manifest and the staging folder.

If the process dies part-way, the next run applies the manifest again before it starts
(every step is safe to repeat); a staging folder without a manifest belongs to a run that
never got to commit, and is deleted: none of its source positions were saved, so its
inputs are read again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

import apache_beam as beam
from apache_beam.metrics import Metrics

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.write import ALERTS, ARTICLES, REJECTED, OutputLayout, StagedFile
from newswatch.connectors.kafka.connection import (
    KafkaConnection,
    PartitionReport,
    commit_offsets,
    produce_messages,
)
from newswatch.connectors.rss.read import FeedReport

log = logging.getLogger(__name__)

FEED_STATE = "feeds.json"
COMMITS = "commits"


def new_run_id(now: datetime) -> str:
    """Sortable by start time, unique across hosts."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class FeedCheckpoint:
    """Conditional-GET validators of one feed, saved when the run that read it commits.

    Kept by source name, with the URL they belong to (passwords masked): a source whose
    URL changed starts without validators.
    """

    source: str
    url: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class OffsetCommit:
    source: str
    group_id: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class KafkaAlertTarget:
    connection: KafkaConnection
    topic: str


@dataclass(frozen=True)
class CommitTargets:
    """Where a commit sends alerts and commits offsets, by Kafka source name."""

    kafka_sources: Mapping[str, KafkaConnection] = field(default_factory=dict)
    kafka_alerts: tuple[KafkaAlertTarget, ...] = ()


@dataclass(frozen=True)
class Manifest:
    run_id: str
    files: tuple[StagedFile, ...]
    feeds: tuple[FeedCheckpoint, ...] = ()
    offsets: tuple[OffsetCommit, ...] = ()
    alerts_delivered: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        return cls(
            run_id=data["run_id"],
            files=tuple(StagedFile(**f) for f in data["files"]),
            feeds=tuple(FeedCheckpoint(**f) for f in data["feeds"]),
            offsets=tuple(OffsetCommit(**o) for o in data["offsets"]),
            alerts_delivered=data["alerts_delivered"],
        )


@dataclass(frozen=True)
class CommitResult:
    run_id: str
    articles: int
    alerts: int
    rejected: int
    files: int
    alerts_sent: int = 0
    offsets: int = 0


def manifest_path(root: str, run_id: str) -> str:
    return filesystem.join(root, "_state", COMMITS, f"{run_id}.json")


def commit(root: str, manifest: Manifest, targets: CommitTargets) -> CommitResult:
    """Record the manifest, then apply it. Safe to repeat."""
    filesystem.replace_file(manifest_path(root, manifest.run_id), manifest.to_json().encode())
    return apply_manifest(root, manifest, targets)


def apply_manifest(root: str, manifest: Manifest, targets: CommitTargets) -> CommitResult:
    for staged in manifest.files:
        if filesystem.exists(staged.staged):
            filesystem.move(staged.staged, staged.final)
        elif not filesystem.exists(staged.final):
            raise RuntimeError(
                f"run {manifest.run_id}: staged file {staged.staged} vanished before commit"
            )
    sent = 0
    if not manifest.alerts_delivered and targets.kafka_alerts:
        sent = _send_alerts(manifest, targets.kafka_alerts)
        manifest = dataclasses.replace(manifest, alerts_delivered=True)
        filesystem.replace_file(manifest_path(root, manifest.run_id), manifest.to_json().encode())
    _commit_offsets(manifest.offsets, targets)
    if manifest.feeds:
        save_feed_state(root, manifest.feeds)
    filesystem.delete_tree(filesystem.join(root, "_staging", manifest.run_id))
    filesystem.FileSystems.delete([manifest_path(root, manifest.run_id)])

    def count(kind: str) -> int:
        return sum(f.records for f in manifest.files if f.kind == kind)

    return CommitResult(
        run_id=manifest.run_id,
        articles=count(ARTICLES),
        alerts=count(ALERTS),
        rejected=count(REJECTED),
        files=len(manifest.files),
        alerts_sent=sent,
        offsets=len(manifest.offsets),
    )


def _send_alerts(manifest: Manifest, sinks: Sequence[KafkaAlertTarget]) -> int:
    """Every alert of the run to every Kafka alert sink; key = topic id, value = the alert JSON."""
    messages = []
    for staged in manifest.files:
        if staged.kind != ALERTS:
            continue
        for line in filesystem.read_file(staged.final).decode("utf-8").splitlines():
            if line.strip():
                messages.append((json.loads(line)["topic"].encode("utf-8"), line.encode("utf-8")))
    for sink in sinks:
        produce_messages(sink.connection, sink.topic, messages)
    return len(messages)


def _commit_offsets(offsets: Sequence[OffsetCommit], targets: CommitTargets) -> None:
    groups: dict[tuple[str, str], list[OffsetCommit]] = {}
    for offset in offsets:
        groups.setdefault((offset.source, offset.group_id), []).append(offset)
    for (source, group_id), items in sorted(groups.items()):
        connection = targets.kafka_sources.get(source)
        if connection is None:
            # The source left the config since the run: its data is stored, and a later
            # run that reads it again drops every article as already seen.
            log.warning("source %s is no longer configured; its offsets were not committed", source)
            continue
        commit_offsets(connection, group_id, [(o.topic, o.partition, o.offset) for o in items])


def load_feed_state(root: str) -> dict[str, FeedCheckpoint]:
    path = filesystem.join(root, "_state", FEED_STATE)
    if not filesystem.exists(path):
        return {}
    data = json.loads(filesystem.read_file(path))
    return {
        source: FeedCheckpoint(source, v["url"], v.get("etag"), v.get("last_modified"))
        for source, v in data.items()
    }


def save_feed_state(root: str, checkpoints: Iterable[FeedCheckpoint]) -> None:
    state = load_feed_state(root)
    for checkpoint in checkpoints:
        state[checkpoint.source] = checkpoint
    data = {
        source: {"url": c.url, "etag": c.etag, "last_modified": c.last_modified}
        for source, c in sorted(state.items())
    }
    path = filesystem.join(root, "_state", FEED_STATE)
    filesystem.replace_file(path, json.dumps(data, indent=1, sort_keys=True).encode())


def recover(root: str, targets: CommitTargets) -> list[CommitResult]:
    """Finish commits a killed run left half-done; drop staging of runs that never committed.

    Call with the run lock held, before a new run starts.
    """
    results = []
    for path in filesystem.list_files(filesystem.join(root, "_state", COMMITS, "*.json")):
        manifest = Manifest.from_json(filesystem.read_file(path).decode("utf-8"))
        log.warning("completing the interrupted commit of run %s", manifest.run_id)
        results.append(apply_manifest(root, manifest, targets))
    for run_id in filesystem.list_dirs(filesystem.join(root, "_staging")):
        log.warning("discarding uncommitted output of run %s", run_id)
        filesystem.delete_tree(filesystem.join(root, "_staging", run_id))
    return results


SourceReport: TypeAlias = FeedReport | PartitionReport


class _CommitFn(beam.DoFn):
    def __init__(self, layout: OutputLayout, targets: CommitTargets) -> None:
        self._layout = layout
        self._targets = targets
        self._stored = {
            kind: Metrics.counter(self.__class__, f"{kind}_committed")
            for kind in (ARTICLES, ALERTS, REJECTED)
        }

    def process(self, items: Sequence[StagedFile | SourceReport]) -> Iterator[CommitResult]:
        files = tuple(sorted((i for i in items if isinstance(i, StagedFile)), key=_file_order))
        feeds = sorted((i for i in items if isinstance(i, FeedReport)), key=_feed_order)
        partitions = sorted(
            (i for i in items if isinstance(i, PartitionReport)), key=_partition_order
        )
        manifest = Manifest(
            run_id=self._layout.run_id,
            files=files,
            feeds=tuple(c for r in feeds for c in checkpoint_of(r)),
            offsets=tuple(
                OffsetCommit(p.source, p.group_id, p.topic, p.partition, p.next_offset)
                for p in partitions
                if p.next_offset > p.start
            ),
        )
        result = commit(self._layout.root, manifest, self._targets)
        write_run_report(self._layout, result, feeds, partitions)
        for kind, counter in self._stored.items():
            counter.inc(getattr(result, kind))
        yield result


def _file_order(staged: StagedFile) -> str:
    return staged.final


def _feed_order(report: FeedReport) -> str:
    return report.source


def _partition_order(report: PartitionReport) -> tuple[str, str, int]:
    return report.source, report.topic, report.partition


def checkpoint_of(report: FeedReport) -> Iterator[FeedCheckpoint]:
    """The validators to keep from a feed report: only feeds that answered."""
    if report.status in ("ok", "not_modified"):
        yield FeedCheckpoint(report.source, report.url, report.etag, report.last_modified)


def run_report_path(root: str, run_id: str) -> str:
    return filesystem.join(root, "_state", "runs", f"{run_id}.json")


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
        return (
            items
            | "Gather" >> beam.combiners.ToList()
            | "Commit" >> beam.ParDo(_CommitFn(self._layout, self._targets))
        )
