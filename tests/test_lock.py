"""The run lock: one run at a time per output folder, on local disks and object stores."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apache_beam.io.filesystem import CompressionTypes, FileMetadata, FileSystem
from outputs import read_articles
from processes import newswatch, wait_for

from newswatch.pipelines.cli import main
from newswatch.pipelines.cli.exits import EXIT_CONFIG, EXIT_LOCK_HELD, EXIT_RUN_FAILED
from newswatch.pipelines.control.lock import LockHeld, LockOwner, RunLock, lock_path

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# The lock, and the file whose flock guards every change to it on a local disk.
LOCK_FILES = ["run.lock", "run.lock.guard"]


def owner_file(out: Path) -> Path:
    return out / "_state" / "run.lock"


def write_lock(
    out: Path,
    *,
    expires_at: datetime,
    host: str = "dead-host",
    pid: int = 4242,
    boot_id: str | None = None,
) -> None:
    owner_file(out).parent.mkdir(parents=True, exist_ok=True)
    acquired = expires_at - timedelta(hours=1)
    owner = LockOwner(host, pid, "0123456789abcdef", acquired, expires_at, boot_id)
    owner_file(out).write_bytes(owner.to_json())


def ended_process_id() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def this_machine() -> tuple[str, str]:
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip()
    return socket.gethostname(), boot_id


def local_lock(out: Path, ttl_s: float = 60, **kwargs: object) -> RunLock:
    kwargs.setdefault("heartbeat", False)
    return RunLock(str(out), ttl_s=ttl_s, **kwargs)  # type: ignore[arg-type]


def race(locks: list[RunLock]) -> list[RunLock]:
    """Every lock tries to acquire at the same moment; the ones that got it."""
    start = threading.Barrier(len(locks))
    winners: list[RunLock] = []
    errors: list[BaseException] = []

    def attempt(lock: RunLock) -> None:
        start.wait()
        try:
            lock.acquire()
            winners.append(lock)
        except LockHeld:
            pass
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=attempt, args=(lock,)) for lock in locks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return winners


# --- the lock on a local disk -------------------------------------------------------------


def test_acquire_records_the_owner_and_release_deletes_the_file(tmp_path: Path) -> None:
    lock = local_lock(tmp_path, ttl_s=600, clock=lambda: NOW)
    owner = lock.acquire()
    recorded = json.loads(owner_file(tmp_path).read_text("utf-8"))
    assert recorded == {
        "host": owner.host,
        "pid": os.getpid(),
        "token": owner.token,
        "acquired_at": "2025-03-01T12:00:00+00:00",
        "expires_at": "2025-03-01T12:10:00+00:00",
        "boot_id": owner.boot_id,
    }
    lock.release()
    assert not owner_file(tmp_path).exists()
    lock.release()  # a second release is harmless


def test_a_second_run_is_refused_while_the_lock_is_held(tmp_path: Path) -> None:
    first = local_lock(tmp_path, clock=lambda: NOW)
    holder = first.acquire()
    with pytest.raises(LockHeld) as refused:
        local_lock(tmp_path, clock=lambda: NOW + timedelta(seconds=59)).acquire()
    assert refused.value.owner == holder
    message = str(refused.value)
    assert message.startswith(f"another run holds the lock {owner_file(tmp_path)} (")
    assert f"held by {holder.host} pid {os.getpid()}" in message
    assert "acquired at 2025-03-01T12:00:00Z, expires at 2025-03-01T12:01:00Z" in message
    first.release()
    local_lock(tmp_path, clock=lambda: NOW).acquire()


def test_of_many_runs_starting_at_once_exactly_one_gets_the_lock(tmp_path: Path) -> None:
    winners = race([local_lock(tmp_path) for _ in range(8)])
    assert len(winners) == 1
    assert LockOwner.from_json(owner_file(tmp_path).read_bytes()) == winners[0].owner


def test_an_expired_lock_is_taken_over_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_lock(tmp_path, expires_at=NOW - timedelta(seconds=1))
    lock = local_lock(tmp_path, clock=lambda: NOW)
    with caplog.at_level(logging.WARNING, logger="newswatch.pipelines.control.lock"):
        owner = lock.acquire()
    assert LockOwner.from_json(owner_file(tmp_path).read_bytes()) == owner
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"taking over the run lock {owner_file(tmp_path)} (held by dead-host")
    assert (
        "pid 4242" in warning and "): expired; the run that held it was probably killed" in warning
    )
    assert sorted(p.name for p in owner_file(tmp_path).parent.iterdir()) == LOCK_FILES


def test_a_lock_is_held_until_its_expiry_not_after_it(tmp_path: Path) -> None:
    write_lock(tmp_path, expires_at=NOW + timedelta(seconds=1))
    with pytest.raises(LockHeld):
        local_lock(tmp_path, clock=lambda: NOW).acquire()
    local_lock(tmp_path, clock=lambda: NOW + timedelta(seconds=1)).acquire()


def test_a_lock_whose_process_is_gone_from_this_machine_is_taken_over_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host, boot_id = this_machine()
    gone = ended_process_id()
    write_lock(tmp_path, expires_at=NOW + timedelta(hours=1), host=host, pid=gone, boot_id=boot_id)
    with caplog.at_level(logging.WARNING, logger="newswatch.pipelines.control.lock"):
        local_lock(tmp_path, clock=lambda: NOW).acquire()
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"held by {host} pid {gone}" in warning and "): process gone;" in warning


def test_a_live_process_on_this_machine_keeps_its_lock(tmp_path: Path) -> None:
    host, boot_id = this_machine()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(
            tmp_path,
            expires_at=NOW + timedelta(hours=1),
            host=host,
            pid=holder.pid,
            boot_id=boot_id,
        )
        with pytest.raises(LockHeld):
            local_lock(tmp_path, clock=lambda: NOW).acquire()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("where", ["another host", "another boot", "no boot id"])
def test_a_pid_means_nothing_on_another_machine_so_its_lock_waits_for_expiry(
    tmp_path: Path, where: str
) -> None:
    host, boot_id = this_machine()
    holder_host, holder_boot = {
        "another host": ("elsewhere", boot_id),
        "another boot": (host, "a-previous-boot"),
        "no boot id": (host, None),
    }[where]
    write_lock(
        tmp_path,
        expires_at=NOW + timedelta(hours=1),
        host=holder_host,
        pid=ended_process_id(),
        boot_id=holder_boot,
    )
    with pytest.raises(LockHeld):
        local_lock(tmp_path, clock=lambda: NOW).acquire()


def test_of_many_runs_finding_one_expired_lock_exactly_one_takes_it(tmp_path: Path) -> None:
    write_lock(tmp_path, expires_at=NOW - timedelta(minutes=5))
    winners = race([local_lock(tmp_path, clock=lambda: NOW) for _ in range(8)])
    assert len(winners) == 1
    assert LockOwner.from_json(owner_file(tmp_path).read_bytes()) == winners[0].owner
    assert sorted(p.name for p in owner_file(tmp_path).parent.iterdir()) == LOCK_FILES


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"host": "x"}', b"\xff\xfe"])
def test_an_unreadable_lock_counts_as_held_until_a_ttl_after_it_was_written(
    tmp_path: Path, content: bytes
) -> None:
    owner_file(tmp_path).parent.mkdir(parents=True)
    owner_file(tmp_path).write_bytes(content)
    with pytest.raises(LockHeld, match="lock file unreadable") as refused:
        local_lock(tmp_path, ttl_s=60).acquire()
    assert refused.value.owner is None
    old = time.time() - 61
    os.utime(owner_file(tmp_path), (old, old))
    local_lock(tmp_path, ttl_s=60).acquire()


def test_a_live_run_keeps_its_lock_past_the_ttl(tmp_path: Path) -> None:
    lock = RunLock(str(tmp_path), ttl_s=0.6)  # refreshed every 0.2 s
    first = lock.acquire()
    try:
        time.sleep(1.5)
        with pytest.raises(LockHeld):
            local_lock(tmp_path, ttl_s=0.6).acquire()
        current = LockOwner.from_json(owner_file(tmp_path).read_bytes())
        assert current.token == first.token
        assert current.expires_at > first.expires_at + timedelta(seconds=0.5)
    finally:
        lock.release()
    assert not owner_file(tmp_path).exists()


def test_release_leaves_alone_a_lock_another_run_took_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stalled = local_lock(tmp_path, ttl_s=60, clock=lambda: NOW)
    stalled.acquire()
    later = local_lock(tmp_path, ttl_s=60, clock=lambda: NOW + timedelta(minutes=2))
    taker = later.acquire()
    with pytest.raises(LockHeld):
        stalled.refresh()
    with caplog.at_level(logging.WARNING, logger="newswatch.pipelines.control.lock"):
        stalled.release()
    assert LockOwner.from_json(owner_file(tmp_path).read_bytes()) == taker
    assert any("was taken over while this run held it" in r.getMessage() for r in caplog.records)


def test_the_lock_is_released_when_the_run_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), local_lock(tmp_path):
        assert owner_file(tmp_path).exists()
        raise RuntimeError("boom")
    assert not owner_file(tmp_path).exists()


def test_release_does_not_raise_when_the_storage_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lock = local_lock(tmp_path)
    lock.acquire()

    def read_only(paths: list[str]) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("newswatch.pipelines.control.lock.FileSystems.delete", read_only)
    with caplog.at_level(logging.WARNING, logger="newswatch.pipelines.control.lock"):
        lock.release()
    assert owner_file(tmp_path).exists()
    assert any("could not delete the run lock" in r.getMessage() for r in caplog.records)


# --- the lock on an object store ----------------------------------------------------------


class _MemoryFile(io.BytesIO):
    def __init__(self, store: dict[str, tuple[bytes, float]], path: str) -> None:
        super().__init__()
        self._store, self._path = store, path

    def close(self) -> None:
        if not self.closed:
            self._store[self._path] = (self.getvalue(), time.time())
        super().close()


class MemoryFileSystem(FileSystem):
    """A Beam filesystem for ``memlock://`` paths, kept in a dict: an object store stand-in."""

    STORE: dict[str, tuple[bytes, float]] = {}

    @classmethod
    def scheme(cls) -> str:
        return "memlock"

    def join(self, basepath: str, *paths: str) -> str:
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path.rpartition("/")
        return head, tail

    def mkdirs(self, path: str) -> None:
        pass

    def has_dirs(self) -> bool:
        return False

    def _list(self, dir_or_prefix: str) -> Iterator[FileMetadata]:
        for path, (data, mtime) in sorted(self.STORE.items()):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(data), mtime)

    def create(
        self,
        path: str,
        mime_type: str = "application/octet-stream",
        compression_type: str = CompressionTypes.AUTO,
    ) -> _MemoryFile:
        return _MemoryFile(self.STORE, path)

    def open(
        self,
        path: str,
        mime_type: str = "application/octet-stream",
        compression_type: str = CompressionTypes.AUTO,
    ) -> io.BytesIO:
        if path not in self.STORE:
            raise FileNotFoundError(path)
        return io.BytesIO(self.STORE[path][0])

    def copy(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        for src, dst in zip(source_file_names, destination_file_names, strict=True):
            self.STORE[dst] = self.STORE[src]

    def rename(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        for src, dst in zip(source_file_names, destination_file_names, strict=True):
            self.STORE[dst] = self.STORE.pop(src)

    def exists(self, path: str) -> bool:
        return path in self.STORE

    def size(self, path: str) -> int:
        return len(self.STORE[path][0])

    def last_updated(self, path: str) -> float:
        return self.STORE[path][1]

    def checksum(self, path: str) -> str:
        return str(hash(self.STORE[path][0]))

    def metadata(self, path: str) -> FileMetadata:
        data, mtime = self.STORE[path]
        return FileMetadata(path, len(data), mtime)

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            self.STORE.pop(path)


@pytest.fixture
def store() -> Iterator[dict[str, tuple[bytes, float]]]:
    MemoryFileSystem.STORE.clear()
    yield MemoryFileSystem.STORE
    MemoryFileSystem.STORE.clear()


def remote_lock(ttl_s: float = 60, **kwargs: object) -> RunLock:
    kwargs.setdefault("heartbeat", False)
    return RunLock("memlock://bucket/out", ttl_s=ttl_s, settle_s=0, **kwargs)  # type: ignore[arg-type]


def test_on_an_object_store_the_lock_goes_through_beam_filesystems(
    store: dict[str, tuple[bytes, float]],
) -> None:
    path = lock_path("memlock://bucket/out")
    assert path == "memlock://bucket/out/_state/run.lock"
    first = remote_lock(clock=lambda: NOW)
    holder = first.acquire()
    assert LockOwner.from_json(store[path][0]) == holder
    with pytest.raises(LockHeld) as refused:
        remote_lock(clock=lambda: NOW + timedelta(seconds=30)).acquire()
    assert refused.value.owner == holder
    first.release()
    assert path not in store


def test_on_an_object_store_an_expired_lock_is_taken_over(
    store: dict[str, tuple[bytes, float]], caplog: pytest.LogCaptureFixture
) -> None:
    remote_lock(ttl_s=60, clock=lambda: NOW).acquire()
    with caplog.at_level(logging.WARNING, logger="newswatch.pipelines.control.lock"):
        taker = remote_lock(clock=lambda: NOW + timedelta(seconds=61)).acquire()
    assert LockOwner.from_json(store[lock_path("memlock://bucket/out")][0]) == taker
    assert any("taking over the run lock" in r.getMessage() for r in caplog.records)


def test_on_an_object_store_a_run_whose_lock_was_overwritten_backs_off(
    store: dict[str, tuple[bytes, float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two runs both found no lock and wrote theirs; the other one wrote last, during our
    # pause, so reading back finds its record and we give way.
    path = lock_path("memlock://bucket/out")
    rival = LockOwner("other-host", 99, "feedfacefeedface", NOW, NOW + timedelta(minutes=1))

    def rival_writes_during_the_pause(seconds: float) -> None:
        store[path] = (rival.to_json(), time.time())

    monkeypatch.setattr(
        "newswatch.pipelines.control.lock.time.sleep", rival_writes_during_the_pause
    )
    with pytest.raises(LockHeld) as refused:
        remote_lock(clock=lambda: NOW).acquire()
    assert refused.value.owner == rival


# --- the lock in `newswatch run` ----------------------------------------------------------


def test_run_exits_75_naming_the_holder_when_the_lock_is_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    with local_lock(out) as holder:
        assert main(["run", "--out", str(out)]) == EXIT_LOCK_HELD
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"newswatch: another run holds the lock {owner_file(out)} (held by ")
    assert f"pid {holder.pid}" in err and "expires at" in err
    assert "nothing done, try again later" in err
    assert sorted(p.name for p in out.iterdir()) == ["_state"]


def test_run_releases_the_lock_when_the_run_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[bool] = []

    def failing_run(config: object, beam_args: object, **_: object) -> None:
        seen.append(owner_file(tmp_path / "data").exists())
        raise OSError("disk full")

    monkeypatch.setattr("newswatch.pipelines.run.run", failing_run)
    assert main(["run", "--out", str(tmp_path / "data")]) == EXIT_RUN_FAILED
    assert seen == [True]
    assert not owner_file(tmp_path / "data").exists()
    assert "run failed: OSError: disk full" in capsys.readouterr().err


def test_an_output_without_a_beam_filesystem_is_a_config_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--out", "nosuchfs://bucket/news"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("newswatch: config error: output nosuchfs://bucket/news: ")
    assert "apache-beam[gcp]" in err  # Beam's hint: install the matching extra


@pytest.mark.parametrize("ttl", ["0", "-5", "soon", "inf", "nan"])
def test_lock_ttl_must_be_a_positive_number_of_seconds(ttl: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--lock-ttl", ttl])
    assert exited.value.code == 2


# --- real processes -----------------------------------------------------------------------


@pytest.mark.slow
def test_two_runs_started_at_once_do_the_work_once(tmp_path: Path) -> None:
    out = tmp_path / "data"
    runs = [newswatch("run", "--out", str(out), "--log-format", "json") for _ in range(2)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    assert sorted(code for code, _, _ in results) == [0, EXIT_LOCK_HELD]
    [(_, loser_out, loser_err)] = [r for r in results if r[0] == EXIT_LOCK_HELD]
    assert loser_out == ""
    logged = [json.loads(line) for line in loser_err.splitlines()]
    [held] = [e for e in logged if "another run holds the lock" in e["message"]]
    assert held["level"] == "WARNING" and held["logger"] == "newswatch"
    assert {"time", "level", "logger", "message"} <= set(held)
    assert "expires at" in held["message"]
    assert read_articles(out).num_rows == 14
    assert not owner_file(out).exists()
    assert not (out / "_staging").exists() or not any((out / "_staging").iterdir())


def kill_mid_run(out: Path, *args: str) -> LockOwner:
    """Start a run, SIGKILL it once it holds the lock; the lock it leaves behind."""
    run = newswatch("run", "--out", str(out), *args)
    wait_for(owner_file(out).exists, 60, "the lock file")
    run.send_signal(signal.SIGKILL)
    run.communicate()
    left = LockOwner.from_json(owner_file(out).read_bytes())
    assert left.pid == run.pid
    return left


@pytest.mark.slow
def test_a_run_killed_on_this_machine_does_not_block_the_next(tmp_path: Path) -> None:
    out = tmp_path / "data"
    left = kill_mid_run(out)
    taker = newswatch("run", "--out", str(out))
    _, err = taker.communicate(timeout=300)
    assert taker.returncode == 0, err
    assert f"pid {left.pid}" in err and "process gone" in err
    assert read_articles(out).num_rows == 14
    assert not owner_file(out).exists()


@pytest.mark.slow
def test_a_lock_left_by_a_run_killed_elsewhere_expires(tmp_path: Path) -> None:
    out = tmp_path / "data"
    left = kill_mid_run(out, "--lock-ttl", "20")
    # As if the killed run had been on another machine (say, a previous pod): its pid
    # tells us nothing there, so only the expiry frees the lock.
    elsewhere = dataclasses.replace(left, host="another-pod")
    owner_file(out).write_bytes(elsewhere.to_json())

    refused = newswatch("run", "--out", str(out))
    _, err = refused.communicate(timeout=300)
    assert refused.returncode == EXIT_LOCK_HELD, err
    assert "held by another-pod" in err

    time.sleep(max(0.0, (left.expires_at - datetime.now(UTC)).total_seconds()) + 0.1)
    taker = newswatch("run", "--out", str(out))
    _, err = taker.communicate(timeout=300)
    assert taker.returncode == 0, err
    assert "held by another-pod" in err and "): expired;" in err
    assert read_articles(out).num_rows == 14
    assert not owner_file(out).exists()


@pytest.mark.slow
@pytest.mark.parametrize("after_s", [0.0, 2.0], ids=["just-locked", "mid-pipeline"])
def test_sigterm_releases_the_lock(tmp_path: Path, after_s: float) -> None:
    out = tmp_path / "data"
    run = newswatch("run", "--out", str(out))
    wait_for(owner_file(out).exists, 60, "the lock file")
    time.sleep(after_s)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 128 + signal.SIGTERM
    assert f"newswatch: stopped by signal {signal.SIGTERM}; run lock released" in err
    assert not owner_file(out).exists()
