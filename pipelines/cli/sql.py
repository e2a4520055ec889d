"""``newswatch sql``: SQL over the stored dataset, one query or an interactive prompt.

    newswatch sql --out newswatch-data "SELECT source, count(*) FROM articles GROUP BY ALL"
    newswatch sql --out newswatch-data --format csv < my-queries.sql
    newswatch sql                                       # a prompt; end statements with ;

The views are ``articles``, ``alerts``, ``rejected``, ``runs`` and ``feeds``
(``views.py``). A query that fails prints one line (DuckDB's message) and exits 2; at the
prompt the next statement runs as usual, and the exit code at the end is 2 if any failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from newswatch.pipelines.explore.formats import FORMATS, format_rows

if TYPE_CHECKING:  # imported where used, so that `newswatch --help` stays quick
    import duckdb

__all__ = ["add_out_argument", "add_parser", "dataset_root", "first_line", "main"]

EXIT_OK = 0
EXIT_QUERY_FAILED = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
# The bundled config's `output` (pipelines/defaults/config.yaml).
DEFAULT_OUT = "./newswatch-data"
PROMPT = "newswatch> "
MORE = "      ...> "
HELP = """Statements end with ';' and may span lines. Views: articles, alerts, rejected, runs, feeds.
  .tables                 the views
  .schema VIEW            a view's columns and their types
  .format table|csv|json  how results are printed
  .quit                   leave (so does end of input, Ctrl-D)"""


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "sql",
        help="query the stored dataset with SQL (DuckDB)",
        description="Run a SQL query over the dataset's views (articles, alerts, rejected, "
        "runs, feeds), or, without QUERY, read statements ending with ';' from a prompt. "
        "See README 'Looking at the data' for useful queries.",
    )
    add_out_argument(parser)
    parser.add_argument("query", nargs="?", metavar="QUERY", help="one SQL statement")
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="table (default), csv or JSON Lines"
    )
    parser.set_defaults(handler=main)


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"the dataset folder (default {DEFAULT_OUT})"
    )


def dataset_root(out: str) -> Path:
    """The dataset folder; raises ValueError for a URL (DuckDB here reads local files only)."""
    if "://" in out and not out.startswith("file://"):
        raise ValueError(f"{out}: only a local folder can be queried")
    return Path(out.removeprefix("file://")).expanduser()


def first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def run_statement(connection: duckdb.DuckDBPyConnection, statement: str, fmt: str) -> str | None:
    """The statement's result as text; None when it returns no rows (SET, CREATE ...)."""
    cursor = connection.execute(statement)
    if cursor.description is None:
        return None
    columns = [d[0] for d in cursor.description]
    return format_rows(columns, cursor.fetchall(), fmt)


def main(args: argparse.Namespace) -> int:
    import duckdb

    from newswatch.pipelines.explore.views import open_dataset

    try:
        root = dataset_root(args.out)
    except ValueError as err:
        print(f"newswatch sql: {err}", file=sys.stderr)
        return EXIT_QUERY_FAILED
    if not root.is_dir():
        print(f"newswatch sql: no dataset at {root} yet; the views are empty", file=sys.stderr)
    connection = open_dataset(root)
    if args.query is not None:
        try:
            text = run_statement(connection, args.query, args.format)
        except duckdb.Error as err:
            print(f"newswatch sql: {first_line(err)}", file=sys.stderr)
            return EXIT_QUERY_FAILED
        except KeyboardInterrupt:  # Ctrl-C during a long query
            return EXIT_INTERRUPTED
        if text:
            print(text)
        return EXIT_OK
    return Prompt(connection, args.format, sys.stdin, sys.stdout).run()


class Prompt:
    """Reads statements (lines up to one ending with ';') and prints each result."""

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, fmt: str, stdin: TextIO, stdout: TextIO
    ) -> None:
        self._connection = connection
        self._format = fmt
        self._stdin = stdin
        self._stdout = stdout
        # Prompts only for a person at a terminal; piped input gets just the results.
        self._interactive = stdin.isatty() and stdout.isatty()
        self._buffer: list[str] = []  # the lines of the statement being read
        self.failed = 0

    def _lines(self) -> Iterator[str]:
        """Input lines; at a terminal the prompt says whether a statement is open."""
        while True:
            if self._interactive:
                try:
                    yield input(MORE if self._buffer else PROMPT)
                except EOFError:
                    print(file=self._stdout)
                    return
                except KeyboardInterrupt:  # Ctrl-C drops the statement being typed
                    print(file=self._stdout)
                    self._buffer = []
            else:
                line = self._stdin.readline()
                if not line:
                    return
                yield line.rstrip("\n")

    def run(self) -> int:
        if self._interactive:
            import readline  # noqa: F401 - line editing and history for input()

            print("newswatch sql: .help for help, .quit to leave", file=self._stdout)
        for line in self._lines():
            if not self._buffer and line.strip().startswith("."):
                if not self._command(line.strip()):
                    break
                continue
            if self._buffer or line.strip():
                self._buffer.append(line)
            if line.rstrip().endswith(";"):
                self._execute("\n".join(self._buffer))
                self._buffer = []
        if any(line.strip() for line in self._buffer):  # a last statement without ';'
            self._execute("\n".join(self._buffer))
        return EXIT_QUERY_FAILED if self.failed else EXIT_OK

    def _execute(self, statement: str) -> None:
        import duckdb

        try:
            text = run_statement(self._connection, statement, self._format)
        except duckdb.Error as err:
            self.failed += 1
            print(f"newswatch sql: {first_line(err)}", file=sys.stderr, flush=True)
            return
        if text:
            print(text, file=self._stdout, flush=True)

    def _command(self, command: str) -> bool:
        """Runs a dot-command; False when it ends the prompt."""
        name, _, argument = command.partition(" ")
        if name in (".quit", ".exit", ".q"):
            return False
        if name == ".format" and argument.strip() in FORMATS:
            self._format = argument.strip()
        elif name == ".tables":
            self._execute(
                "SELECT table_name AS view, count(*) AS columns FROM information_schema.columns "
                "GROUP BY ALL ORDER BY view"
            )
        elif name == ".schema" and argument.strip():
            # Whole types, one a line: a struct's type is longer than a table cell.
            columns = self._connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = $name ORDER BY ordinal_position",
                {"name": argument.strip()},
            ).fetchall()
            width = max((len(c) for c, _ in columns), default=0)
            print("\n".join(f"{c.ljust(width)}  {t}" for c, t in columns), file=self._stdout)
        else:
            print(HELP, file=self._stdout)
        return True
