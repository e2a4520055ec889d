"""``newswatch`` in child processes: starting them, reading their output lines as they
come, the stream's JSON status records, and waiting for a condition with a deadline."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

NEWSWATCH = [sys.executable, "-m", "newswatch.pipelines.cli"]
STATUS_LOGGER = "newswatch.status"
# `newswatch run` starts a worker process per core by default, about 6 s of start-up a run.
# Tests whose subject is not the engine run in-process; test_run_e2e, test_faults and
# test_lock run the default.
IN_PROCESS = ("--workers", "1")


def newswatch(
    *args: str, stdout: int | None = subprocess.PIPE, stderr: int | None = subprocess.PIPE
) -> subprocess.Popen[str]:
    """``newswatch ARGS...`` started in a child process (text mode, unbuffered)."""
    return subprocess.Popen(
        [*NEWSWATCH, *args],
        stdout=stdout,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def child_pids(pid: int) -> set[int]:
    """The processes ``pid`` started that are still running (Linux's /proc)."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children.update(int(c) for c in (task / "children").read_text().split())
        except OSError:  # the thread ended meanwhile
            pass
    return children


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(
    condition: Callable[[], object],
    timeout_s: float = 60.0,
    what: str = "the condition",
    process: subprocess.Popen[str] | None = None,
    every_s: float = 0.01,
) -> None:
    """Returns once ``condition()`` is true; fails after ``timeout_s``, or as soon as
    ``process`` (when given) has exited."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process is not None:
            assert process.poll() is None, f"exited ({process.returncode}) waiting for {what}"
        assert time.monotonic() < deadline, f"waited {timeout_s:g}s in vain for {what}"
        time.sleep(every_s)


class OutputLines:
    """The lines a child process writes to one of its pipes, collected on a thread."""

    def __init__(self, process: subprocess.Popen[str], pipe: IO[str] | None) -> None:
        assert pipe is not None, "start the process with that output piped"
        self.process = process
        self.seen: list[str] = []  # every line handed out so far
        self._lines: queue.Queue[str] = queue.Queue()
        self._pump = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._pump.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._lines.put(line.rstrip("\n"))

    def next_line(self, timeout_s: float) -> str:
        """The next line; ``queue.Empty`` when none comes within ``timeout_s``."""
        line = self._lines.get(timeout=timeout_s)
        self.seen.append(line)
        return line

    def next_matching(
        self, predicate: Callable[[str], bool], timeout_s: float, what: str = "a line"
    ) -> str:
        """The next line satisfying ``predicate``; fails at the deadline or if the process
        ends first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.next_line(min(1.0, max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                assert self.process.poll() is None, f"exited before {what}: {self.seen[-5:]}"
                continue
            if predicate(line):
                return line
        raise AssertionError(f"no {what} within {timeout_s:g}s: {self.seen[-5:]}")

    def take(self, count: int, timeout_s: float) -> list[str]:
        """Up to ``count`` lines, as many as come within ``timeout_s``."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout_s
        while len(lines) < count and (left := deadline - time.monotonic()) > 0:
            try:
                lines.append(self.next_line(left))
            except queue.Empty:
                break
        return lines

    def rest(self) -> list[str]:
        """Every line not handed out yet, up to the end of the output (the process ended)."""
        self._pump.join(timeout=30)
        lines = []
        while not self._lines.empty():
            lines.append(self.next_line(0))
        return lines


def json_record(line: str) -> dict[str, Any] | None:
    """A ``--log-format json`` line as its object; None for any other line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def status_of(line: str) -> dict[str, Any] | None:
    """The numbers of a stream status record (``--log-format json``); None for other lines."""
    record = json_record(line)
    if record is None or record.get("logger") != STATUS_LOGGER:
        return None
    status = record.get("status")
    return status if isinstance(status, dict) else None


class Stream:
    """``newswatch stream --log-format json --config CONFIG [ARGS...]``; its status records."""

    def __init__(self, config: Path, *args: str, wait_s: float = 90.0) -> None:
        self.process = newswatch(
            "stream", "--config", str(config), "--log-format", "json", *args,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.stderr = OutputLines(self.process, self.process.stderr)
        self.wait_s = wait_s

    def wait_for_status(
        self, predicate: Callable[[dict[str, Any]], bool], what: str = "such a status"
    ) -> dict[str, Any]:
        """The first status whose numbers satisfy ``predicate``."""

        def matches(line: str) -> bool:
            status = status_of(line)
            return status is not None and predicate(status)

        return status_of(self.stderr.next_matching(matches, self.wait_s, what)) or {}

    def stop(self) -> int:
        """SIGTERM (drain and stop); the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=self.wait_s)

    def lines(self) -> list[str]:
        """Every line it wrote to stderr (call after it ended)."""
        return [*self.stderr.seen, *self.stderr.rest()]


class Subscriber:
    """``newswatch alerts subscribe ARGS...``; its output lines once it said it follows."""

    def __init__(self, *args: str, ready_s: float = 60.0) -> None:
        self.process = newswatch("alerts", "subscribe", *args)
        self.stdout = OutputLines(self.process, self.process.stdout)
        self.stderr = OutputLines(self.process, self.process.stderr)
        try:
            # Its one "newswatch: following ..." line on stderr says it has subscribed.
            self.stderr.next_matching(
                lambda line: line.startswith("newswatch: following"), ready_s, "the ready line"
            )
        except BaseException:
            self.kill()
            raise

    def read(self, count: int, timeout_s: float = 30) -> list[str]:
        return self.stdout.take(count, timeout_s)

    def alerts(self, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
        """The next ``count`` alerts (``--format json``)."""
        return [json.loads(line) for line in self.read(count, timeout_s)]

    def interrupt(self) -> int:
        """Ctrl-C; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=15)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
