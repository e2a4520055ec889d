"""What the dataset has committed, read into memory for the streaming stages, and kept fresh.

The batch stages join with the committed dataset (``connectors/dataset.py``); a stream
cannot join an unbounded input with a bounded read, so its stages hold a snapshot of the
same state instead, read once per worker in ``setup`` and again every ``refresh_s`` on a
background thread:

* ``StoredIds``: the ``article_id`` column of every committed article, as one sorted
  array of 16-byte ids (16 bytes an article; a million articles are 16 MB);
* the (topic, cluster_id) keys of every alert in the alert log.

What the stream itself has passed since is kept in a ``Recent`` set; an entry is dropped
once a snapshot read later holds it, so memory is bounded by what passed since the last
refresh (plus what is not committed yet), and the guarantee is the batch one: against
everything ever committed.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable, Container, Hashable, Iterable
from typing import Any, Generic, TypeVar

import numpy as np
import pyarrow.parquet as pq

from newswatch.connectors import filesystem
from newswatch.connectors.dataset import ALERTS, ARTICLES

__all__ = [
    "Recent",
    "Refreshing",
    "StoredIds",
    "read_alert_keys",
    "read_article_ids",
]

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class StoredIds:
    """A sorted array of article ids (32 hex characters each, stored as 16 bytes)."""

    def __init__(self, ids: Iterable[str]) -> None:
        raw = [bytes.fromhex(i) for i in ids]
        self._ids = np.unique(np.array(raw, dtype="S16")) if raw else np.array([], dtype="S16")

    def __len__(self) -> int:
        return int(self._ids.size)

    def __contains__(self, article_id: object) -> bool:
        if not isinstance(article_id, str) or not self._ids.size:
            return False
        key = np.array([bytes.fromhex(article_id)], dtype="S16")
        index = int(np.searchsorted(self._ids, key)[0])
        return index < self._ids.size and self._ids[index] == key[0]


def read_article_ids(root: str) -> StoredIds:
    """Every committed ``article_id`` under ``root``."""
    ids: list[str] = []
    for path in filesystem.list_files(filesystem.join(root, ARTICLES, "dt=*", "*.parquet")):
        table = pq.read_table(io.BytesIO(filesystem.read_file(path)), columns=["article_id"])
        ids.extend(table.column("article_id").to_pylist())
    return StoredIds(ids)


def read_alert_keys(root: str) -> frozenset[tuple[str, str]]:
    """(topic, cluster_id) of every alert in the alert log under ``root``."""
    keys = set()
    for path in filesystem.list_files(filesystem.join(root, ALERTS, "dt=*", "*.jsonl")):
        for line in filesystem.read_file(path).decode("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                keys.add((record["topic"], record["cluster_id"]))
    return frozenset(keys)


class Recent(Generic[K]):
    """Keys the stream passed that the last snapshot may not hold yet."""

    def __init__(self) -> None:
        self._keys: set[K] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: K) -> None:
        self._keys.add(key)

    def forget_held(self, snapshot: Container[Any]) -> None:
        """Drop the keys a fresh snapshot holds: they are committed, the snapshot answers."""
        self._keys = {k for k in self._keys if k not in snapshot}


S = TypeVar("S")


class Refreshing(Generic[S]):
    """A snapshot read by ``load`` now, and again on a thread every ``refresh_s`` seconds.

    ``current()`` returns the snapshot in use and, when a newer one has been read, swaps it
    in first and calls ``on_swap(new)`` (in the caller's thread).
    """

    def __init__(
        self,
        load: Callable[[], S],
        refresh_s: float,
        on_swap: Callable[[S], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._refresh_s = refresh_s
        self._on_swap = on_swap
        self._clock = clock
        self._snapshot = load()
        self._loaded_at = clock()
        self._fresh: S | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def current(self) -> S:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._fresh is not None:
            self._snapshot, self._fresh = self._fresh, None
            self._on_swap(self._snapshot)
        elif self._thread is None and self._clock() - self._loaded_at >= self._refresh_s:
            self._loaded_at = self._clock()
            self._thread = threading.Thread(
                target=self._reload, name="newswatch-snapshot", daemon=True
            )
            self._thread.start()
        return self._snapshot

    def _reload(self) -> None:
        try:
            self._fresh = self._load()
        except Exception as err:  # noqa: BLE001 - re-raised in the pipeline's thread
            self._error = err
        finally:
            self._thread = None
