"""The run lock: one ``newswatch run`` at a time for each output folder.

Two runs over the same output (and so the same Kafka groups and feed validators) would
read the same inputs and commit them twice, and a starting run's recovery step deletes
the staging of a run that is still going. The lock is a small JSON file,
``<out>/_state/run.lock``: who holds it (host, pid, a random token), when it was taken
and when it expires. The holder pushes the expiry forward while it runs (every third of
the TTL) and deletes the file when it ends, whether the run worked or not. A lock whose
expiry has passed was left by a run that was killed; the next run takes it over, with a
warning. So is, at once, a lock whose holder ran on this same machine (same host name,
same boot) and whose process is gone.

    with RunLock("/var/lib/newswatch/data", ttl_s=1800):
        run(config, beam_args)  # LockHeld is raised instead if another run holds it

On a local disk (or NFS) every look at the lock file, and every change to it, happens
under an exclusive ``flock`` of ``run.lock.guard`` beside it, which the kernel drops when
its process dies; the lock file itself is created with ``O_CREAT | O_EXCL``. Of two runs
starting at once exactly one gets the lock, and of two runs finding an abandoned lock
exactly one takes it over. Object stores reached through Beam filesystems (gs://, s3://)
offer no create-if-absent there, so the lock is written, then read back after a pause
(``settle_s``): two runs whose starts fall within that pause can both see their own lock.
That exclusion is weaker; a scheduler that never overlaps runs (a Kubernetes CronJob with
``concurrencyPolicy: Forbid``, a systemd timer) is the first line of defence there.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows: no flock; O_EXCL alone decides there
    fcntl = None  # type: ignore[assignment]

from apache_beam.io.filesystems import FileSystems

from newswatch.connectors import filesystem

__all__ = ["LockHeld", "LockOwner", "RunLock", "lock_path"]

log = logging.getLogger(__name__)

# How long a run on an object store waits between writing the lock and reading it back.
REMOTE_SETTLE_S = 2.0
LOCK_FILE = "run.lock"


def lock_path(root: str) -> str:
    return filesystem.join(root, "_state", LOCK_FILE)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LockOwner:
    """What the lock file says: who holds it, since when, and until when."""

    host: str
    pid: int
    token: str
    acquired_at: datetime
    expires_at: datetime
    # The kernel's id of the current boot (Linux): a pid means something only with it.
    boot_id: str | None = None

    def to_json(self) -> bytes:
        data = asdict(self)
        data["acquired_at"] = self.acquired_at.isoformat()
        data["expires_at"] = self.expires_at.isoformat()
        return json.dumps(data, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> LockOwner:
        """The owner recorded in ``raw``; ValueError when it is not a lock file we wrote."""
        try:
            data = json.loads(raw)
            owner = cls(
                host=str(data["host"]),
                pid=int(data["pid"]),
                token=str(data["token"]),
                acquired_at=datetime.fromisoformat(data["acquired_at"]),
                expires_at=datetime.fromisoformat(data["expires_at"]),
                boot_id=str(data["boot_id"]) if data.get("boot_id") else None,
            )
        except (
            UnicodeDecodeError,
            json.JSONDecodeError,
            KeyError,
            TypeError,
            AttributeError,
        ) as err:
            raise ValueError(f"not a run lock: {err}") from None
        if owner.expires_at.tzinfo is None or owner.acquired_at.tzinfo is None:
            raise ValueError("not a run lock: times without a timezone")
        return owner

    def describe(self) -> str:
        return (
            f"held by {self.host} pid {self.pid}, "
            f"acquired at {self.acquired_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}, "
            f"expires at {self.expires_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        )


class LockHeld(RuntimeError):
    """Another run holds the lock; ``owner`` is None when its file could not be read."""

    def __init__(self, path: str, owner: LockOwner | None) -> None:
        self.path = path
        self.owner = owner
        who = owner.describe() if owner else "lock file unreadable, probably being written"
        super().__init__(f"another run holds the lock {path} ({who})")


@dataclass(frozen=True)
class _Found:
    """A lock file as read: its owner (None if unreadable) and when it was last written."""

    owner: LockOwner | None
    written_at: float

    def abandoned(self, now: datetime, ttl_s: float) -> str | None:
        """Why the holder is gone ("expired", "process gone"), or None while it may live."""
        if self.owner is None:
            # A file we cannot parse expires a TTL after it was last written: a run killed
            # between creating the file and writing it must not block every later run.
            return "expired" if self.written_at + ttl_s <= now.timestamp() else None
        if self.owner.expires_at <= now:
            return "expired"
        if _ran_here(self.owner) and not _process_exists(self.owner.pid):
            return "process gone"
        return None


def _ran_here(owner: LockOwner) -> bool:
    # The host name stands for the pid namespace: containers each have their own name
    # unless one is forced on them (two containers given the same --hostname and one
    # output volume would see each other's pids as gone).
    boot = _boot_id()
    return boot is not None and owner.boot_id == boot and owner.host == socket.gethostname()


def _process_exists(pid: int) -> bool:
    if pid <= 0:  # not a process id (0 and -1 would name process groups)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


class RunLock:
    """The run lock of the output folder ``root``; a context manager around one run."""

    def __init__(
        self,
        root: str,
        *,
        ttl_s: float,
        settle_s: float = REMOTE_SETTLE_S,
        heartbeat: bool = True,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not ttl_s > 0:
            raise ValueError(f"the lock TTL must be positive, not {ttl_s}")
        self.path = lock_path(root)
        self._ttl = timedelta(seconds=ttl_s)
        self._settle_s = settle_s
        self._heartbeat = heartbeat
        self._clock = clock
        self._local = filesystem.is_local(self.path)
        self._owner: LockOwner | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def owner(self) -> LockOwner | None:
        """Our own record while we hold the lock."""
        return self._owner

    def acquire(self) -> LockOwner:
        """Take the lock, or raise LockHeld. An expired lock is taken over with a warning."""
        now = self._clock()
        owner = LockOwner(
            host=socket.gethostname(),
            pid=os.getpid(),
            token=secrets.token_hex(8),
            acquired_at=now,
            expires_at=now + self._ttl,
            boot_id=_boot_id(),
        )
        # Ours before the file is written: a SIGTERM handler that runs between the write
        # and the return must still find and delete it (release checks the token, so a
        # lock that turns out to be someone else's is never deleted).
        self._owner = owner
        try:
            if self._local:
                self._acquire_local(owner)
            else:
                self._acquire_remote(owner)
        except BaseException:
            self._owner = None
            raise
        if self._heartbeat:
            self._stop.clear()
            self._beat = threading.Thread(
                target=self._keep_alive, name="newswatch-run-lock", daemon=True
            )
            self._beat.start()
        return owner

    def refresh(self) -> None:
        """Push the expiry one TTL ahead; LockHeld if another run has taken the lock over."""
        if self._owner is None:
            raise RuntimeError("refresh() without holding the lock")
        with self._guard():
            found = self._read()
            if found is None or found.owner is None or found.owner.token != self._owner.token:
                raise LockHeld(self.path, found.owner if found else None)
            self._owner = replace(self._owner, expires_at=self._clock() + self._ttl)
            if self._local:
                temp = f"{self.path}.{self._owner.token}.tmp"
                _write_local(temp, self._owner.to_json(), exclusive=False)
                os.replace(temp, self.path)
            else:
                filesystem.write_file(self.path, self._owner.to_json())

    def release(self) -> None:
        """Stop refreshing and delete the lock file, if it is still ours.

        Never raises for the storage: it runs after the run's own outcome (often a failure
        of that same storage), which must not be masked. A lock that cannot be deleted is
        freed by its expiry, or at once for the next run on this machine.
        """
        if self._beat is not None:
            self._stop.set()
            self._beat.join()
            self._beat = None
        if self._owner is None:
            return
        mine, self._owner = self._owner, None
        try:
            with self._guard():
                found = self._read()
                if found is not None and found.owner is not None:
                    if found.owner.token == mine.token:
                        FileSystems.delete([self.path])
                        return
        except OSError as err:  # BeamIOError is one too
            log.warning("could not delete the run lock %s: %s; %s", self.path, err, mine.describe())
            return
        log.warning(
            "run lock %s was taken over while this run held it (%s); left in place",
            self.path,
            found.owner.describe() if found and found.owner else "no readable lock now",
        )

    def __enter__(self) -> LockOwner:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # --- local disk: under the guard, O_EXCL create -----------------------------------------

    def _acquire_local(self, owner: LockOwner) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with self._guard():
            found = self._read()
            if found is not None:
                why = found.abandoned(owner.acquired_at, self._ttl.total_seconds())
                if why is None:
                    raise LockHeld(self.path, found.owner)
                os.unlink(self.path)
                _warn_takeover(self.path, found, why)
            try:
                _write_local(self.path, owner.to_json(), exclusive=True)
            except FileExistsError:  # a run that does not take the guard (no flock here)
                found = self._read()
                raise LockHeld(self.path, found.owner if found else None) from None

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """An exclusive flock of ``run.lock.guard`` around one look-and-change, locally."""
        if not self._local or fcntl is None:
            yield
            return
        fd = os.open(self.path + ".guard", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # and with it the flock

    # --- object stores: create, then verify ---------------------------------------------------

    def _acquire_remote(self, owner: LockOwner) -> None:
        found = self._read()
        if found is not None:
            why = found.abandoned(owner.acquired_at, self._ttl.total_seconds())
            if why is None:
                raise LockHeld(self.path, found.owner)
            _warn_takeover(self.path, found, why)
        filesystem.write_file(self.path, owner.to_json())
        time.sleep(self._settle_s)
        check = self._read()
        if check is None or check.owner is None or check.owner.token != owner.token:
            raise LockHeld(self.path, check.owner if check else None)

    # --- both -----------------------------------------------------------------------------

    def _read(self) -> _Found | None:
        """The lock file as it is now, or None when there is none."""
        try:
            if self._local:
                with open(self.path, "rb") as handle:
                    written_at: float = os.fstat(handle.fileno()).st_mtime
                    raw = handle.read()
            else:
                if not filesystem.exists(self.path):
                    return None
                raw = filesystem.read_file(self.path)
                written_at = FileSystems.last_updated(self.path)
        except FileNotFoundError:
            return None
        try:
            owner: LockOwner | None = LockOwner.from_json(raw)
        except ValueError:
            owner = None
        return _Found(owner, written_at)

    def _keep_alive(self) -> None:
        interval = self._ttl.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except LockHeld as err:
                log.error("lost the run lock: %s; this run is no longer exclusive", err)
                return
            except OSError as err:  # an unreachable object store: try again next beat
                log.warning("could not refresh the run lock %s: %s", self.path, err)


def _write_local(path: str, data: bytes, *, exclusive: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _warn_takeover(path: str, found: _Found, why: str) -> None:
    log.warning(
        "taking over the run lock %s (%s): %s; the run that held it was probably killed",
        path,
        found.owner.describe() if found.owner else "unreadable lock file",
        why,
    )
