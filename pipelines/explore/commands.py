"""The ``sql`` and ``report`` subcommands, registered on the ``newswatch`` command line."""

from __future__ import annotations

import argparse

from newswatch.pipelines.explore import report_command, sql_command

__all__ = ["add_parser", "main"]


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    sql_command.add_parser(subcommands)
    report_command.add_parser(subcommands)


def main(args: argparse.Namespace) -> int:
    if args.command == "sql":
        return sql_command.main(args)
    return report_command.main(args)
