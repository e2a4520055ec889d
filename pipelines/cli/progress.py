"""Progress of a long run on a terminal: pass i of n, items read and stored, articles/s.

Shown only to a person watching: when stderr is a terminal and logs are text. A log file,
a pipe, a scheduler's capture or ``--log-format json`` get nothing of it (the run's summary
and its report say what was done).

>>> format_progress(PassProgress(2, 8, read=5000, stored=4980, elapsed_s=200.0))
'pass 2/8 done: 5,000 items read, 4,980 stored, 24.9 articles/s'
>>> format_progress(PassProgress(3, 8, read=5000, stored=4980, elapsed_s=200.0, running=True))
'pass 3/8 running: 5,000 items read, 4,980 stored, 24.9 articles/s'
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO

from newswatch.pipelines.run import PassProgress

__all__ = ["TerminalProgress", "format_progress", "progress_for"]


def format_progress(progress: PassProgress) -> str:
    """One line: where the run is, and what it did so far (every pass before this one and,
    once it is done, this one)."""
    state = "running" if progress.running else "done"
    rate = progress.stored / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
    return (
        f"pass {progress.number}/{progress.passes} {state}: {progress.read:,} items read, "
        f"{progress.stored:,} stored, {rate:.1f} articles/s"
    )


class TerminalProgress:
    """Rewrites one line of a terminal in place; the line is ended when the run is."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._width = 0

    def __call__(self, progress: PassProgress) -> None:
        line = format_progress(progress)
        # Spaces over what is left of a longer line before it.
        self._stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        if not progress.running and progress.number == progress.passes:
            self._stream.write("\n")
        self._stream.flush()


def progress_for(args: argparse.Namespace, stream: TextIO) -> Callable[[PassProgress], None] | None:
    """A progress display for a person at a terminal; None for logs, pipes and JSON logs."""
    if getattr(args, "log_format", "text") == "json":
        return None
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return None
    return TerminalProgress(stream)
