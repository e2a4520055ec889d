"""Committing a reprocess pass: stored article files replaced in place, alerts added.

A pass of ``newswatch reprocess`` changes the ``entities`` and ``topics`` of articles
already in the dataset. Its commit keeps the promise of ``manifest.py`` (readers never
see part of a commit's files) and one more: a reader never sees an article twice or
misses one, at any instant, also when the process dies in the middle.

1. The pass writes, under ``<out>/_staging/<run>/``, one new file for each stored file
   whose entities or topics changed: the same name, the same rows in the same order,
   every other column as it was (``connectors/dataset/rewrite.py``; a row without its
   re-analysed article fails the pass). Its new alerts go there too.
2. One manifest (``<out>/_state/commits/<run>.json``, written whole by a rename) lists
   each replacement (its staged path and the dataset path it replaces) and the alert files.
3. Applying it renames each staged file over the file it replaces, and moves the alert
   files in. The rename is the only step that changes what readers see, and it removes
   the old file in the same step it puts the new one in place: on a local disk
   rename(2) swaps the directory entry atomically, so the path always names the old file
   or the new one, with the same articles either way. An object store renames by copy
   and delete; the copy overwrites the object atomically, and the staged copy deleted
   after it is never read. No old file is ever deleted on its own.
4. The alerts go to the Kafka alert sinks and that is recorded, as for a run; then the
   manifest and the staging folder are deleted.

Repeating is safe: a replacement no longer in staging has been renamed (that is the only
way it leaves staging), so it is skipped; one still in staging is renamed now (on an
object store, the same bytes copied again). A process killed before step 2 leaves only
staging, which the next ``run`` or ``reprocess`` (not a dry run) deletes: every stored
file is still the old one. Killed after it, the next ``run`` or ``reprocess`` applies the
manifest first (``recover()``), before it reads anything. The run lock keeps every other
writer away from the files a pass read, and the others only ever add files under new
names; two passes never share a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import ARTICLES, OutputLayout, StagedFile
from newswatch.pipelines.commit.manifest import CommitTargets, Manifest, commit
from newswatch.pipelines.core.topic_changes import TopicChanges
from newswatch.schemas import Alert

__all__ = ["CommitRewrite", "read_reprocess_report", "reprocess_report_path", "rewrite_manifest"]

REPROCESS_REPORTS = "reprocess"  # under _state
DRY_RUN_REPORT = "reprocess.json"  # under the pass's staging folder


def rewrite_manifest(run_id: str, staged: Sequence[StagedFile]) -> Manifest:
    """Article files replace the stored file at their ``final`` path; the rest are new."""
    replaces = sorted((s for s in staged if s.kind == ARTICLES), key=_final)
    files = sorted((s for s in staged if s.kind != ARTICLES), key=_final)
    return Manifest(run_id=run_id, files=tuple(files), replaces=tuple(replaces))


def _final(staged: StagedFile) -> str:
    return staged.final


def reprocess_report_path(layout: OutputLayout, dry_run: bool) -> str:
    """A committed pass's report is kept in ``_state/reprocess/``; a dry run's lives in its
    staging folder, which the command deletes once it has read it."""
    if dry_run:
        return filesystem.join(layout.staging_dir, DRY_RUN_REPORT)
    return layout.state(REPROCESS_REPORTS, f"{layout.run_id}.json")


def read_reprocess_report(layout: OutputLayout, dry_run: bool) -> dict[str, Any] | None:
    path = reprocess_report_path(layout, dry_run)
    if not filesystem.exists(path):
        return None
    return json.loads(filesystem.read_file(path))


class _CommitRewriteFn(beam.DoFn):
    def __init__(self, layout: OutputLayout, targets: CommitTargets, dry_run: bool) -> None:
        self._layout = layout
        self._targets = targets
        self._dry_run = dry_run

    def process(
        self, items: Sequence[StagedFile | TopicChanges | Alert]
    ) -> Iterator[dict[str, Any]]:
        staged = [i for i in items if isinstance(i, StagedFile)]
        changes = TopicChanges()
        for item in items:
            if isinstance(item, TopicChanges):
                changes.merge(item)
        manifest = rewrite_manifest(self._layout.run_id, staged)
        committed = {
            "files_rewritten": 0,
            "articles_rewritten": 0,
            # A dry run gets the alerts it would raise, not their files.
            "alerts": sum(1 for i in items if isinstance(i, Alert)),
            "alerts_sent": 0,
        }
        if not self._dry_run:
            result = commit(self._layout.root, manifest, self._targets)
            committed = {
                "files_rewritten": len(manifest.replaces),
                "articles_rewritten": sum(s.records for s in manifest.replaces),
                "alerts": result.alerts,
                "alerts_sent": result.alerts_sent,
            }
        report = {
            "run_id": self._layout.run_id,
            "dry_run": self._dry_run,
            "committed": committed,
            "topics": changes.to_dict(),
        }
        path = reprocess_report_path(self._layout, self._dry_run)
        filesystem.replace_file(path, json.dumps(report, indent=1, sort_keys=True).encode())
        yield report


class CommitRewrite(beam.PTransform):
    """Every StagedFile and the TopicChanges of a pass in; one commit and its report out.

    With ``dry_run`` nothing is committed (the pass stages nothing, and its alerts come in
    as Alerts, only to be counted) and the report goes to the pass's staging folder.
    """

    def __init__(self, layout: OutputLayout, targets: CommitTargets, dry_run: bool) -> None:
        super().__init__()
        self._layout = layout
        self._targets = targets
        self._dry_run = dry_run

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        return (
            items
            | "Gather" >> beam.combiners.ToList()
            | "Commit" >> beam.ParDo(_CommitRewriteFn(self._layout, self._targets, self._dry_run))
        )
