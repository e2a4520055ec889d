"""``newswatch run``: one bounded pass over every source, what a scheduler runs."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

from newswatch.pipelines.cli.console import (
    DEFAULT_LOCK_TTL_S,
    add_run_options,
    load_command_config,
    one_line,
    say,
    worker_count,
)
from newswatch.pipelines.cli.exits import (
    EXIT_ALL_SOURCES_FAILED,
    EXIT_CONFIG,
    EXIT_LOCK_HELD,
    EXIT_OK,
    EXIT_RUN_FAILED,
)

if TYPE_CHECKING:  # imported where used: Beam is slow to import
    from newswatch.pipelines.control.lock import RunLock

__all__ = ["add_parser", "holding_run_lock", "main"]

T = TypeVar("T")


def add_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="one bounded pass over every source (what a scheduler runs)",
        description="Read every source once, store new articles, raise alerts, commit. "
        "Arguments not listed here are Beam pipeline options (--runner, --direct_num_workers, ...).",
    )
    add_run_options(
        run,
        lock_help="a run lock not refreshed for this long was left by a killed run and is taken "
        f"over (default {DEFAULT_LOCK_TTL_S:g}; a live run refreshes it every third of this)",
    )
    run.add_argument(
        "--workers",
        type=worker_count,
        default=None,
        metavar="N|auto",
        help="worker processes on this machine: auto (the default) one per usable core as "
        "memory allows, 1 runs in-process; Beam's --runner or --direct_num_workers override it",
    )
    run.set_defaults(handler=main, takes_beam_options=True)


def main(args: argparse.Namespace, beam_args: list[str]) -> int:
    from newswatch.pipelines.control.errors import ConfigError
    from newswatch.pipelines.core.installed import ModelNotInstalled

    try:
        config = load_command_config(args)
    except (ConfigError, ModelNotInstalled) as err:
        say(args, logging.ERROR, f"config error: {err}")
        return EXIT_CONFIG

    from newswatch.pipelines.cli.progress import progress_for
    from newswatch.pipelines.cli.summary import feed_counts, format_summary
    from newswatch.pipelines.control.engines import engine_options, engine_problem
    from newswatch.pipelines.control.memory import keep_memory_compact
    from newswatch.pipelines.run import run

    beam_args = engine_options(beam_args, args.workers, "INFO" if args.verbose else "CRITICAL")
    if problem := engine_problem(beam_args):
        say(args, logging.ERROR, f"config error: {problem}")
        return EXIT_CONFIG
    progress = progress_for(args, sys.stderr)
    keep_memory_compact()
    code, outcome = holding_run_lock(
        args, config.output, partial(run, config, beam_args, progress=progress)
    )
    if outcome is None:
        return code
    print(format_summary(outcome))
    ok, failed = feed_counts(outcome.report)
    # A Kafka source that fails fails the run (exit 4), so a run with Kafka partitions read
    # had a source that worked.
    if failed and not ok and not (outcome.report or {}).get("partitions"):
        return EXIT_ALL_SOURCES_FAILED
    return EXIT_OK


def holding_run_lock(
    args: argparse.Namespace, output: str, work: Callable[[], T], what: str = "run"
) -> tuple[int, T | None]:
    """``work()`` while holding the output's run lock: ``(EXIT_OK, its result)``, or the
    exit code and None when the lock was not taken or the work failed (said on stderr).

    The lock is taken before the work recovers interrupted commits and deletes staging
    folders: that clean-up is only safe while no other run is writing.
    """
    from newswatch.pipelines.control.lock import LockHeld, RunLock

    try:
        lock = RunLock(output, ttl_s=args.lock_ttl)
    except ValueError as err:  # no Beam filesystem for the scheme: a missing extra
        say(args, logging.ERROR, f"config error: output {output}: {err}")
        return EXIT_CONFIG, None
    with released_on_sigterm(args, lock) as on_sigterm:
        try:
            with on_sigterm.changing_lock():
                lock.acquire()
        except LockHeld as err:
            say(args, logging.WARNING, f"{err}; nothing done, try again later")
            return EXIT_LOCK_HELD, None
        except OSError as err:
            say(args, logging.ERROR, f"cannot take the run lock {lock.path}: {one_line(err)}")
            return EXIT_RUN_FAILED, None
        try:
            try:
                return EXIT_OK, work()
            finally:
                with on_sigterm.changing_lock():
                    lock.release()
        except Exception as err:  # noqa: BLE001 - the one-line reason; details in the log
            logging.getLogger(__name__).debug("%s failed", what, exc_info=True)
            say(args, logging.ERROR, f"{what} failed: {one_line(err)}")
            return EXIT_RUN_FAILED, None


class _SigtermRelease:
    """The SIGTERM handler of ``released_on_sigterm``, held back while this thread changes
    the lock file: the lock's guard is an flock this thread then holds, and the handler's
    own release would wait on it forever. Such a signal takes effect right after."""

    def __init__(self, args: argparse.Namespace, lock: RunLock) -> None:
        self._args = args
        self._lock = lock
        self._changing = False
        self._pending: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self._changing:
            self._pending = signum
            return
        self._lock.release()
        say(self._args, logging.WARNING, f"stopped by signal {signum}; run lock released")
        sys.stderr.flush()
        os._exit(128 + signum)

    @contextmanager
    def changing_lock(self) -> Iterator[None]:
        self._changing = True
        try:
            yield
        finally:
            self._changing = False
            if self._pending is not None:
                self.handle(self._pending, None)


@contextmanager
def released_on_sigterm(args: argparse.Namespace, lock: RunLock) -> Iterator[_SigtermRelease]:
    """SIGTERM (a scheduler's timeout or stop) releases the run lock and exits 143 at once;
    wrap taking and releasing the lock in the yielded ``changing_lock()``.

    Unwinding an exception through a running Beam pipeline can leave it waiting on its
    worker threads. The run itself is safe to cut anywhere (the next run completes or
    discards what it left); only the lock must not outlive it.
    """
    release = _SigtermRelease(args, lock)
    try:
        previous = signal.signal(signal.SIGTERM, release.handle)
    except ValueError:  # not the main thread: leave signals alone
        yield release
        return
    try:
        yield release
    finally:
        signal.signal(signal.SIGTERM, previous)
