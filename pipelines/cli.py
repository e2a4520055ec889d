"""The ``newswatch`` command line.

    newswatch run [--config FILE] [--out DIR] [BEAM_OPTIONS...]
    newswatch broker [--port 9092]
    newswatch alerts subscribe [--topic ID ...] [--bootstrap HOST:PORT | --dir DIR]
                               [--from-beginning] [--format text|json] [--group NAME]

Exit codes, for schedulers: 0 success, 2 configuration error, 3 every source failed,
4 the run failed while writing or committing its output.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_ALL_SOURCES_FAILED = 3
EXIT_RUN_FAILED = 4

# Beam logs a warning at import about optional Google Cloud clients we do not use.
_QUIET_MESSAGES = ("apitools not found",)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_QUIET_MESSAGES)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropNoise())


def _parser() -> argparse.ArgumentParser:
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
    args, beam_args = _parser().parse_known_args(argv)
    _configure_logging(getattr(args, "verbose", False))
    if beam_args and args.command != "run":
        print(f"newswatch: unknown arguments: {' '.join(beam_args)}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "run":
        return _run(args, beam_args)
    if args.command == "broker":
        return _broker(args)
    return _subscribe(args)


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
    if args.dir:
        if not Path(args.dir).is_dir():
            print(f"newswatch: no alerts folder at {args.dir}", file=sys.stderr)
            return EXIT_CONFIG
        cursor = (
            Path(args.dir).parent / "_state" / "subscribers" / f"{args.group}.json"
            if args.group
            else None
        )
        alerts = follow_directory(args.dir, from_beginning=args.from_beginning, cursor=cursor)
    else:
        connection = KafkaConnection(bootstrap_servers=tuple(args.bootstrap.split(",")))
        alerts = follow_kafka(
            connection, args.alerts_topic, group=args.group, from_beginning=args.from_beginning
        )
    try:
        for alert in alerts:
            if wanted.accepts(alert):
                print(format_alert(alert, args.format), flush=True)
    except KeyboardInterrupt:
        return EXIT_OK
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
        print(f"newswatch: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG

    from newswatch.pipelines.batch import run
    from newswatch.pipelines.summary import feed_counts, format_summary

    try:
        outcome = run(config, beam_args)
    except Exception as err:  # noqa: BLE001 - the run's one-line reason; details in the log
        logging.getLogger(__name__).debug("run failed", exc_info=True)
        print(f"newswatch: run failed: {_one_line(err)}", file=sys.stderr)
        return EXIT_RUN_FAILED
    print(format_summary(outcome))
    ok, failed = feed_counts(outcome.report)
    if failed and not ok:
        return EXIT_ALL_SOURCES_FAILED
    return EXIT_OK


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}"


if __name__ == "__main__":
    sys.exit(main())
