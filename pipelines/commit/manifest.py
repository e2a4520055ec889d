"""Committing a run: outputs into the dataset first, then alerts out, then source positions.

A run writes only into ``<out>/_staging/<run>/``. When all its outputs are written, one
commit step records a manifest (``<out>/_state/commits/<run>.json``: every staged file and
its destination, the Kafka offsets and feed validators to save) and applies it:

1. move the staged files into the dataset (each move atomic on a local disk);
2. send the run's alerts to the Kafka alert sinks (acks=all, flushed), then mark that
   in the manifest so a retry does not send them again;
3. queue the run's alerts in the delivery outbox (``pipelines/delivery/``: notify,
   webhook, feed, digest sinks): a local durable write, skipped for a run already queued,
   which sends nothing; the sender drains the outbox after the commit, so a receiver that
   is down never holds up or undoes a commit;
4. commit the Kafka source offsets, save the feed validators;
5. delete the manifest and the staging folder.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import (
    ALERTS,
    ARTICLES,
    REJECTED,
    OutputLayout,
    StagedFile,
)
from newswatch.connectors.kafka.connection import (
    KafkaConnection,
    PartitionReport,
    commit_offsets,
    produce_messages,
)
from newswatch.connectors.rss.read import FeedReport
from newswatch.pipelines.commit.feed_state import FeedCheckpoint, checkpoint_of, save_feed_state
from newswatch.pipelines.control.settings import Config, KafkaAlerts
from newswatch.pipelines.delivery.committed import queue_committed
from newswatch.pipelines.delivery.sinks import DeliverySink

log = logging.getLogger(__name__)

COMMITS = "commits"
SourceReport: TypeAlias = FeedReport | PartitionReport
PartitionKey = tuple[str, str, int]  # (source, topic, partition)


def new_run_id(now: datetime) -> str:
    """Sortable by start time, unique across hosts."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


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
    delivery: tuple[DeliverySink, ...] = ()  # queued at commit, sent after it

    @classmethod
    def from_config(cls, config: Config) -> CommitTargets:
        return cls(
            kafka_sources={s.name: KafkaConnection.from_config(s) for s in config.kafka_sources},
            kafka_alerts=tuple(
                KafkaAlertTarget(KafkaConnection.from_config(sink), sink.topic)
                for sink in config.alerts
                if isinstance(sink, KafkaAlerts)
            ),
            delivery=config.delivery_sinks,
        )


@dataclass(frozen=True)
class Manifest:
    run_id: str
    files: tuple[StagedFile, ...]
    feeds: tuple[FeedCheckpoint, ...] = ()
    offsets: tuple[OffsetCommit, ...] = ()
    alerts_delivered: bool = False
    # Files that replace the dataset file at their ``final`` path, renamed over it, so a
    # reader finds the old or the new one there, never both or neither (commit/rewrite.py).
    replaces: tuple[StagedFile, ...] = ()

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
            replaces=tuple(StagedFile(**f) for f in data.get("replaces", ())),
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
    return OutputLayout(root).state(COMMITS, f"{run_id}.json")


def _final_path(staged: StagedFile) -> str:
    return staged.final


def manifest_of(
    run_id: str,
    files: Iterable[StagedFile],
    reports: Iterable[Any],
    committed: Mapping[PartitionKey, int] | None = None,
    alerts_delivered: bool = False,
) -> Manifest:
    """The manifest of a run or a stream window from its staged files and source reports.

    Feed validators: the last report of each feed that answered. Offsets: per partition,
    the highest ``next_offset`` read, when past where the partition stood (the report's
    ``start`` and, for a stream, the offset ``committed`` by an earlier window).
    """
    reports = list(reports)
    feeds = {r.source: r for r in reports if isinstance(r, FeedReport)}
    highest: dict[tuple[str, str, str, int], int] = {}
    for report in reports:
        if isinstance(report, PartitionReport) and report.next_offset > report.start:
            key = (report.source, report.group_id, report.topic, report.partition)
            highest[key] = max(highest.get(key, 0), report.next_offset)
    before = committed or {}
    return Manifest(
        run_id=run_id,
        files=tuple(sorted(files, key=_final_path)),
        feeds=tuple(c for _, r in sorted(feeds.items()) for c in checkpoint_of(r)),
        offsets=tuple(
            OffsetCommit(source, group_id, topic, partition, offset)
            for (source, group_id, topic, partition), offset in sorted(highest.items())
            if offset > before.get((source, topic, partition), -1)
        ),
        alerts_delivered=alerts_delivered,
    )


def commit(root: str, manifest: Manifest, targets: CommitTargets) -> CommitResult:
    """Record the manifest, then apply it. Safe to repeat."""
    filesystem.replace_file(manifest_path(root, manifest.run_id), manifest.to_json().encode())
    return apply_manifest(root, manifest, targets)


def apply_manifest(root: str, manifest: Manifest, targets: CommitTargets) -> CommitResult:
    # A replacement moves exactly as a new file does: the rename over its old file is the
    # one step that changes what readers see, and a moved file is no longer in staging.
    for staged in (*manifest.files, *manifest.replaces):
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
    queue_committed(
        root,
        manifest.run_id,
        [f.final for f in manifest.files if f.kind == ALERTS],
        [f.final for f in manifest.files if f.kind == ARTICLES],
        targets.delivery,
    )
    _commit_offsets(manifest.offsets, targets)
    if manifest.feeds:
        save_feed_state(root, manifest.feeds)
    filesystem.delete_tree(OutputLayout(root).staging_of(manifest.run_id))
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


def recover(root: str, targets: CommitTargets) -> list[CommitResult]:
    """Finish commits a killed run left half-done; drop staging of runs that never committed.

    Call with the run lock held, before a new run starts.
    """
    results = []
    layout = OutputLayout(root)
    for path in filesystem.list_files(layout.state(COMMITS, "*.json")):
        manifest = Manifest.from_json(filesystem.read_file(path).decode("utf-8"))
        log.warning("completing the interrupted commit of run %s", manifest.run_id)
        results.append(apply_manifest(root, manifest, targets))
    for run_id in filesystem.list_dirs(layout.staging_root):
        log.warning("discarding uncommitted output of run %s", run_id)
        filesystem.delete_tree(layout.staging_of(run_id))
    return results
