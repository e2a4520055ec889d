"""A Russian, a Korean and a Chinese report through ``newswatch run`` from a local feed:
each stored with its language and canonical English entities, each raising the
``dprk-russia-arms`` alert with its language."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from configs import rss_config
from feeds import rss_document, rss_item
from multilingual_reports import REPORTS
from outputs import read_articles, read_jsonl
from processes import IN_PROCESS
from servers import LocalHttpServer, respond

from newswatch.pipelines.cli import main
from newswatch.schemas import alert_json_schema

pytestmark = pytest.mark.slow

PUBLISHED = datetime(2024, 11, 4, 6, 0, tzinfo=UTC)


def report_url(language: str) -> str:
    return f"https://news.example/{language}/2024/11/04/dprk-russia-shells"


def test_reports_in_other_languages_raise_the_alert(
    tmp_path: Path, http_server: LocalHttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [
        rss_item(title, report_url(language), text, PUBLISHED)
        for language, (title, text) in REPORTS.items()
    ]
    http_server.routes["/world.xml"] = respond(
        200, rss_document(items), Content_Type="application/rss+xml"
    )
    out = tmp_path / "data"
    config = rss_config(tmp_path / "nw.yaml", [("world", http_server.url("/world.xml"))], out)
    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    summary = capsys.readouterr().out
    assert all(f"{language} 1" in summary for language in REPORTS), summary

    rows = {r["url"]: r for r in read_articles(out).to_pylist()}
    for language in REPORTS:
        row = rows[report_url(language)]
        assert row["language"] == language
        assert {"North Korea", "Russia"} <= {e["canonical"] for e in row["entities"]}
        assert "dprk-russia-arms" in {t["id"] for t in row["topics"]}

    alerts = {a["url"]: a for a in read_jsonl(out, "alerts") if a["topic"] == "dprk-russia-arms"}
    schema = alert_json_schema()
    for language in REPORTS:
        alert = alerts[report_url(language)]
        jsonschema.validate(alert, schema)
        assert alert["language"] == language
        assert {"North Korea", "Russia"} <= set(alert["entities"])
        assert alert["evidence"]
