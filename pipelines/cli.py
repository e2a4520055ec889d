"""The ``newswatch`` command line.

    newswatch run [--config FILE] [--out DIR] [--lock-ttl SECONDS] [--log-format text|json]
                  [BEAM_OPTIONS...]
    newswatch stream [--config FILE] [--out DIR] [--window SECONDS] [--status-interval SECONDS]
                     [--lock-ttl SECONDS] [--max-runtime SECONDS] [--log-format text|json]
                     [BEAM_OPTIONS...]
    newswatch broker [--port 9092]
    newswatch produce --topic NAME [--bootstrap HOST:PORT] (--sample | FILE.jsonl)
    newswatch alerts subscribe [--topic ID ...] [--bootstrap HOST:PORT | --dir DIR]
                               [--from-beginning] [--format text|json] [--group NAME]

Exit codes of ``newswatch run``, for schedulers:

    0   success (including "nothing new")
    2   configuration error: fix the config or the command line; retrying will not help
    3   every source failed (no feed answered)
    4   the run failed while reading, writing or committing its output
    75  another run holds the output folder's run lock (EX_TEMPFAIL): nothing was done,
        try again at the next scheduled time; the message names the holder and its expiry
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

from newswatch.pipelines import evaluation, explanation

if TYPE_CHECKING:  # imported where used: Beam is slow to import
    from newswatch.pipelines.lock import RunLock

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_ALL_SOURCES_FAILED = 3
EXIT_RUN_FAILED = 4
# EX_TEMPFAIL from sysexits.h: a temporary condition, try again later.
EXIT_LOCK_HELD = 75

# A killed run's lock blocks the runs after it for at most this long; a live run never
# loses its lock to it, as it refreshes the expiry every third of this.
DEFAULT_LOCK_TTL_S = 30 * 60.0

# Beam logs a warning at import about optional Google Cloud clients we do not use.
_QUIET_MESSAGES = ("apitools not found",)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_QUIET_MESSAGES)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message[, exception]."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _configure_logging(verbose: bool, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    for installed in logging.getLogger().handlers:
        installed.addFilter(_DropNoise())
    if log_format == "text" and not verbose:
        # A failing step makes Beam log the element's traceback; in a terminal the run's
        # own one-line reason says it (-v shows everything, JSON logs keep it for operators).
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``parse_known_args`` leaves Beam options of ``run`` aside."""
    parser = argparse.ArgumentParser(prog="newswatch", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="one bounded pass over every source (what a scheduler runs)",
        description="Read every source once, store new articles, raise alerts, commit. "
        "Arguments not listed here are Beam pipeline options (--runner, --direct_num_workers, ...).",
    )
    run.add_argument("--config", help="YAML config file (default: bundled sample feeds)")
    run.add_argument("--out", help="output folder or filesystem URL (overrides `output`)")
    run.add_argument("-v", "--verbose", action="store_true", help="log progress")
    run.add_argument(
        "--lock-ttl",
        type=_positive_seconds,
        default=DEFAULT_LOCK_TTL_S,
        metavar="SECONDS",
        help="a run lock not refreshed for this long was left by a killed run and is taken "
        f"over (default {DEFAULT_LOCK_TTL_S:g}; a live run refreshes it every third of this)",
    )
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines on stderr: text, or JSON objects (time, level, logger, message)",
    )

    _add_stream_parser(commands)
    evaluation.add_parser(commands)
    explanation.add_parser(commands)

    produce = commands.add_parser(
        "produce",
        help="put articles on a Kafka topic as JSON messages (for trying newswatch out)",
        description="Send JSON articles (schemas/kafka_article.schema.json) to a Kafka topic, "
        "creating the topic when the cluster does not have it.",
    )
    produce.add_argument("--topic", required=True, help="Kafka topic to send to")
    produce.add_argument(
        "--bootstrap",
        default="127.0.0.1:9092",
        help="Kafka bootstrap server (default 127.0.0.1:9092)",
    )
    produce.add_argument(
        "--partitions", type=int, default=3, help="partitions of a topic created here (default 3)"
    )
    what = produce.add_mutually_exclusive_group(required=True)
    what.add_argument("--sample", action="store_true", help="the bundled sample articles")
    what.add_argument("file", nargs="?", help="a JSON Lines file, one article per line")

    broker = commands.add_parser(
        "broker", help="start a local Kafka-protocol broker for development (in memory)"
    )
    broker.add_argument("--port", type=int, default=9092, help="port on 127.0.0.1 (default 9092)")

    alerts = commands.add_parser("alerts", help="follow raised alerts")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    subscribe = alert_commands.add_parser(
        "subscribe",
        help="print alerts as they arrive, from Kafka or from the file sink",
        description="Print each alert as it arrives. Ctrl-C stops.",
    )
    where = subscribe.add_mutually_exclusive_group()
    where.add_argument(
        "--bootstrap",
        default="127.0.0.1:9092",
        help="Kafka bootstrap server (default 127.0.0.1:9092)",
    )
    where.add_argument("--dir", help="follow the file sink instead: <out>/alerts")
    subscribe.add_argument(
        "--alerts-topic",
        default="newswatch.alerts",
        help="Kafka topic of alerts (default newswatch.alerts)",
    )
    subscribe.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="ID",
        help="only this watched topic (repeatable)",
    )
    subscribe.add_argument(
        "--from-beginning", action="store_true", help="start with the oldest alert"
    )
    subscribe.add_argument("--format", choices=("text", "json"), default="text")
    subscribe.add_argument("--group", help="a subscriber name: resume where it left off")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, beam_args = build_parser().parse_known_args(argv)
    _configure_logging(getattr(args, "verbose", False), getattr(args, "log_format", "text"))
    if beam_args and args.command not in ("run", "stream"):
        print(f"newswatch: unknown arguments: {' '.join(beam_args)}", file=sys.stderr)
        return EXIT_CONFIG
    if hasattr(args, "handler"):  # commands that register themselves (eval, explain)
        return int(args.handler(args))
    if args.command == "run":
        return _run(args, beam_args)
    if args.command == "stream":
        return _stream(args, beam_args)
    if args.command == "broker":
        return _broker(args)
    if args.command == "produce":
        return _produce(args)
    return _subscribe(args)


