"""``newswatch eval LABELLED.jsonl``: the pipeline's judgments measured on labelled records.

    newswatch eval [--config FILE] [--topics FILE] [--aliases FILE] [--format text|json]
                   LABELLED.jsonl

The loop for writing a watched topic: rule, eval on your own labelled examples, read the
misses (``pipelines/quality/evaluation.py`` computes the figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from newswatch.pipelines.cli.exits import EXIT_CONFIG, EXIT_OK
from newswatch.pipelines.cli.explain_command import add_common_options, load_analysis_config
from newswatch.pipelines.control.errors import ConfigError

__all__ = ["add_parser", "main"]


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "eval",
        help="measure topics, copies and entities against labelled records",
        description="Run the pipeline's analysis over labelled JSON Lines records and print "
        "per topic precision, recall and F1 with every miss and false alarm, how wire copies "
        "and independent reports were clustered, and the recall of the gold entity names.",
    )
    add_common_options(parser)
    parser.add_argument("labelled", metavar="LABELLED.jsonl")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from newswatch.pipelines.core.installed import ModelNotInstalled
    from newswatch.pipelines.quality.evaluation import (
        LabelledFileError,
        evaluate_records,
        evaluation_json,
        format_text,
        read_labelled,
    )

    try:
        records = read_labelled(args.labelled)
        config = load_analysis_config(args)
        result = evaluate_records(records, config, args.labelled)
    except (LabelledFileError, ConfigError, ModelNotInstalled) as err:
        print(f"newswatch: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.format == "json":
        print(json.dumps(evaluation_json(result), ensure_ascii=False, indent=2))
    else:
        print(format_text(result))
    return EXIT_OK
