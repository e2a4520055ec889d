"""Which Beam runner a bounded run uses, and with how many workers, when the user says little.

Without Beam options, ``newswatch run`` uses the whole machine: the DirectRunner's
multi-process mode with one SDK worker process per usable core (each loads the spaCy model
once and takes its share of every stage). ``--workers N`` chooses the number; 1 runs
in-process. Beam options the user passes (``--runner``, ``--direct_num_workers``,
``--direct_running_mode``) always win: they are passed on untouched, except that
``--runner=dask`` names Beam's DaskRunner by the class path Beam needs for it.

>>> engine_options([], workers=1)
['--direct_running_mode=in_memory', '--direct_num_workers=1']
>>> engine_options(["--direct_num_workers=3"], workers=2)
['--direct_num_workers=3']
>>> engine_options(["--runner", "dask", "--dask_client_address=tcp://10.0.0.5:8786"], workers=2)
['--runner', 'apache_beam.runners.dask.dask_runner.DaskRunner', '--dask_client_address=tcp://10.0.0.5:8786']
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "DASK_RUNNER",
    "default_workers",
    "engine_options",
    "engine_problem",
    "is_dask",
    "runner_of",
]

# Options that mean the user chose how the pipeline runs; the defaults then stay out.
_CHOSEN_BY_USER = ("--runner", "--direct_num_workers", "--direct_running_mode")
_LOG_LEVEL = "--default_sdk_harness_log_level"
# Beam knows its DaskRunner by no short name: only this path selects it.
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
_DASK_NAMES = ("dask", "daskrunner", DASK_RUNNER.lower())
CGROUP = Path("/sys/fs/cgroup")  # a container's own limits (cgroup v2)
# A worker holds the spaCy model and its share of a pass (benchmarks/RESULTS.md: 400-800 MiB
# at the largest); the runner process holds the pass between stages. Workers beyond what
# memory allows would swap, which is slower than fewer workers.
WORKER_BUDGET_BYTES = 1 << 30
RUNNER_BUDGET_BYTES = 1 << 30


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask (else all the machine's),
    capped by a container's CPU quota (cgroup v2 ``cpu.max``, e.g. ``200000 100000``)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity masks on this platform
        cores = max(1, os.cpu_count() or 1)
    quota = _read_words(CGROUP / "cpu.max")
    if quota and len(quota) == 2 and quota[0] != "max":
        try:
            cores = min(cores, max(1, math.ceil(int(quota[0]) / int(quota[1]))))
        except (ValueError, ZeroDivisionError):
            pass
    return cores


def available_memory_bytes() -> int | None:
    """What this process may still allocate: MemAvailable from /proc/meminfo, capped by a
    container's memory limit (cgroup v2 ``memory.max`` less ``memory.current``: a
    Kubernetes limit is not visible in /proc/meminfo). None where neither is known."""
    available = None
    for line in _read_lines(Path("/proc/meminfo")):
        if line.startswith("MemAvailable:"):
            available = _int_or_none(line.split()[1:2], scale=1024)
    limit = _int_or_none(_read_words(CGROUP / "memory.max"))
    used = _int_or_none(_read_words(CGROUP / "memory.current")) or 0
    if limit is not None:
        available = min(available, limit - used) if available is not None else limit - used
    return available


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text("ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _read_words(path: Path) -> list[str]:
    lines = _read_lines(path)
    return lines[0].split() if lines else []


def _int_or_none(words: list[str], scale: int = 1) -> int | None:
    """The first word as a number ("max", nothing, or not a number: None)."""
    try:
        return int(words[0]) * scale
    except (IndexError, ValueError):
        return None


def default_workers() -> int:
    """One worker per usable core, as many as available memory holds (at least one)."""
    workers = usable_cores()
    memory = available_memory_bytes()
    if memory is not None:
        workers = min(workers, max(1, (memory - RUNNER_BUDGET_BYTES) // WORKER_BUDGET_BYTES))
    return workers


def _option_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def runner_of(beam_args: Sequence[str]) -> str | None:
    """The runner ``--runner`` names (``--runner=X`` or ``--runner X``; the last one wins,
    as in Beam), None when there is none.

    >>> runner_of(["--runner", "dask", "--dask_client_address=tcp://10.0.0.5:8786"])
    'dask'
    """
    runner = None
    for i, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        elif arg == "--runner" and i + 1 < len(beam_args):
            runner = beam_args[i + 1]
    return runner


def is_dask(runner: object) -> bool:
    """Whether ``runner`` names Beam's DaskRunner: ``dask``, ``DaskRunner`` or its path."""
    return isinstance(runner, str) and runner.lower() in _DASK_NAMES


def engine_problem(beam_args: Sequence[str]) -> str | None:
    """What keeps a run with these options from starting, said before any work; None when
    nothing does.

    Without a scheduler address Beam's DaskRunner would start a temporary cluster inside
    this process for every pass: a run on Dask names the cluster it runs on.

    >>> engine_problem(["--runner=dask"])
    '--runner=dask needs the scheduler of a running cluster: --dask_client_address=tcp://HOST:8786 (or --dask_scheduler_file=FILE)'
    """
    if not is_dask(runner_of(beam_args)):
        return None
    if importlib.util.find_spec("distributed") is None:
        return "--runner=dask needs the dask extra: pip install 'newswatch[dask]'"
    names = {_option_name(arg) for arg in beam_args}
    if not names & {"--dask_client_address", "--dask_scheduler_file"}:
        return (
            "--runner=dask needs the scheduler of a running cluster: "
            "--dask_client_address=tcp://HOST:8786 (or --dask_scheduler_file=FILE)"
        )
    return None


def _with_dask_path(beam_args: Sequence[str]) -> list[str]:
    """``beam_args`` with a Dask runner name replaced by the path Beam needs."""
    args = list(beam_args)
    for i, arg in enumerate(args):
        if arg.startswith("--runner=") and is_dask(arg.split("=", 1)[1]):
            args[i] = f"--runner={DASK_RUNNER}"
        elif arg == "--runner" and i + 1 < len(args) and is_dask(args[i + 1]):
            args[i + 1] = DASK_RUNNER
    return args


def engine_options(
    beam_args: Sequence[str], workers: int | None, worker_log_level: str = "CRITICAL"
) -> list[str]:
    """The Beam options a run uses: the user's (a Dask runner by its class path), and when
    they choose no runner and no DirectRunner mode, the DirectRunner on ``workers``
    processes (default: ``default_workers()``).

    Worker processes write their own log to the terminal (they inherit stderr), at INFO by
    default: a screen of harness start-up lines per pass. ``worker_log_level`` sets it
    unless the user set ``--default_sdk_harness_log_level``.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    args = _with_dask_path(beam_args)
    if any(_option_name(arg) in _CHOSEN_BY_USER for arg in args):
        return args
    count = workers if workers is not None else default_workers()
    if count == 1:
        return [*args, "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    quiet = [] if _LOG_LEVEL in map(_option_name, args) else [f"{_LOG_LEVEL}={worker_log_level}"]
    return [
        *args,
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={count}",
        *quiet,
    ]
