"""``newswatch sql`` over a dataset made by real runs: the README's queries, formats, errors.

The dataset: two runs of ``newswatch run`` over feeds served on 127.0.0.1 (the bundled
world-wire sample with an ETag, two sites carrying the same two arms stories, a feed
answering 500 and one with an entry that has neither link nor id). Expected rows are
computed from the files with pyarrow and json, not with DuckDB.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from articles import ARMS_STORIES
from outputs import read_articles, read_jsonl
from processes import IN_PROCESS
from servers import LocalHttpServer, feed_with_etag, respond

from newswatch.pipelines.cli import main
from newswatch.pipelines.explore.formats import MAX_CELL, format_rows
from newswatch.pipelines.explore.views import VIEWS, open_dataset
from newswatch.schemas import ARTICLE_SCHEMA

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"
SAMPLES = files("newswatch.pipelines").joinpath("defaults/samples")
TOPIC = "dprk-russia-arms"


def rss(items: list[dict[str, Any]]) -> bytes:
    entries = "".join(
        f"<item><title>{html.escape(i['title'])}</title>"
        + (f"<link>{i['link']}</link><guid>{i['link']}</guid>" if i.get("link") else "")
        + f"<pubDate>{i['published']:%a, %d %b %Y %H:%M:%S} GMT</pubDate>"
        f"<description>{html.escape(i['text'])}</description></item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://example.org/</link><description>t</description>{entries}</channel></rss>"
    ).encode()


def copies_feed(site: str, now: datetime, hours_later: int) -> bytes:
    """The two arms stories as ``site`` carries them: the same text under its own URLs."""
    return rss(
        [
            {
                "title": story["title"],
                "link": f"https://{site}.example/news/{n}",
                "published": now - timedelta(days=2 - n, hours=-hours_later),
                "text": story["text"],
            }
            for n, story in enumerate(ARMS_STORIES)
        ]
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("sql")
    out = folder / "data"
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    no_link = {"title": "An entry with no link", "published": now, "text": "No link, no id."}
    with LocalHttpServer() as server:
        server.routes.update(
            {
                "/wire.xml": feed_with_etag(SAMPLES.joinpath("world-wire.xml").read_bytes()),
                "/a.xml": respond(200, copies_feed("site-a", now, 0)),
                "/b.xml": respond(200, copies_feed("site-b", now, 3)),
                "/broken.xml": respond(500, b"boom"),
                "/odd.xml": respond(200, rss([no_link])),
            }
        )
        lines = ["sources:"]
        for name in ("wire", "a", "b", "broken", "odd"):
            lines += [
                f"  - name: {name}",
                "    type: rss",
                f"    url: {server.url(f'/{name}.xml')}",
            ]
        lines += [f"output: {out}", "alerts:", "  - type: file"]
        config = folder / "nw.yaml"
        config.write_text("\n".join(lines) + "\n", "utf-8")
        for _ in range(2):  # the second run: wire not modified, broken failing again
            assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    yield out


def run_sql(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: its own process, its exit code and both streams."""
    return subprocess.run(
        [sys.executable, "-m", "newswatch.pipelines.cli", "sql", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def readme_queries() -> dict[str, str]:
    """The README's example queries by their first line (a ``-- title`` comment)."""
    section = README.read_text("utf-8").split("## Looking at the data")[1].split("\n## ")[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.DOTALL)
    return {block.splitlines()[0].removeprefix("-- "): block for block in blocks}


# --- the expected rows, from the files --------------------------------------------------------


def seen(row: dict[str, Any]) -> datetime:
    return row["published_at"] or row["ingested_at"]


def on_topic(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if any(t["id"] == TOPIC for t in r["topics"])]


def daily_volume(out: Path) -> list[list[Any]]:
    days: dict[Any, list[str]] = defaultdict(list)
    for row in on_topic(read_articles(out).to_pylist()):
        days[row["dt"]].append(row["cluster_id"])
    return [[day, len(set(c)), len(c)] for day, c in sorted(days.items())]


def top_entities(out: Path) -> list[list[Any]]:
    stories: dict[str, set[str]] = defaultdict(set)
    for row in on_topic(read_articles(out).to_pylist()):
        for entity in row["entities"]:
            stories[entity["canonical"]].add(row["cluster_id"])
    ranked = sorted(stories.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [[name, len(clusters)] for name, clusters in ranked[:10]]


def most_copies(out: Path) -> list[list[Any]]:
    clusters: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_articles(out).to_pylist():
        clusters[row["cluster_id"]].append(row)
    rows = []
    for cluster_id, copies in clusters.items():
        first = min(copies, key=seen)
        rows.append(
            [
                cluster_id,
                len(copies),
                len({c["source"] for c in copies}),
                seen(first),
                first["title"],
            ]
        )
    rows.sort(key=lambda r: (-r[1], r[3], r[0]))
    return rows[:10]


def failing_sources(out: Path) -> list[list[Any]]:
    runs: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for path in sorted((out / "_state" / "runs").glob("*.json")):
        report = json.loads(path.read_text("utf-8"))
        for feed in report["feeds"]:
            runs[feed["source"]].append((report["run_id"], feed))
    rows = []
    for source, feeds in runs.items():
        failed = [f for _, f in sorted(feeds, key=lambda item: item[0]) if f["status"] == "failed"]
        if failed:
            rows.append([source, len(failed), len(feeds), failed[-1]["error"]])
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def rejections(out: Path) -> list[list[Any]]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record in read_jsonl(out, "rejected"):
        groups[record["source"], record["reason"]].append(record["rejected_at"])
    rows = [
        [source, reason, len(times), max(datetime.fromisoformat(t) for t in times)]
        for (source, reason), times in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))


EXPECTED: dict[str, Callable[[Path], list[list[Any]]]] = {
    "A topic's daily volume: distinct stories and every copy": daily_volume,
    "Top entities co-occurring with a topic, by the stories they appear in": top_entities,
    "Stories with the most copies": most_copies,
    "Failing sources: feeds that failed in any run, with the latest error": failing_sources,
    "Rejected inputs by source and reason": rejections,
}


def as_text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def in_table(value: Any) -> str:
    text = "NULL" if value is None else as_text(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def parse_table(output: str) -> tuple[list[str], list[list[str]]]:
    """Columns and cells of the table format, split where the dashes under the header are."""
    header, dashes, *rows, footer = output.splitlines()
    spans = [m.span() for m in re.finditer(r"-+", dashes)]
    spans[-1] = (spans[-1][0], None)  # type: ignore[assignment]
    cells = [[line[a:b].strip() for a, b in spans] for line in rows]
    assert footer == f"({len(rows)} row{'' if len(rows) == 1 else 's'})"
    return [header[a:b].strip() for a, b in spans], cells


# --- the tests --------------------------------------------------------------------------------


def test_the_dataset_has_what_the_queries_are_about(dataset: Path) -> None:
    assert all(len(EXPECTED[title](dataset)) > 0 for title in EXPECTED)
    assert most_copies(dataset)[0][1:3] == [2, 2]  # each arms story on both sites
    assert set(readme_queries()) == set(EXPECTED)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_readme_queries_return_the_expected_rows(dataset: Path, fmt: str) -> None:
    for title, query in readme_queries().items():
        result = run_sql("--out", str(dataset), "--format", fmt, query)
        assert result.returncode == 0, (title, result.stderr)
        expected = EXPECTED[title](dataset)
        if fmt == "table":
            _, cells = parse_table(result.stdout)
            assert cells == [[in_table(v) for v in row] for row in expected], title
        elif fmt == "csv":
            _, *rows = list(csv.reader(io.StringIO(result.stdout)))
            assert rows == [[as_text(v) for v in row] for row in expected], title
        else:
            records = [json.loads(line) for line in result.stdout.splitlines()]
            values = [list(record.values()) for record in records]
            assert values == [
                [json.loads(json.dumps(v, default=as_text)) for v in row] for row in expected
            ], title


def test_views_have_the_schema_types_also_when_the_dataset_is_empty(
    dataset: Path, tmp_path: Path
) -> None:
    full, empty = open_dataset(dataset), open_dataset(tmp_path / "nothing-here")
    for view in VIEWS:
        assert full.sql(f"DESCRIBE {view}").fetchall() == empty.sql(f"DESCRIBE {view}").fetchall()
        assert empty.sql(f"SELECT count(*) FROM {view}").fetchall() == [(0,)]
    arrow = full.sql("SELECT * EXCLUDE (dt) FROM articles").arrow()
    schema = arrow.schema if isinstance(arrow, pa.Table) else arrow.read_all().schema
    assert schema.names == ARTICLE_SCHEMA.names
    for field in ARTICLE_SCHEMA:
        assert schema.field(field.name).type.equals(field.type, check_metadata=False), field.name


def test_views_have_the_columns_the_writers_write(dataset: Path) -> None:
    connection = open_dataset(dataset)

    def columns(view: str) -> list[str]:
        return [row[0] for row in connection.sql(f"DESCRIBE {view}").fetchall()]

    [alert] = read_jsonl(dataset, "alerts")[:1]
    assert sorted(columns("alerts")) == sorted([*alert, "dt"])
    rejection = read_jsonl(dataset, "rejected")[0]
    [(locator,)] = connection.sql("SELECT locator FROM rejected LIMIT 1").fetchall()
    own = [c for c in columns("rejected") if c not in ("locator", "dt")]
    assert sorted([*own, *json.loads(locator)]) == sorted(rejection)
    report = json.loads(next((dataset / "_state" / "runs").glob("*.json")).read_text("utf-8"))
    assert set(columns("runs")) >= set(report["committed"]) | {"run_id", "started_at"}
    assert set(columns("feeds")) - {"run_id", "started_at"} == set(report["feeds"][0])
    [(runs, failed)] = connection.sql("SELECT count(*), sum(feeds_failed) FROM runs").fetchall()
    assert (runs, failed) == (2, 2)


def test_a_bad_query_is_one_line_and_exit_2(dataset: Path) -> None:
    for query in ("SELECT nope FROM articles", "SELEKT 1", "SELECT * FROM missing_view"):
        result = run_sql("--out", str(dataset), query)
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("newswatch sql: ")
        assert "Traceback" not in result.stderr


def test_the_prompt_reads_statements_until_a_semicolon_and_stops_at_quit(dataset: Path) -> None:
    script = (
        ".schema feeds\n"
        "SELECT count(*) AS n\n  FROM articles;\n"
        "SELECT nope;\n"
        ".format csv\n"
        "SELECT 'one' AS a, 2 AS b;\n"
        ".quit\n"
        "SELECT 'never' AS c;\n"
    )
    result = run_sql("--out", str(dataset), stdin=script)
    schema, table, rest = re.split(r"(?m)^(?=n$)|(?<=\(1 row\)\n)", result.stdout)
    described = open_dataset(dataset).sql("DESCRIBE feeds").fetchall()
    assert [line.split(None, 1) for line in schema.splitlines()] == [
        [name, kind] for name, kind, *_ in described
    ]
    assert parse_table(table.rstrip("\n")) == (["n"], [[str(read_articles(dataset).num_rows)]])
    assert list(csv.reader(io.StringIO(rest))) == [["a", "b"], ["one", "2"]]  # not 'never'
    assert result.stderr.startswith("newswatch sql: ") and result.stderr.count("\n") == 1
    assert result.returncode == 2  # one statement failed


def test_end_of_input_ends_the_prompt_and_runs_a_last_statement(dataset: Path) -> None:
    result = run_sql("--out", str(dataset), "--format", "json", stdin="SELECT 42 AS answer")
    assert result.returncode == 0
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"answer": 42}]


def test_an_empty_folder_gives_empty_views(tmp_path: Path) -> None:
    result = run_sql("--out", str(tmp_path / "none"), "--format", "csv", "SELECT * FROM articles")
    assert result.returncode == 0
    assert next(csv.reader(io.StringIO(result.stdout))) == [*ARTICLE_SCHEMA.names, "dt"]
    assert "no dataset at" in result.stderr


NASTY = [
    None,
    'comma, "quote"\nnew line',
    "ünïcødé ✓",
    b"\x00\xff",
    [{"id": "t", "score": 0.5, "evidence": ["a", None]}],
    {"k": date(2024, 5, 1)},
    datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
    timedelta(days=1, hours=2),
    Decimal("1.50"),
    True,
]


def test_every_format_writes_the_nasty_values() -> None:
    columns = [f"c{i}" for i in range(len(NASTY))]
    [row] = list(csv.reader(io.StringIO(format_rows(columns, [NASTY], "csv"))))[1:]
    assert row == [
        "",
        'comma, "quote"\nnew line',
        "ünïcødé ✓",
        "AP8=",
        '[{"id": "t", "score": 0.5, "evidence": ["a", null]}]',
        '{"k": "2024-05-01"}',
        "2024-05-01T08:30:00+00:00",
        "1 day, 2:00:00",
        "1.5",
        "true",
    ]
    [record] = [json.loads(line) for line in format_rows(columns, [NASTY], "json").splitlines()]
    assert list(record.values()) == [
        None, NASTY[1], NASTY[2], "AP8=", NASTY[4], {"k": "2024-05-01"},
        "2024-05-01T08:30:00+00:00", "1 day, 2:00:00", 1.5, True,
    ]  # fmt: skip
    table = format_rows(columns, [NASTY], "table").splitlines()
    assert len(table) == 4  # header, dashes, one line for the row, the count
    assert table[2].startswith("NULL") and 'comma, "quote" new line' in table[2]
