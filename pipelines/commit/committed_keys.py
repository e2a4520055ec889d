"""What the dataset has committed, as an on-disk index the streaming stages look keys up in.

The batch stages join with the committed dataset (``connectors/dataset/write.py``); a stream
cannot join an unbounded input with a bounded read. Its stages look keys up instead:

* ``CommittedKeys``: the keys of every committed file of one kind (the ``article_id`` of
  every article, the (topic, cluster_id) of every alert) in a SQLite file on the worker's
  local disk. It is a cache of the dataset, read through Beam filesystems and kept in step
  by ``sync``, which reads only the files committed since the last sync; the files it has
  read are recorded with their keys in one transaction. Memory is SQLite's page cache
  (``CACHE_KIB``), whatever the size of the dataset.
* ``SeenKeys``: that index plus the keys the stream passed since the last sync, which the
  index does not hold until their window commits. A sync every ``refresh_s`` absorbs the
  committed windows and forgets those keys, so memory is bounded by what passes in one
  refresh interval, and the guarantee is the batch one: against everything ever committed.

The index is rebuilt from the dataset when it is missing, unreadable, of another layout
version, or when a file it read is gone from the dataset (deleted by a retention job, say):
it never answers for keys the dataset no longer has.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import ALERTS, ARTICLES, OutputLayout
from newswatch.connectors.dataset.read import alert_keys_in, article_ids_in

__all__ = [
    "ALERT_KEYS",
    "ARTICLE_IDS",
    "CommittedKeys",
    "KeyKind",
    "SeenKeys",
    "index_dir_for",
]

log = logging.getLogger(__name__)

LAYOUT_VERSION = 1
CACHE_KIB = 16 * 1024


@dataclass(frozen=True)
class KeyKind:
    """One kind of committed key: which dataset files hold it and how to read them."""

    name: str  # the index file is <name>.sqlite
    folder: str  # under the dataset root: articles, alerts
    suffix: str
    read: Callable[[bytes], list[str]]  # a whole file's bytes -> its keys


def _article_ids(data: bytes) -> list[str]:
    return article_ids_in(io.BytesIO(data))


def _alert_keys(data: bytes) -> list[str]:
    return list(alert_keys_in(io.BytesIO(data)))


ARTICLE_IDS = KeyKind("article_ids", ARTICLES, "parquet", _article_ids)
ALERT_KEYS = KeyKind("alert_keys", ALERTS, "jsonl", _alert_keys)


def index_dir_for(root: str) -> str:
    """Where a worker keeps its indexes of ``root``: in the dataset's ``_state`` when it is on
    this machine's disk, else in a temporary folder named after the root."""
    if filesystem.is_local(root):
        return OutputLayout(root).state("index")
    name = hashlib.sha256(root.encode("utf-8")).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), "newswatch-index", name)


class CommittedKeys:
    """The keys of every committed file of one kind under ``root``, on disk."""

    def __init__(self, root: str, kind: KeyKind, index_dir: str | None = None) -> None:
        self._root = root.rstrip("/")
        self._kind = kind
        directory = index_dir or index_dir_for(root)
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"{kind.name}.sqlite")
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as err:
            log.warning("index %s unreadable (%s): rebuilding it from the dataset", self.path, err)
            self._remove_files()
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        # Beam may call a DoFn's setup and process on different threads, never at once.
        db = sqlite3.connect(self.path, isolation_level=None, timeout=60, check_same_thread=False)
        try:
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            if db.execute("PRAGMA user_version").fetchone()[0] != LAYOUT_VERSION:
                db.execute("DROP TABLE IF EXISTS keys")
                db.execute("DROP TABLE IF EXISTS files")
                db.execute("CREATE TABLE keys (key TEXT PRIMARY KEY) WITHOUT ROWID")
                db.execute("CREATE TABLE files (path TEXT PRIMARY KEY) WITHOUT ROWID")
                db.execute(f"PRAGMA user_version={LAYOUT_VERSION}")
            db.execute("SELECT count(*) FROM files").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _remove_files(self) -> None:
        for suffix in ("", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path + suffix)

    def close(self) -> None:
        self._db.close()

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._db.execute("SELECT 1 FROM keys WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM keys").fetchone()[0])

    def files_read(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM files").fetchone()[0])

    def sync(self) -> int:
        """Reads the files committed since the last sync; returns how many it read."""
        pattern = OutputLayout(self._root).committed_files(self._kind.folder, self._kind.suffix)
        committed = {self._relative(path): path for path in filesystem.list_files(pattern)}
        read = {row[0] for row in self._db.execute("SELECT path FROM files")}
        if not read.issubset(committed):
            gone = sorted(read - committed.keys())
            log.warning(
                "%d files the %s index read are gone from the dataset (%s...): rebuilding it",
                len(gone),
                self._kind.name,
                gone[0],
            )
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM keys")
            self._db.execute("DELETE FROM files")
            self._db.execute("COMMIT")
            read = set()
        new = sorted(set(committed) - read)
        if new:
            self._absorb(new, committed)
        return len(new)

    def _absorb(self, files: list[str], paths: dict[str, str]) -> None:
        """The files' keys, and the files as read, in one transaction.

        Ids are random, so keys inserted as they are read would each touch another page of
        the index: a first build over millions of keys would rewrite the whole index again
        and again. They are gathered in a temporary table first, then inserted in key
        order, which SQLite sorts on disk with bounded memory.
        """
        self._db.execute("BEGIN")
        try:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS arriving (key TEXT)")
            self._db.execute("DELETE FROM arriving")
            for relative in files:
                keys = self._kind.read(filesystem.read_file(paths[relative]))
                self._db.executemany("INSERT INTO arriving VALUES (?)", ((k,) for k in keys))
            self._db.execute(
                "INSERT OR IGNORE INTO keys SELECT DISTINCT key FROM arriving ORDER BY key"
            )
            self._db.executemany("INSERT INTO files VALUES (?)", ((f,) for f in files))
            self._db.execute("DELETE FROM arriving")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _relative(self, path: str) -> str:
        # Relative to the root, so a dataset moved with its _state keeps its index.
        if path.startswith(self._root):
            return path[len(self._root) :].lstrip("/")
        return path


class SeenKeys:
    """Keys committed (``CommittedKeys``) or passed by this stream since the last sync."""

    def __init__(
        self,
        committed: CommittedKeys,
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._committed = committed
        self._refresh_s = refresh_s
        self._clock = clock
        self._recent: set[str] = set()
        committed.sync()
        self._synced_at = clock()

    def first_time(self, key: str) -> bool:
        """True, and the key is remembered, unless it was committed or passed before."""
        if self._clock() - self._synced_at >= self._refresh_s:
            self.sync()
        if key in self._recent or key in self._committed:
            return False
        self._recent.add(key)
        return True

    @property
    def recent(self) -> int:
        """How many keys are held in memory: passed, not yet found committed."""
        return len(self._recent)

    def sync(self) -> None:
        """Reads what was committed since, and forgets the passed keys it holds."""
        self._committed.sync()
        self._recent = {key for key in self._recent if key not in self._committed}
        self._synced_at = self._clock()

    def close(self) -> None:
        self._committed.close()
