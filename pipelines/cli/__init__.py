"""The ``newswatch`` command line: one module per command, ``main`` dispatches."""

from newswatch.pipelines.cli.commands import main

__all__ = ["main"]
