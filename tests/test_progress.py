"""A long run's progress line: its text, and that only a person at a terminal sees it."""

from __future__ import annotations

import argparse
import io

import pytest

from newswatch.pipelines.cli.progress import TerminalProgress, format_progress, progress_for
from newswatch.pipelines.run import PassProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        (
            PassProgress(1, 3, read=0, stored=0, elapsed_s=0.0, running=True),
            "pass 1/3 running: 0 items read, 0 stored, 0.0 articles/s",
        ),
        (
            PassProgress(1, 3, read=2500, stored=2431, elapsed_s=101.3),
            "pass 1/3 done: 2,500 items read, 2,431 stored, 24.0 articles/s",
        ),
        (
            PassProgress(12, 12, read=30_000, stored=0, elapsed_s=7.5),
            "pass 12/12 done: 30,000 items read, 0 stored, 0.0 articles/s",
        ),
    ],
)
def test_format_progress(progress: PassProgress, line: str) -> None:
    assert format_progress(progress) == line


def test_the_line_is_rewritten_in_place_and_ended_with_the_run() -> None:
    terminal = Terminal()
    show = TerminalProgress(terminal)
    show(PassProgress(1, 2, read=0, stored=0, elapsed_s=1.0, running=True))
    show(PassProgress(1, 2, read=10, stored=9, elapsed_s=2.0))
    assert "\n" not in terminal.getvalue()
    show(PassProgress(2, 2, read=20, stored=18, elapsed_s=4.0))
    lines = terminal.getvalue().split("\r")
    assert lines[-1] == "pass 2/2 done: 20 items read, 18 stored, 4.5 articles/s\n"
    # A shorter line covers what is left of the longer one before it.
    assert len(lines[2]) == len(lines[1])


@pytest.mark.parametrize(
    ("stream", "log_format", "shown"),
    [
        (Terminal(), "text", True),
        (Terminal(), "json", False),
        (io.StringIO(), "text", False),  # a pipe, a file, a scheduler's capture
    ],
)
def test_progress_is_for_a_terminal_with_text_logs(
    stream: io.StringIO, log_format: str, shown: bool
) -> None:
    show = progress_for(argparse.Namespace(log_format=log_format), stream)
    assert (show is not None) == shown
    if show is not None:
        show(PassProgress(1, 1, read=1, stored=1, elapsed_s=1.0))
    assert bool(stream.getvalue()) == shown
