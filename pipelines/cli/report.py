"""``newswatch report``: one self-contained HTML page about the stored dataset.

    newswatch report --out newswatch-data --html report.html --since 30d
    newswatch report --topic dprk-russia-arms --since 2024-01-01

Per watched topic: the daily volume (stories and every copy) with spikes marked, the top
stories with their evidence, the entities that appear with it; then the latest alerts,
source health, rejections by reason and the run history. The file opens offline: styles and
SVG charts are inside it, it has no script and asks for nothing from any host.

Exit codes: 0 written; 2 a bad option or a folder that is not a dataset; 4 the dataset could
not be read (a damaged file: DuckDB's message says which) or the page not written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from newswatch.pipelines.cli.sql import add_out_argument, dataset_root, first_line

__all__ = ["add_parser", "main"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILED = 4
DEFAULT_HTML = "newswatch-report.html"


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "report",
        help="write an HTML report of the dataset: volumes, top stories, entities, health",
        description="Write one HTML file (no script, opens offline) with per-topic daily "
        "volumes and spikes, top stories, co-occurring entities, latest alerts, source "
        "health and run history.",
    )
    add_out_argument(parser)
    parser.add_argument(
        "--html", default=DEFAULT_HTML, help=f"the page to write (default {DEFAULT_HTML})"
    )
    parser.add_argument(
        "--since",
        default="30d",
        help="30d: the 30 days up to the newest stored article (default); or a date, YYYY-MM-DD",
    )
    parser.add_argument(
        "--topic",
        action="extend",
        nargs="+",
        default=[],
        metavar="ID",
        help="only these watched topics (default: every topic with articles in the window)",
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    import duckdb

    from newswatch.pipelines.explore.report_data import parse_since, query_report
    from newswatch.pipelines.explore.report_html import render_report
    from newswatch.pipelines.explore.views import open_dataset

    started = time.perf_counter()
    try:
        since = parse_since(args.since)
        root = dataset_root(args.out)
    except ValueError as err:
        print(f"newswatch report: {err}", file=sys.stderr)
        return EXIT_USAGE
    if not root.is_dir():
        print(f"newswatch report: no dataset at {root}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = query_report(open_dataset(root), str(root), since, args.topic)
    except duckdb.Error as err:
        print(f"newswatch report: cannot read {root}: {first_line(err)}", file=sys.stderr)
        return EXIT_FAILED
    page = render_report(report).encode("utf-8")
    target = Path(args.html)
    try:
        target.write_bytes(page)
    except OSError as err:
        print(f"newswatch report: cannot write {target}: {err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"newswatch report: {target} ({len(page) / 1024:.0f} KiB; "
        f"{len(report.topics)} topic{'' if len(report.topics) == 1 else 's'}, "
        f"{report.articles} articles from {report.window.start} to {report.window.end}) "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return EXIT_OK
