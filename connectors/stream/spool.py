"""Window spools: a stream's output of one fixed window, kept on local disk until it commits.

Each sink of a stream appends, at the end of every bundle, what it received to one spool
file per window: ``<spool root>/<window run id>/spool/<kind>.<sink>.spool``. When the
window has ended, the window committer (``pipelines/commit/windows.py``) reads the spools,
writes the dataset files in staging exactly as a batch run does, and commits them. A spool
is scratch: a window that never commits is discarded with its staging folder and read
again from the sources.

    items | "SpoolArticles" >> SpoolWindows(root=spool_root, token=token, kind="articles")
    read_spools(window_dir(spool_root, window_run_id(start_us, token)), "articles")

Frames are ``>II`` (payload bytes, records) then a pickled list, so counting the records of
an open window (the status line) reads only the headers.
"""

from __future__ import annotations

import os
import pickle
import shutil
import struct
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam

__all__ = [
    "SpoolWindows",
    "count_spooled",
    "delete_window",
    "read_spools",
    "window_dir",
    "window_run_id",
    "window_start_us",
]

_HEADER = struct.Struct(">II")
_SUFFIX = ".spool"


def window_start_us(at_us: int, size_us: int) -> int:
    """Start of the fixed window holding ``at_us`` (what Beam's FixedWindows computes)."""
    return at_us - at_us % size_us


def window_run_id(start_us: int, token: str) -> str:
    """The run id of one window of one stream: sortable by time, unique per stream process."""
    started = datetime.fromtimestamp(start_us / 1e6, UTC)
    return f"{started:%Y%m%dT%H%M%S}{start_us % 1_000_000 // 1000:03d}Z-{token}"


def window_dir(spool_root: str, run_id: str) -> str:
    return os.path.join(spool_root, run_id, "spool")


def _spool_files(directory: str, kind: str) -> list[str]:
    if not os.path.isdir(directory):
        return []
    prefix = f"{kind}."
    return sorted(
        os.path.join(directory, name)
        for name in os.listdir(directory)
        if name.startswith(prefix) and name.endswith(_SUFFIX)
    )


def append_records(path: str, records: Sequence[Any]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    payload = pickle.dumps(list(records), protocol=pickle.HIGHEST_PROTOCOL)
    with open(path, "ab") as handle:
        handle.write(_HEADER.pack(len(payload), len(records)) + payload)


def _frames(path: str, with_payload: bool) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        while header := handle.read(_HEADER.size):
            size, count = _HEADER.unpack(header)
            if with_payload:
                yield count, handle.read(size)
            else:
                handle.seek(size, os.SEEK_CUR)
                yield count, b""


def read_spools(directory: str, kind: str) -> list[Any]:
    """Every record spooled for ``kind`` in one window folder, in the order written."""
    records: list[Any] = []
    for path in _spool_files(directory, kind):
        for _, payload in _frames(path, with_payload=True):
            records.extend(pickle.loads(payload))
    return records


def count_spooled(directory: str, kind: str) -> int:
    return sum(count for path in _spool_files(directory, kind) for count, _ in _frames(path, False))


def delete_window(spool_root: str, run_id: str) -> None:
    """Remove a window's folder under the spool root (its spools, nothing else is left there)."""
    shutil.rmtree(os.path.join(spool_root, run_id), ignore_errors=True)


class _SpoolFn(beam.DoFn):
    """Buffers a bundle's records by window; appends them to the window's spool at its end."""

    def __init__(self, spool_root: str, token: str, kind: str, sink: str) -> None:
        self._root = spool_root
        self._token = token
        self._kind = kind
        self._sink = sink
        self._buffers: dict[int, list[Any]] = {}

    def start_bundle(self) -> None:
        self._buffers = {}

    def process(self, record: Any, window: Any = beam.DoFn.WindowParam) -> None:
        self._buffers.setdefault(window.start.micros, []).append(record)

    def finish_bundle(self) -> None:
        for start_us, records in sorted(self._buffers.items()):
            directory = window_dir(self._root, window_run_id(start_us, self._token))
            append_records(os.path.join(directory, f"{self._kind}.{self._sink}{_SUFFIX}"), records)
        self._buffers = {}


class SpoolWindows(beam.PTransform):
    """Appends each record to the spool of its fixed window (a sink: outputs nothing).

    ``sink`` names this writer among the writers of the same ``kind``.
    """

    def __init__(self, *, spool_root: str, token: str, kind: str, sink: str = "main") -> None:
        super().__init__()
        self._args = (spool_root, token, kind, sink)

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return records | "Append" >> beam.ParDo(_SpoolFn(*self._args))
