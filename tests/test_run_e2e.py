"""The whole bounded run on DirectRunner, through the command line, read back from disk."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import duckdb
import jsonschema
import pyarrow as pa
import pytest
from configs import rss_config
from outputs import dataset_files, read_articles, read_jsonl, run_reports
from servers import LocalHttpServer, feed_with_etag, respond

from newswatch.pipelines.cli import main
from newswatch.schemas import ARTICLE_SCHEMA, alert_json_schema

pytestmark = pytest.mark.slow

SAMPLES = files("newswatch.pipelines").joinpath("defaults/samples")
ARMS_DEAL_URL = (
    "https://news.worldwire.example/world/asia/2024/01/04/north-korea-russia-arms-deal-white-house"
)
MISSILE_TEST_TITLE = "Kim Jong Un oversees test of new Hwasong-19 ICBM"
IRAN_DRONES_TITLE = "Iran has delivered ballistic missiles to Russia, Blinken says"


def run_cli(*args: str) -> int:
    return main(["run", *args])


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("default") / "data"
    assert run_cli("--out", str(out)) == 0
    return out


def test_default_run_stores_every_sample_article_once(default_run: Path) -> None:
    table = read_articles(default_run)
    # 15 items in the two bundled feeds; the treaty story is in both (once with utm_ tags).
    assert table.num_rows == 14
    assert len(set(table.column("article_id").to_pylist())) == 14
    for name in ARTICLE_SCHEMA.names:
        assert table.schema.field(name).type == ARTICLE_SCHEMA.field(name).type, name
    assert table.schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    rows = table.to_pylist()
    assert all(r["cluster_id"] == r["article_id"] and r["is_duplicate"] is False for r in rows)
    assert all(not r["url"].count("utm_") for r in rows)
    for row in rows:
        assert row["dt"] == (row["published_at"] or row["ingested_at"]).strftime("%Y-%m-%d")
        assert "<p>" not in row["text"] and row["text"]


def test_default_run_finds_canonical_entities(default_run: Path) -> None:
    row = next(r for r in read_articles(default_run).to_pylist() if r["url"] == ARMS_DEAL_URL)
    canonical = {e["canonical"] for e in row["entities"]}
    assert {"North Korea", "Russia", "Kim Jong Un", "Vladimir Putin"} <= canonical
    assert {"Jake Sullivan", "Sergei Shoigu"} <= canonical
    pyongyang = [e for e in row["entities"] if e["text"] == "Pyongyang"]
    assert pyongyang and pyongyang[0]["canonical"] == "North Korea"


def test_default_run_alerts_on_the_arms_article_and_not_on_near_misses(default_run: Path) -> None:
    alerts = read_jsonl(default_run, "alerts")
    schema = alert_json_schema()
    for alert in alerts:
        jsonschema.validate(alert, schema)
    arms = [a for a in alerts if a["topic"] == "dprk-russia-arms"]
    assert ARMS_DEAL_URL in {a["url"] for a in arms}
    deal = next(a for a in arms if a["url"] == ARMS_DEAL_URL)
    assert 0 < deal["score"] <= 1 and deal["evidence"]
    assert {"North Korea", "Russia"} <= set(deal["entities"])
    titles = {a["title"] for a in arms}
    assert MISSILE_TEST_TITLE not in titles
    assert IRAN_DRONES_TITLE not in titles
    assert len({(a["topic"], a["cluster_id"]) for a in alerts}) == len(alerts)
    # The stored article carries the same topic, score and evidence.
    row = next(r for r in read_articles(default_run).to_pylist() if r["url"] == ARMS_DEAL_URL)
    topic = next(t for t in row["topics"] if t["id"] == "dprk-russia-arms")
    assert topic["score"] == deal["score"] and topic["evidence"] == deal["evidence"]


def test_output_reads_as_one_dataset_in_duckdb(default_run: Path) -> None:
    pattern = str(default_run / "articles" / "*" / "*.parquet")
    [(count, with_topics)] = duckdb.sql(
        f"SELECT count(*), count(*) FILTER (WHERE len(topics) > 0) "
        f"FROM read_parquet('{pattern}', hive_partitioning = true)"
    ).fetchall()
    assert count == 14
    assert with_topics == sum(1 for r in read_articles(default_run).to_pylist() if r["topics"])


def test_rerun_adds_no_rows_and_no_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    assert run_cli("--out", str(out)) == 0
    first_files = dataset_files(out)
    first_rows = read_articles(out).num_rows
    first_alerts = read_jsonl(out, "alerts")
    capsys.readouterr()
    assert run_cli("--out", str(out)) == 0
    summary = capsys.readouterr().out
    assert dataset_files(out) == first_files
    assert read_articles(out).num_rows == first_rows == 14
    assert read_jsonl(out, "alerts") == first_alerts
    first, rerun = run_reports(out)
    assert first["committed"]["articles"] == 14
    assert rerun["committed"]["articles"] == rerun["committed"]["alerts"] == 0
    assert sum(f["entries"] for f in rerun["feeds"]) == 15  # all read again, none new
    # The account for people is printed, naming the run (its numbers are the report's).
    assert summary.splitlines()[0] == f"newswatch run {rerun['run_id']}"
    assert not (out / "_staging").exists() or not any((out / "_staging").iterdir())


def test_a_malformed_feed_beside_a_good_one(tmp_path: Path, http_server: LocalHttpServer) -> None:
    good = SAMPLES.joinpath("world-wire.xml").read_bytes()
    http_server.routes["/good.xml"] = respond(200, good, Content_Type="application/rss+xml")
    http_server.routes["/page.html"] = respond(
        200, b"<html><body><p>Not a feed</p></body></html>", Content_Type="text/html"
    )
    http_server.routes["/gone.xml"] = respond(500, b"boom")
    out = tmp_path / "data"
    config = rss_config(
        tmp_path / "nw.yaml",
        [
            ("good", http_server.url("/good.xml")),
            ("html", http_server.url("/page.html")),
            ("broken", http_server.url("/gone.xml")),
        ],
        out,
    )
    assert run_cli("--config", str(config)) == 0
    [report] = run_reports(out)
    feeds = {f["source"]: f for f in report["feeds"]}
    assert {name: f["status"] for name, f in feeds.items()} == {
        "good": "ok",
        "html": "failed",
        "broken": "failed",
    }
    assert "not a feed" in feeds["html"]["error"]
    assert feeds["broken"]["http_status"] == 500
    table = read_articles(out)
    assert table.num_rows == 8
    assert set(table.column("source").to_pylist()) == {"good"}


def test_every_source_failing_exits_3(tmp_path: Path, http_server: LocalHttpServer) -> None:
    http_server.routes["/gone.xml"] = respond(404, b"")
    config = rss_config(
        tmp_path / "nw.yaml", [("gone", http_server.url("/gone.xml"))], tmp_path / "d"
    )
    assert run_cli("--config", str(config)) == 3
    assert read_articles(tmp_path / "d").num_rows == 0


def test_conditional_get_between_runs(tmp_path: Path, http_server: LocalHttpServer) -> None:
    body = SAMPLES.joinpath("world-wire.xml").read_bytes()
    http_server.routes["/feed.xml"] = feed_with_etag(body, etag='"abc"')
    config = rss_config(
        tmp_path / "nw.yaml", [("wire", http_server.url("/feed.xml"))], tmp_path / "d"
    )
    assert run_cli("--config", str(config)) == 0
    assert run_cli("--config", str(config)) == 0
    first, second = http_server.requests
    assert "if-none-match" not in first[1]
    assert second[1]["if-none-match"] == '"abc"'
    assert second[1]["user-agent"].startswith("newswatch/")
    _, second_run = run_reports(tmp_path / "d")
    assert second_run["committed"]["articles"] == 0
    assert [f["status"] for f in second_run["feeds"]] == ["not_modified"]
    assert read_articles(tmp_path / "d").num_rows == 8


def test_config_error_names_file_and_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "sources:\n  - name: a\n    type: rss\n    url: https://example.org/a.xml\n"
        "  - name: b\n    type: rss\n    url: ftp://example.org/b.xml\n",
        "utf-8",
    )
    assert run_cli("--config", str(config), "--out", str(tmp_path / "d")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{config}: sources[1].url: unsupported scheme 'ftp'" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    "engine",
    [
        # In-process: the default run above has a worker process per core.
        ["--workers", "1"],
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    ],
    ids=["in-process", "two-processes"],
)
def test_every_engine_gives_identical_output(
    tmp_path: Path, default_run: Path, engine: list[str]
) -> None:
    out = tmp_path / "other"
    assert run_cli("--out", str(out), *engine) == 0
    single, multi = read_articles(default_run), read_articles(out)
    assert multi.drop_columns(["ingested_at"]).equals(single.drop_columns(["ingested_at"]))

    def comparable(alerts: list[dict]) -> list[dict]:
        return sorted(
            ({k: v for k, v in a.items() if k != "created_at"} for a in alerts),
            key=lambda a: a["alert_id"],
        )

    assert comparable(read_jsonl(out, "alerts")) == comparable(read_jsonl(default_run, "alerts"))