def _produce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from newswatch.connectors.kafka import KafkaConnection, KafkaUnavailable
    from newswatch.pipelines.produce import (
        encode,
        ensure_topic,
        produce_articles,
        read_json_lines,
        sample_articles,
    )

    connection = KafkaConnection(bootstrap_servers=tuple(args.bootstrap.split(",")))
    if args.sample:
        values = [encode(article) for article in sample_articles()]
    else:
        try:
            values = list(read_json_lines(Path(args.file)))
        except OSError as err:
            print(f"newswatch: cannot read {args.file}: {err.strerror or err}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        ensure_topic(connection, args.topic, args.partitions)
        sent = produce_articles(connection, args.topic, values)
    except KafkaUnavailable as err:
        print(f"newswatch: {err}", file=sys.stderr)
        return EXIT_RUN_FAILED
    print(f"sent {sent} articles to {args.topic} on {args.bootstrap}")
    return EXIT_OK


def _broker(args: argparse.Namespace) -> int:
    from newswatch.pipelines.broker import BrokerUnavailable, start_broker

    try:
        broker = start_broker(args.port, quiet=False)
    except BrokerUnavailable as err:
        print(f"newswatch: {err}", file=sys.stderr)
        return EXIT_CONFIG
    print(
        f"Kafka-protocol broker listening on {broker.bootstrap} (in memory; Ctrl-C stops it)",
        flush=True,
    )
    try:
        return broker.process.wait()
    except KeyboardInterrupt:
        broker.stop()
        return EXIT_OK


def _announce(what: str, from_beginning: bool) -> Callable[[], None]:
    def announce() -> None:
        start = "from the oldest alert" if from_beginning else "from now on"
        print(f"newswatch: {what}, {start} (Ctrl-C stops)", file=sys.stderr, flush=True)

    return announce


def _subscribe(args: argparse.Namespace) -> int:
    from pathlib import Path

    from newswatch.connectors.kafka import KafkaConnection, KafkaUnavailable
    from newswatch.pipelines.subscribe import (
        AlertFilter,
        follow_directory,
        follow_kafka,
        format_alert,
    )

    wanted = AlertFilter(frozenset(args.topic))
    # Ctrl-C and SIGTERM end the loop at its next turn, after the alerts already printed
    # are recorded for --group: none is lost, none is printed twice.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if args.dir:
        if not Path(args.dir).is_dir():
            print(f"newswatch: no alerts folder at {args.dir}", file=sys.stderr)
            return EXIT_CONFIG
        cursor = (
            Path(args.dir).parent / "_state" / "subscribers" / f"{args.group}.json"
            if args.group
            else None
        )
        alerts = follow_directory(
            args.dir,
            from_beginning=args.from_beginning,
            cursor=cursor,
            on_ready=_announce(f"following alerts in {args.dir}", args.from_beginning),
            should_stop=stop.is_set,
        )
    else:
        connection = KafkaConnection(bootstrap_servers=tuple(args.bootstrap.split(",")))
        alerts = follow_kafka(
            connection,
            args.alerts_topic,
            group=args.group,
            from_beginning=args.from_beginning,
            on_ready=_announce(
                f"following {args.alerts_topic} on {args.bootstrap}", args.from_beginning
            ),
            should_stop=stop.is_set,
        )
    try:
        for alert in alerts:
            if wanted.accepts(alert):
                print(format_alert(alert, args.format), flush=True)
    except KafkaUnavailable as err:
        print(f"newswatch: {err}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    import dataclasses

    from newswatch.pipelines.config import load_config, resolve_output
    from newswatch.pipelines.errors import ConfigError
    from newswatch.pipelines.nlp import ModelNotInstalled, resolve_model

    try:
        config = load_config(args.config)
        if args.out:
            config = dataclasses.replace(config, output=resolve_output(args.out, None))
        resolve_model(config.nlp.model)
    except (ConfigError, ModelNotInstalled) as err:
        _say(args, logging.ERROR, f"config error: {err}")
        return EXIT_CONFIG

    from newswatch.pipelines.batch import run
    from newswatch.pipelines.lock import LockHeld, RunLock
    from newswatch.pipelines.summary import feed_counts, format_summary

    # The lock is taken before run() recovers interrupted commits and deletes staging
    # folders: that clean-up is only safe while no other run is writing.
    try:
        lock = RunLock(config.output, ttl_s=args.lock_ttl)
    except ValueError as err:  # no Beam filesystem for the scheme: a missing extra
        _say(args, logging.ERROR, f"config error: output {config.output}: {err}")
        return EXIT_CONFIG
    with _released_on_sigterm(args, lock):
        try:
            lock.acquire()
        except LockHeld as err:
            _say(args, logging.WARNING, f"{err}; nothing done, try again later")
            return EXIT_LOCK_HELD
        except OSError as err:
            _say(args, logging.ERROR, f"cannot take the run lock {lock.path}: {_one_line(err)}")
            return EXIT_RUN_FAILED
        try:
            try:
                outcome = run(config, beam_args)
            finally:
                lock.release()
        except Exception as err:  # noqa: BLE001 - the run's one-line reason; details in the log
            logging.getLogger(__name__).debug("run failed", exc_info=True)
            _say(args, logging.ERROR, f"run failed: {_one_line(err)}")
            return EXIT_RUN_FAILED
    print(format_summary(outcome))
    ok, failed = feed_counts(outcome.report)
    # A Kafka source that fails fails the run (exit 4), so a run with Kafka partitions read
    # had a source that worked.
    if failed and not ok and not (outcome.report or {}).get("partitions"):
        return EXIT_ALL_SOURCES_FAILED
    return EXIT_OK


def _add_stream_parser(commands: argparse._SubParsersAction) -> None:
    stream = commands.add_parser(
        "stream",
        help="run continuously: alerts as articles arrive, Parquet committed per window",
        description="Poll every source without end: alerts are sent as each article is "
        "processed; articles, the alert log and Kafka offsets are committed once per window. "
        "SIGTERM or Ctrl-C commits the open window and stops. Arguments not listed here are "
        "Beam pipeline options (it runs on the DirectRunner).",
    )
    stream.add_argument("--config", help="YAML config file (default: bundled sample feeds)")
    stream.add_argument("--out", help="output folder or filesystem URL (overrides `output`)")
    stream.add_argument(
        "--window", type=_positive_seconds, metavar="SECONDS", help="overrides stream.window"
    )
    stream.add_argument(
        "--status-interval",
        type=_positive_seconds,
        metavar="SECONDS",
        help="overrides stream.status_interval",
    )
    stream.add_argument("-v", "--verbose", action="store_true", help="log progress")
    stream.add_argument(
        "--lock-ttl",
        type=_positive_seconds,
        default=DEFAULT_LOCK_TTL_S,
        metavar="SECONDS",
        help=f"as for run (default {DEFAULT_LOCK_TTL_S:g}); the stream holds the lock while it runs",
    )
    stream.add_argument("--log-format", choices=("text", "json"), default="text")
    stream.add_argument(
        "--max-runtime",
        type=_positive_seconds,
        metavar="SECONDS",
        help="drain and exit 0 after this long, for a supervisor to start it again: the "
        "DirectRunner's memory grows with every bundle it runs (see benchmarks/STREAMING.md)",
    )


def _stream(args: argparse.Namespace, beam_args: list[str]) -> int:
    import dataclasses
    import threading

    from newswatch.pipelines.config import load_config, resolve_output
    from newswatch.pipelines.errors import ConfigError
    from newswatch.pipelines.nlp import ModelNotInstalled, resolve_model

    try:
        config = load_config(args.config)
        if args.out:
            config = dataclasses.replace(config, output=resolve_output(args.out, None))
        overrides = {}
        if args.window:
            overrides["window_s"] = args.window
        if args.status_interval:
            overrides["status_interval_s"] = args.status_interval
        if overrides:
            config = dataclasses.replace(
                config, stream=dataclasses.replace(config.stream, **overrides)
            )
        if config.stream.tick_s > config.stream.window_s:
            raise ConfigError(
                args.config or "<command line>", "stream.window", "shorter than stream.tick"
            )
        resolve_model(config.nlp.model)
    except (ConfigError, ModelNotInstalled) as err:
        _say(args, logging.ERROR, f"config error: {err}")
        return EXIT_CONFIG

    from newswatch.pipelines.lock import LockHeld, RunLock
    from newswatch.pipelines.stream import StreamNotSupported, start_stream

    lock = RunLock(config.output, ttl_s=args.lock_ttl)
    try:
        lock.acquire()
    except LockHeld as err:
        _say(args, logging.WARNING, f"{err}; not started")
        return EXIT_LOCK_HELD
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():  # a second signal: give up the drain
            raise _Terminated(128 + signum)
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    abandoned = False
    try:
        try:
            stream = start_stream(config, beam_args)
        except StreamNotSupported as err:
            _say(args, logging.ERROR, f"config error: {err}")
            return EXIT_CONFIG
        except Exception as err:  # noqa: BLE001 - the one-line reason; details in the log
            logging.getLogger(__name__).debug("stream failed to start", exc_info=True)
            _say(args, logging.ERROR, f"stream failed: {_one_line(err)}")
            return EXIT_RUN_FAILED
        print(
            f"newswatch stream: {len(stream.plan.feeds)} feeds, "
            f"{sum(len(k.starts) for k in stream.plan.kafka)} Kafka partitions; "
            f"window {config.stream.window_s:g}s; output {config.output}",
            file=sys.stderr,
            flush=True,
        )
        started = time.monotonic()
        while not stream.wait(0.5):
            if args.max_runtime and time.monotonic() - started >= args.max_runtime:
                _say(args, logging.INFO, f"ran for {args.max_runtime:g}s (--max-runtime): draining")
                stopping.set()
            if stopping.is_set():
                stream.request_stop()
                if not stream.wait(config.stream.drain_timeout_s):
                    _say(
                        args,
                        logging.ERROR,
                        f"the open window did not commit within {config.stream.drain_timeout_s:g}s; "
                        "it is read again at the next start",
                    )
                    abandoned = True
                    return EXIT_RUN_FAILED
                break
        if stream.error is not None:
            _say(args, logging.ERROR, f"stream failed: {_one_line(stream.error)}")
            return EXIT_RUN_FAILED
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()
        if abandoned:
            # The pipeline is still running inside Beam and spaCy: finalizing the
            # interpreter under its threads can abort the process (SIGABRT) instead of
            # exiting 4. Nothing of the open window was committed, so leave at once.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_RUN_FAILED)


def _say(args: argparse.Namespace, level: int, message: str) -> None:
    """A one-line outcome on stderr: a JSON log line under --log-format json."""
    if args.log_format == "json":
        logging.getLogger("newswatch").log(level, message)
    else:
        print(f"newswatch: {message}", file=sys.stderr)


class _Terminated(SystemExit):
    pass


@contextmanager
def _released_on_sigterm(args: argparse.Namespace, lock: RunLock) -> Iterator[None]:
    """SIGTERM (a scheduler's timeout or stop) releases the run lock and exits 143 at once.

    Unwinding an exception through a running Beam pipeline can leave it waiting on its
    worker threads. The run itself is safe to cut anywhere (the next run completes or
    discards what it left); only the lock must not outlive it.
    """

    def terminate(signum: int, frame: FrameType | None) -> None:
        lock.release()
        _say(args, logging.WARNING, f"stopped by signal {signum}; run lock released")
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


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}"


if __name__ == "__main__":
    sys.exit(main())
