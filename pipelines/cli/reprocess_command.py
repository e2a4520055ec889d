"""``newswatch reprocess``: the current topic rules and alias table over stored articles.

    newswatch reprocess [--config FILE] [--topics FILE] [--aliases FILE] [--out DIR]
                        [--since DATE] [--until DATE] [--dry-run] [--alert]
                        [--articles-per-pass N] [--lock-ttl SECONDS] [--log-format text|json]
                        [BEAM_OPTIONS...]

The pipeline is ``pipelines/reprocess.py``, its commit ``pipelines/commit/rewrite.py``.
It holds the run lock as ``run`` does and exits with the same codes (``exits.py``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Sequence
from datetime import date
from functools import partial
from typing import IO, TYPE_CHECKING

from newswatch.pipelines.cli.console import (
    DEFAULT_LOCK_TTL_S,
    add_run_options,
    load_command_config,
    say,
)
from newswatch.pipelines.cli.exits import EXIT_CONFIG, EXIT_OK

if TYPE_CHECKING:  # imported where used: Beam is slow to import
    from newswatch.connectors.dataset.read import StoredFile
    from newswatch.pipelines.reprocess import ReprocessOutcome

__all__ = ["add_parser", "format_reprocess_summary", "main"]

EXAMPLE_TITLES = 3


def iso_day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def positive_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return int(text)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "reprocess",
        help="apply the current topic rules and alias table to stored articles",
        description="Re-run entity extraction and topic matching over stored articles and "
        "rewrite their entities and topics. Arguments not listed here are Beam pipeline "
        "options (--runner, --direct_num_workers, ...).",
    )
    add_run_options(
        parser,
        lock_help="a run lock not refreshed for this long was left by a killed run and is "
        f"taken over (default {DEFAULT_LOCK_TTL_S:g})",
    )
    parser.add_argument("--topics", help="a topics file to use instead of the config's")
    parser.add_argument("--aliases", help="an alias table to add over the config's")
    parser.add_argument("--since", type=iso_day, help="first dt= day (YYYY-MM-DD)")
    parser.add_argument("--until", type=iso_day, help="last dt= day, included")
    parser.add_argument(
        "--dry-run", action="store_true", help="change nothing; print what would change"
    )
    parser.add_argument("--alert", action="store_true", help="raise alerts for new matches")
    parser.add_argument(
        "--articles-per-pass",
        type=positive_count,
        default=2_500,
        metavar="N",
        help="articles read per pass (whole files; default 2500): bounds memory",
    )
    parser.set_defaults(handler=main, takes_beam_options=True)


def main(args: argparse.Namespace, beam_args: list[str]) -> int:
    from newswatch.pipelines.cli.explain_command import load_analysis_config
    from newswatch.pipelines.control.errors import ConfigError
    from newswatch.pipelines.core.installed import ModelNotInstalled

    try:
        config = load_command_config(args, load_analysis_config(args))
    except (ConfigError, ModelNotInstalled) as err:
        say(args, logging.ERROR, f"config error: {err}")
        return EXIT_CONFIG

    from newswatch.pipelines.cli.run_command import holding_run_lock
    from newswatch.pipelines.control.engines import is_dask, runner_of
    from newswatch.pipelines.control.memory import keep_memory_compact
    from newswatch.pipelines.reprocess import ReprocessOptions, reprocess

    if is_dask(runner_of(beam_args)):
        # Only newswatch run is made and tested for what Beam's DaskRunner lacks.
        say(args, logging.ERROR, "config error: newswatch reprocess does not run on Dask")
        return EXIT_CONFIG

    options = ReprocessOptions(
        since=args.since or "",
        until=args.until or "",
        dry_run=args.dry_run,
        alert=args.alert,
        articles_per_pass=args.articles_per_pass,
    )
    progress = TerminalProgress(sys.stderr) if _shows_progress(args) else None
    keep_memory_compact()
    try:
        code, outcome = holding_run_lock(
            args,
            config.output,
            partial(reprocess, config, beam_args, options, progress),
            "reprocess",
        )
    finally:
        if progress is not None:
            progress.close()
    if outcome is None:
        return code
    print(format_reprocess_summary(outcome))
    return EXIT_OK


def _shows_progress(args: argparse.Namespace) -> bool:
    # Only for a person at a terminal: a log file or a JSON log reader gets no \r lines.
    return args.log_format != "json" and sys.stderr.isatty()


class TerminalProgress:
    """One line on a terminal, redrawn every second: partitions, articles, articles/s,
    time left. Counts move when a pass commits; the time left counts down between."""

    def __init__(self, stream: IO[str], every_s: float = 1.0) -> None:
        self._stream = stream
        self._every_s = every_s
        self._started = time.monotonic()
        self._line = "reprocess: planning"
        self._left_at: tuple[float, float] | None = None  # (seconds left, when estimated)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def __call__(self, done: Sequence[StoredFile], planned: Sequence[StoredFile]) -> None:
        articles = sum(f.articles for f in done)
        total = sum(f.articles for f in planned)
        elapsed = time.monotonic() - self._started
        rate = articles / elapsed if articles and elapsed > 0 else 0.0
        with self._lock:
            self._left_at = ((total - articles) / rate, time.monotonic()) if rate else None
            self._line = (
                f"reprocess: partitions {_partitions_done(done, planned)}/"
                f"{len({f.day for f in planned})}  articles {articles}/{total}  "
                f"{rate:.1f} articles/s"
            )
        self._draw()

    def _draw(self) -> None:
        with self._lock:
            left = "–"
            if self._left_at is not None:
                seconds, since = self._left_at
                left = _duration(max(0.0, seconds - (time.monotonic() - since)))
            self._stream.write(f"\r{self._line}  time left {left}\x1b[K")
            self._stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self._every_s):
            self._draw()

    def close(self) -> None:
        self._stop.set()
        self._ticker.join()
        self._stream.write("\n")
        self._stream.flush()


def _partitions_done(done: Sequence[StoredFile], planned: Sequence[StoredFile]) -> int:
    finished = {f.path for f in done}
    days = {f.day for f in planned}
    return sum(1 for day in days if all(f.path in finished for f in planned if f.day == day))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_reprocess_summary(outcome: ReprocessOutcome) -> str:
    """The account printed at the end, like ``run``'s."""
    from newswatch.pipelines.core.topic_changes import (
        NEWLY_MATCHED,
        NO_LONGER_MATCHED,
        UNCHANGED,
    )

    first = outcome.run_ids[0] if outcome.run_ids else "(nothing stored)"
    committed = outcome.committed
    lines = [
        f"newswatch reprocess {first}" + (" (dry run: nothing changed)" if outcome.dry_run else "")
    ]
    if len(outcome.run_ids) > 1:
        lines.append(f"  passes    {len(outcome.run_ids)}: {', '.join(outcome.run_ids)}")
    for recovered in outcome.recovered:
        lines.append(f"  completed the interrupted commit of {recovered.run_id}")
    lines.append(
        f"  read      {outcome.articles} articles in {outcome.files} files, "
        f"{outcome.partitions} partitions"
    )
    changes = outcome.changes
    for topic in sorted(changes.topics):
        lines.append(
            f"  topic     {topic}: {changes.count(topic, NEWLY_MATCHED)} newly matched, "
            f"{changes.count(topic, NO_LONGER_MATCHED)} no longer matched, "
            f"{changes.count(topic, UNCHANGED)} unchanged"
        )
        for kind, mark in ((NEWLY_MATCHED, "+"), (NO_LONGER_MATCHED, "-")):
            lines.extend(f"              {mark} {t}" for t in changes.examples(topic, kind))
    if not outcome.dry_run:
        lines.append(
            f"  rewrote   {committed.get('articles_rewritten', 0)} articles in "
            f"{committed.get('files_rewritten', 0)} files (the others unchanged)"
        )
    if outcome.alert:
        lines.append(_alerts_line(outcome))
    lines.append(f"  output    {outcome.output}")
    return "\n".join(lines)


def _alerts_line(outcome: ReprocessOutcome) -> str:
    committed = outcome.committed
    verb = "would be raised" if outcome.dry_run else "raised"
    alerts = f"  alerts    {committed.get('alerts', 0)} {verb}"
    if committed.get("alerts_sent"):
        alerts += f", {committed['alerts_sent']} sent to Kafka"
    return alerts
