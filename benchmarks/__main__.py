"""``python -m benchmarks`` (``make bench``): the end-to-end throughput suite.

    .venv/bin/python -m benchmarks                      # N = 1,000, 5,000, 20,000; rss, kafka; W = default, 1
    .venv/bin/python -m benchmarks --quick              # N = 200, 1,000: a smoke run
    .venv/bin/python -m benchmarks --sizes 5000 --inputs rss --workers default,2
    .venv/bin/python -m benchmarks --sizes 1000 --inputs rss --workers default --repeats 5
    .venv/bin/python -m benchmarks --profile --sizes 1000   # where the pipeline's own time goes

Prints a table and writes ``benchmarks/results/throughput-<time>.json``. The near-duplicate
quality benchmark is separate: ``python -m benchmarks.near_duplicates``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.corpus import DEFAULT_CORPUS

FULL_SIZES = (1_000, 5_000, 20_000)
QUICK_SIZES = (200, 1_000)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _workers(text: str) -> list[int]:
    """Worker counts; ``default`` (0) is the run without Beam options, what users get."""
    return [
        0 if part.strip() == "default" else int(part) for part in text.split(",") if part.strip()
    ]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - {"rss", "kafka"}
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown inputs: {', '.join(sorted(unknown))}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", type=_ints, help="article counts (default 1000,5000,20000)")
    parser.add_argument("--inputs", type=_names, default=["rss", "kafka"], help="rss,kafka")
    parser.add_argument(
        "--workers",
        type=_workers,
        default=[0, 1],
        help="Beam workers; 'default' is the run without Beam options (default: default,1)",
    )
    parser.add_argument("--quick", action="store_true", help="sizes 200,1000: a smoke run")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="articles.jsonl")
    parser.add_argument("--label", default="", help="a tag for the results file (before, after)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare spaCy limit")
    parser.add_argument("--no-startup", action="store_true", help="skip the startup-cost runs")
    parser.add_argument(
        "--retries",
        type=int,
        default=1,
        help="measure again when other processes loaded the machine (default 1)",
    )
    parser.add_argument(
        "--repeats",
        type=_positive,
        default=1,
        metavar="K",
        help="rounds of runs per size, bare spaCy measured between them; verdicts take the "
        "median round (default 1)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long each measurement waits for other processes to quiet down (default 600)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the pipeline's own code (spaCy excluded) instead of the throughput suite",
    )
    args = parser.parse_args(argv)
    sizes = args.sizes or (list(QUICK_SIZES) if args.quick else list(FULL_SIZES))
    from benchmarks import measure

    measure.QUIET_WAIT_S = args.quiet_wait
    if args.profile:
        from benchmarks.profile_stages import profile

        profile(sizes[0], args.corpus, args.label)
        return 0
    from benchmarks.throughput import run_suite

    run_suite(
        sizes,
        args.inputs,
        args.workers,
        corpus_path=args.corpus,
        label=args.label,
        with_bare=not args.no_bare,
        with_startup=not args.no_startup,
        retries=args.retries,
        repeats=args.repeats,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
