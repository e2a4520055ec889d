"""``newswatch run``: one bounded pass over every source, what a scheduler runs."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from newswatch.pipelines.cli.console import (
    DEFAULT_LOCK_TTL_S,
    add_run_options,
    load_command_config,
    one_line,
    positive_count,
    say,
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

__all__ = ["add_parser", "main"]


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
        type=positive_count,
        metavar="N",
        help="worker processes on this machine (default: one per core, as memory allows; "
        "1 runs in-process); Beam's --runner or --direct_num_workers override it",
    )
    run.set_defaults(handler=main, takes_beam_options=True)


def main(args: argparse.Namespace, beam_args: list[str]) -> int:
    from newswatch.pipelines.control.errors import ConfigError
    from newswatch.pipelines.core.nlp import ModelNotInstalled

    try:
        config = load_command_config(args)
    except (ConfigError, ModelNotInstalled) as err:
        say(args, logging.ERROR, f"config error: {err}")
        return EXIT_CONFIG

    from newswatch.pipelines.cli.progress import progress_for
    from newswatch.pipelines.cli.summary import feed_counts, format_summary
    from newswatch.pipelines.control.engines import engine_options
    from newswatch.pipelines.control.lock import LockHeld, RunLock
    from newswatch.pipelines.run import run

    beam_args = engine_options(beam_args, args.workers, "INFO" if args.verbose else "CRITICAL")

    # The lock is taken before run() recovers interrupted commits and deletes staging
    # folders: that clean-up is only safe while no other run is writing.
    try:
        lock = RunLock(config.output, ttl_s=args.lock_ttl)
    except ValueError as err:  # no Beam filesystem for the scheme: a missing extra
        say(args, logging.ERROR, f"config error: output {config.output}: {err}")
        return EXIT_CONFIG
    with released_on_sigterm(args, lock):
        try:
            lock.acquire()
        except LockHeld as err:
            say(args, logging.WARNING, f"{err}; nothing done, try again later")
            return EXIT_LOCK_HELD
        except OSError as err:
            say(args, logging.ERROR, f"cannot take the run lock {lock.path}: {one_line(err)}")
            return EXIT_RUN_FAILED
        try:
            try:
                outcome = run(config, beam_args, progress=progress_for(args, sys.stderr))
            finally:
                lock.release()
        except Exception as err:  # noqa: BLE001 - the run's one-line reason; details in the log
            logging.getLogger(__name__).debug("run failed", exc_info=True)
            say(args, logging.ERROR, f"run failed: {one_line(err)}")
            return EXIT_RUN_FAILED
    print(format_summary(outcome))
    ok, failed = feed_counts(outcome.report)
    # A Kafka source that fails fails the run (exit 4), so a run with Kafka partitions read
    # had a source that worked.
    if failed and not ok and not (outcome.report or {}).get("partitions"):
        return EXIT_ALL_SOURCES_FAILED
    return EXIT_OK


@contextmanager
def released_on_sigterm(args: argparse.Namespace, lock: RunLock) -> Iterator[None]:
    """SIGTERM (a scheduler's timeout or stop) releases the run lock and exits 143 at once.

    Unwinding an exception through a running Beam pipeline can leave it waiting on its
    worker threads. The run itself is safe to cut anywhere (the next run completes or
    discards what it left); only the lock must not outlive it.
    """

    def terminate(signum: int, frame: FrameType | None) -> None:
        lock.release()
        say(args, logging.WARNING, f"stopped by signal {signum}; run lock released")
        sys.stderr.flush()
        os._exit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
