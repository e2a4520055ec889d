"""Putting records into a dataset in ``tmp_path`` the way a run does: staged by the project's
writers (``stage_all``), then moved in by the commit protocol (``manifest_of`` + ``commit``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from newswatch.connectors.dataset.layout import OutputLayout
from newswatch.connectors.dataset.write import RecordFiles, stage_all
from newswatch.pipelines.commit.manifest import CommitResult, CommitTargets, commit, manifest_of

EARLIER_RUN = "20261129T080000Z-e0e0e0"


def commit_records(
    root: Path, files: RecordFiles, records: Iterable[Any], run_id: str = EARLIER_RUN
) -> CommitResult:
    """Commit ``records`` of one kind (``ARTICLE_FILES``, ``ALERT_FILES``, ...) under ``root``."""
    layout = OutputLayout(str(root), run_id)
    staged = list(stage_all(layout, files, records))
    return commit(str(root), manifest_of(run_id, staged, []), CommitTargets())
