"""The ``newswatch`` command line: the parser of every command, and ``main``.

    newswatch run [--config FILE] [--out DIR] [--lock-ttl SECONDS] [--log-format text|json]
                  [BEAM_OPTIONS...]
    newswatch stream [--config FILE] [--out DIR] [--window SECONDS] [--status-interval SECONDS]
                     [--lock-ttl SECONDS] [--max-runtime SECONDS] [--log-format text|json]
                     [BEAM_OPTIONS...]
    newswatch reprocess [--config FILE] [--topics FILE] [--aliases FILE] [--out DIR]
                        [--since DATE] [--until DATE] [--dry-run] [--alert] [BEAM_OPTIONS...]
    newswatch broker [--port 9092]
    newswatch produce --topic NAME [--bootstrap HOST:PORT] (--sample | FILE.jsonl)
    newswatch alerts subscribe [--topic ID ...] [--bootstrap HOST:PORT | --dir DIR]
                               [--from-beginning] [--format text|json] [--group NAME]
    newswatch alerts status [--config FILE] [--out DIR] [--format text|json]
    newswatch alerts retry [--sink NAME] [--config FILE] [--out DIR]
    newswatch eval [--config FILE] [--topics FILE] [--aliases FILE] [--format text|json]
                   LABELLED.jsonl
    newswatch explain [--config FILE] [--topics FILE] [--aliases FILE] [--out DIR]
                      [--format text|json] (URL | ARTICLE_ID | -)
    newswatch sql [--out DIR] [QUERY] [--format table|csv|json]
    newswatch report [--out DIR] [--html FILE] [--since 30d] [--topic ID ...]

Each command lives in its own module, which adds its parser (``add_parser``) and handles
it (``main``); exit codes are in ``exits.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from newswatch.pipelines.cli import (
    alerts_delivery,
    broker,
    eval_command,
    explain_command,
    produce,
    report,
    reprocess_command,
    run_command,
    sql,
    stream_command,
    subscribe,
)
from newswatch.pipelines.cli.console import configure_logging
from newswatch.pipelines.cli.exits import EXIT_CONFIG

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``parse_known_args`` leaves Beam options of ``run`` aside."""
    parser = argparse.ArgumentParser(prog="newswatch", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_command.add_parser(commands)
    reprocess_command.add_parser(commands)
    stream_command.add_parser(commands)
    eval_command.add_parser(commands)
    explain_command.add_parser(commands)
    produce.add_parser(commands)
    broker.add_parser(commands)
    alerts = commands.add_parser("alerts", help="follow raised alerts")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    subscribe.add_parser(alert_commands)
    alerts_delivery.add_status_parser(alert_commands)
    alerts_delivery.add_retry_parser(alert_commands)
    sql.add_parser(commands)
    report.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, beam_args = build_parser().parse_known_args(argv)
    configure_logging(getattr(args, "verbose", False), getattr(args, "log_format", "text"))
    if getattr(args, "takes_beam_options", False):
        return int(args.handler(args, beam_args))
    if beam_args:
        print(f"newswatch: unknown arguments: {' '.join(beam_args)}", file=sys.stderr)
        return EXIT_CONFIG
    return int(args.handler(args))
