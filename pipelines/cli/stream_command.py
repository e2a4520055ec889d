"""``newswatch stream``: run continuously until SIGTERM, Ctrl-C or ``--max-runtime``.

A stop drains: the open window commits, then the process exits 0. A second signal gives up
the drain. A drain that does not finish within ``stream.drain_timeout`` exits 4, and the
open window is read again at the next start.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from newswatch.pipelines.cli.console import (
    DEFAULT_LOCK_TTL_S,
    add_run_options,
    load_command_config,
    one_line,
    positive_seconds,
    say,
)
from newswatch.pipelines.cli.exits import EXIT_CONFIG, EXIT_LOCK_HELD, EXIT_OK, EXIT_RUN_FAILED
from newswatch.pipelines.control.settings import STATUS_LOGGER, Config

if TYPE_CHECKING:  # imported where used: Beam is slow to import
    from newswatch.pipelines.stream import RunningStream

__all__ = ["add_parser", "main"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    stream = commands.add_parser(
        "stream",
        help="run continuously: alerts as articles arrive, Parquet committed per window",
        description="Poll every source without end: alerts are sent as each article is "
        "processed; articles, the alert log and Kafka offsets are committed once per window. "
        "SIGTERM or Ctrl-C commits the open window and stops. Arguments not listed here are "
        "Beam pipeline options (it runs on the DirectRunner).",
    )
    add_run_options(
        stream,
        lock_help=f"as for run (default {DEFAULT_LOCK_TTL_S:g}); "
        "the stream holds the lock while it runs",
    )
    stream.add_argument(
        "--window", type=positive_seconds, metavar="SECONDS", help="overrides stream.window"
    )
    stream.add_argument(
        "--status-interval",
        type=positive_seconds,
        metavar="SECONDS",
        help="overrides stream.status_interval",
    )
    stream.add_argument(
        "--max-runtime",
        type=positive_seconds,
        metavar="SECONDS",
        help="drain and exit 0 after this long, for a supervisor to start it again: the "
        "DirectRunner's memory grows with every bundle it runs (see benchmarks/STREAMING.md)",
    )
    stream.set_defaults(handler=main, takes_beam_options=True)


def stream_config(args: argparse.Namespace) -> Config:
    """The run's config with the stream's command-line overrides, checked."""
    from newswatch.pipelines.control.errors import ConfigError

    config = load_command_config(args)
    overrides = {}
    if args.window:
        overrides["window_s"] = args.window
    if args.status_interval:
        overrides["status_interval_s"] = args.status_interval
    if overrides:
        config = dataclasses.replace(config, stream=dataclasses.replace(config.stream, **overrides))
    if config.stream.tick_s > config.stream.window_s:
        raise ConfigError(
            args.config or "<command line>", "stream.window", "shorter than stream.tick"
        )
    return config


def main(args: argparse.Namespace, beam_args: list[str]) -> int:
    from newswatch.pipelines.control.errors import ConfigError
    from newswatch.pipelines.control.lock import LockHeld, RunLock
    from newswatch.pipelines.control.memory import keep_memory_compact
    from newswatch.pipelines.core.installed import ModelNotInstalled
    from newswatch.pipelines.stream import StreamNotSupported, stream_options

    try:
        config = stream_config(args)
        stream_options(beam_args)  # checked again at the start; here before the lock is taken
    except (ConfigError, ModelNotInstalled, StreamNotSupported) as err:
        say(args, logging.ERROR, f"config error: {err}")
        return EXIT_CONFIG
    lock = RunLock(config.output, ttl_s=args.lock_ttl)
    try:
        lock.acquire()
    except LockHeld as err:
        say(args, logging.WARNING, f"{err}; not started")
        return EXIT_LOCK_HELD
    keep_memory_compact()
    stopping = threading.Event()
    abandoned = False
    try:
        with _stop_on_signals(stopping):
            code, abandoned = _run_until_stopped(args, config, beam_args, stopping)
            return code
    finally:
        lock.release()
        if abandoned:
            # The pipeline is still running inside Beam and spaCy: finalizing the
            # interpreter under its threads can abort the process (SIGABRT) instead of
            # exiting 4. Nothing of the open window was committed, so leave at once.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_RUN_FAILED)


class _Terminated(SystemExit):
    pass


@contextmanager
def _stop_on_signals(stopping: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT ask for a drain; a second one gives it up."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            raise _Terminated(128 + signum)
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_until_stopped(
    args: argparse.Namespace, config: Config, beam_args: list[str], stopping: threading.Event
) -> tuple[int, bool]:
    """Start the stream and watch it until it ends or is stopped: (exit code, abandoned)."""
    from newswatch.pipelines.stream import StreamNotSupported, start_stream

    try:
        stream = start_stream(config, beam_args)
    except StreamNotSupported as err:
        say(args, logging.ERROR, f"config error: {err}")
        return EXIT_CONFIG, False
    except Exception as err:  # noqa: BLE001 - the one-line reason; details in the log
        logging.getLogger(__name__).debug("stream failed to start", exc_info=True)
        say(args, logging.ERROR, f"stream failed: {one_line(err)}")
        return EXIT_RUN_FAILED, False
    # On the status logger: a plain line in a terminal, a JSON record under --log-format json.
    logging.getLogger(STATUS_LOGGER).info(
        f"newswatch stream: {len(stream.plan.feeds)} feeds, "
        f"{sum(len(k.starts) for k in stream.plan.kafka)} Kafka partitions; "
        f"window {config.stream.window_s:g}s; output {config.output}"
    )
    started = time.monotonic()
    while not stream.wait(0.5):
        if args.max_runtime and time.monotonic() - started >= args.max_runtime:
            say(args, logging.INFO, f"ran for {args.max_runtime:g}s (--max-runtime): draining")
            stopping.set()
        if stopping.is_set():
            if not _drain(args, stream, config.stream.drain_timeout_s):
                return EXIT_RUN_FAILED, True
            break
    if stream.error is not None:
        say(args, logging.ERROR, f"stream failed: {one_line(stream.error)}")
        return EXIT_RUN_FAILED, False
    return EXIT_OK, False


def _drain(args: argparse.Namespace, stream: RunningStream, timeout_s: float) -> bool:
    stream.request_stop()
    if stream.wait(timeout_s):
        return True
    say(
        args,
        logging.ERROR,
        f"the open window did not commit within {timeout_s:g}s; it is read again at the next start",
    )
    return False
