"""Every path under the output root (``<out>``), named in one place.

    articles/dt=YYYY-MM-DD/part-<run>-<n>.parquet   the articles (schemas.ARTICLE_SCHEMA)
    alerts/dt=YYYY-MM-DD/alerts-<run>-<n>.jsonl     one alert per line (schemas/alert.schema.json)
    rejected/dt=YYYY-MM-DD/rejected-<run>-<n>.jsonl inputs that could not be stored, with reasons
    _staging/<run>/...                              files of a run not yet committed
    _state/commits/<run>.json                       manifests of commits in progress
    _state/runs/<run>.json                          run reports
    _state/reprocess/<run>.json                     reports of reprocess passes
    _state/feeds.json                               feed validators (ETag, Last-Modified)
    _state/run.lock                                 the run lock
    _state/index/                                   the stream's key indexes (local outputs)
    _state/subscribers/<group>.json                 `alerts subscribe --dir` positions

Writers only ever write under ``_staging/<run>/``; files become visible in the dataset when
the run commits (``pipelines/commit/``), so readers never see a partial run.

>>> layout = OutputLayout("/data", "20261130T080000Z-abc123")
>>> layout.staged_path(ARTICLES, "2026-11-30", layout.file_name(ARTICLES, 0, "parquet"))
'/data/_staging/20261130T080000Z-abc123/articles/dt=2026-11-30/part-20261130T080000Z-abc123-00000.parquet'
>>> layout.state("runs", "r.json")
'/data/_state/runs/r.json'
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "ALERTS",
    "ARTICLES",
    "DATASETS",
    "REJECTED",
    "RUN_REPORTS",
    "OutputLayout",
    "StagedFile",
    "partition_and_name",
]

ARTICLES = "articles"
ALERTS = "alerts"
REJECTED = "rejected"
DATASETS = (ARTICLES, ALERTS, REJECTED)
RUN_REPORTS = "runs"  # under _state

_STAGING = "_staging"
_STATE = "_state"


def _join(base: str, *parts: str) -> str:
    """Paths joined as Beam filesystems join them; Beam is imported only for a URL, so the
    layout can name local paths for tools that never load Beam (``newswatch sql``)."""
    if "://" not in base:
        return os.path.join(base, *parts)
    from newswatch.connectors import filesystem

    return filesystem.join(base, *parts)


def _file_prefix(kind: str) -> str:
    return "part" if kind == ARTICLES else kind


@dataclass(frozen=True)
class OutputLayout:
    """Where each file under ``root`` lives; ``run_id`` names one run's staged files."""

    root: str
    run_id: str = ""

    @property
    def staging_root(self) -> str:
        return _join(self.root, _STAGING)

    @property
    def staging_dir(self) -> str:
        return _join(self.root, _STAGING, self.run_id)

    def staging_of(self, run_id: str) -> str:
        return _join(self.root, _STAGING, run_id)

    def state(self, *parts: str) -> str:
        """A path under ``_state``: manifests, run reports, validators, lock, indexes."""
        return _join(self.root, _STATE, *parts)

    def dataset_dir(self, kind: str) -> str:
        return _join(self.root, kind)

    def committed_files(self, kind: str, suffix: str, day: str = "*") -> str:
        """The glob of committed files of one kind, in one ``dt=`` partition or all."""
        return _join(self.root, kind, f"dt={day}", f"*.{suffix}")

    def run_files(self, kind: str, suffix: str) -> str:
        """The glob of this run's committed files of one kind, in every ``dt=`` partition."""
        return _join(self.root, kind, "dt=*", f"{_file_prefix(kind)}-{self.run_id}-*.{suffix}")

    def file_name(self, kind: str, chunk: int, suffix: str) -> str:
        return f"{_file_prefix(kind)}-{self.run_id}-{chunk:05d}.{suffix}"

    def staged_path(self, kind: str, partition: str, name: str) -> str:
        return _join(self.staging_dir, kind, f"dt={partition}", name)

    def final_path(self, kind: str, partition: str, name: str) -> str:
        return _join(self.root, kind, f"dt={partition}", name)


def partition_and_name(path: str) -> tuple[str, str]:
    """The ``dt=`` day and the file name of a dataset file's path.

    >>> partition_and_name("/data/articles/dt=2026-11-30/part-r1-00000.parquet")
    ('2026-11-30', 'part-r1-00000.parquet')
    """
    folder, name = path.rstrip("/").rsplit("/", 2)[-2:]
    return folder.removeprefix("dt="), name


@dataclass(frozen=True)
class StagedFile:
    """A file written in staging, and the dataset path it moves to when the run commits."""

    kind: str
    staged: str
    final: str
    records: int
