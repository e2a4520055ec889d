"""``newswatch reprocess`` end to end: a dataset stored by a real ``newswatch run`` over
local HTTP feeds, re-analysed with other topic rules and compared with a fresh run that
had those rules from the start; and a reprocess killed in the middle of its commit."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from configs import FILE_ALERTS, kafka_alerts, rss_config, rss_source, write_config
from kafka_tools import new_topic, read_all
from outputs import read_articles, read_jsonl
from processes import IN_PROCESS
from servers import LocalHttpServer, respond

from newswatch.pipelines.cli import main
from newswatch.pipelines.cli.broker import Broker
from newswatch.pipelines.control.config import load_config
from newswatch.pipelines.core.topic_changes import NEWLY_MATCHED, NO_LONGER_MATCHED, UNCHANGED
from newswatch.pipelines.reprocess import ReprocessOptions, reprocess

pytestmark = pytest.mark.slow

PACKAGE = files("newswatch.pipelines")
FEEDS = ("world-wire.xml", "asia-desk.atom.xml")
NEW_TOPIC = "putin-watch"
DROPPED_TOPIC = "china-taiwan-military"
KEPT_TOPIC = "dprk-russia-arms"
REANALYSED = ("entities", "topics")

# Run in a child process: the first stored file renamed over by the commit kills it.
KILLED_AFTER_ONE_REPLACEMENT = """
import os, signal, sys
from newswatch.connectors import filesystem
from newswatch.pipelines.cli import main
from newswatch.pipelines.cli.broker import Broker

rename = filesystem.move

def rename_then_die(source, destination):
    rename(source, destination)
    if "/articles/" in destination:
        os.kill(os.getpid(), signal.SIGKILL)

filesystem.move = rename_then_die
sys.exit(main(sys.argv[1:]))
"""


def rules_with_a_new_topic() -> dict[str, Any]:
    """The bundled rules with one topic added and one taken away."""
    data = yaml.safe_load(PACKAGE.joinpath("defaults/topics.yaml").read_text("utf-8"))
    data["topics"] = [t for t in data["topics"] if t["id"] != DROPPED_TOPIC]
    data["topics"].append(
        {
            "id": NEW_TOPIC,
            "title": "Vladimir Putin in the news",
            "scope": "document",
            "all": [{"any": ["entity:Vladimir Putin"]}],
        }
    )
    return data


@dataclass(frozen=True)
class Datasets:
    config: Path  # the bundled rules, output ``stored``
    topics: Path  # the new rules
    stored: Path  # stored by a run with the bundled rules
    fresh: Path  # stored by a run with the new rules
    sources: list[tuple[str, str]]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Datasets]:
    base = tmp_path_factory.mktemp("reprocess")
    topics = base / "topics.yaml"
    topics.write_text(yaml.safe_dump(rules_with_a_new_topic(), sort_keys=False), "utf-8")
    with LocalHttpServer() as feeds:
        for name in FEEDS:
            body = PACKAGE.joinpath("defaults/samples", name).read_bytes()
            feeds.routes[f"/{name}"] = respond(200, body, Content_Type="application/xml")
        sources = [(name.split(".")[0], feeds.url(f"/{name}")) for name in FEEDS]
        config = rss_config(base / "nw.yaml", sources, base / "stored")
        assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
        fresh = rss_config(base / "fresh.yaml", sources, base / "fresh", topics=str(topics))
        assert main(["run", *IN_PROCESS, "--config", str(fresh)]) == 0
        yield Datasets(config, topics, base / "stored", base / "fresh", sources)


@pytest.fixture
def stored(datasets: Datasets, tmp_path: Path) -> Path:
    """A copy of the stored dataset, for one test to change."""
    out = tmp_path / "data"
    shutil.copytree(datasets.stored, out)
    return out


def reprocess_args(datasets: Datasets, out: Path, *args: str) -> list[str]:
    return [
        "reprocess",
        *("--config", str(datasets.config), "--out", str(out)),
        *("--topics", str(datasets.topics), *args),
    ]


def file_digests(out: Path) -> dict[str, str]:
    """Every file under the output and its SHA-256 (the run lock's guard file aside)."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith("run.lock")
    }


def with_topic(table: pa.Table, topic: str) -> dict[str, str]:
    """article id -> title, of every article matching ``topic``."""
    return {
        row["article_id"]: row["title"]
        for row in table.select(["article_id", "title", "topics"]).to_pylist()
        if topic in {m["id"] for m in row["topics"]}
    }


def assert_reprocessed_like_fresh(out: Path, datasets: Datasets) -> None:
    """Entities and topics as the fresh run stored them; the rows, their ids and every
    other column as they were stored; each article once."""
    before, after, fresh = (read_articles(p) for p in (datasets.stored, out, datasets.fresh))
    assert after.num_rows == before.num_rows == 14
    assert len(set(after.column("article_id").to_pylist())) == 14
    assert after.column_names == before.column_names
    for name in before.column_names:
        expected = fresh if name in REANALYSED else before
        assert after.column(name).equals(expected.column(name)), name


def test_dry_run_reports_the_matches_of_a_fresh_run_and_changes_nothing(
    datasets: Datasets, stored: Path, tmp_path: Path
) -> None:
    config = rss_config(tmp_path / "re.yaml", datasets.sources, stored, topics=str(datasets.topics))
    digests = file_digests(stored)
    outcome = reprocess(load_config(str(config)), [], ReprocessOptions(dry_run=True, alert=True))
    assert file_digests(stored) == digests

    before, fresh = read_articles(datasets.stored), read_articles(datasets.fresh)
    changes = outcome.changes
    newly = with_topic(fresh, NEW_TOPIC)
    assert len(newly) == 3 and changes.count(NEW_TOPIC, NEWLY_MATCHED) == 3
    assert changes.examples(NEW_TOPIC, NEWLY_MATCHED) == sorted(newly.values())
    dropped = with_topic(before, DROPPED_TOPIC)
    assert dropped and changes.count(DROPPED_TOPIC, NO_LONGER_MATCHED) == len(dropped)
    assert changes.examples(DROPPED_TOPIC, NO_LONGER_MATCHED) == sorted(dropped.values())[:3]
    kept = with_topic(before, KEPT_TOPIC)
    assert kept == with_topic(fresh, KEPT_TOPIC)
    assert changes.count(KEPT_TOPIC, UNCHANGED) == len(kept)
    assert (
        changes.count(KEPT_TOPIC, NEWLY_MATCHED)
        == changes.count(KEPT_TOPIC, NO_LONGER_MATCHED)
        == 0
    )
    fresh_alerts = [a for a in read_jsonl(datasets.fresh, "alerts") if a["topic"] == NEW_TOPIC]
    assert outcome.committed["alerts"] == len(fresh_alerts) == 3
    assert outcome.articles == 14 and outcome.committed["files_rewritten"] == 0

    # And through the command line, in passes of at most 5 articles.
    assert main(reprocess_args(datasets, stored, "--dry-run", "--articles-per-pass", "5")) == 0
    assert file_digests(stored) == digests


def test_reprocess_stores_what_a_fresh_run_stores_and_keeps_every_other_column(
    datasets: Datasets, stored: Path
) -> None:
    alerts_before = read_jsonl(stored, "alerts")
    assert main(reprocess_args(datasets, stored, "--articles-per-pass", "4")) == 0
    assert_reprocessed_like_fresh(stored, datasets)
    assert read_jsonl(stored, "alerts") == alerts_before  # no --alert, no alerts
    assert not any((stored / "_staging").iterdir())
    assert not (stored / "_state" / "commits").exists() or not any(
        (stored / "_state" / "commits").iterdir()
    )
    # Only the files whose articles changed were rewritten: the others are the same bytes.
    changed = set(with_topic(read_articles(datasets.fresh), NEW_TOPIC)) | set(
        with_topic(read_articles(datasets.stored), DROPPED_TOPIC)
    )
    for path in sorted((stored / "articles").glob("dt=*/*.parquet")):
        original = datasets.stored / path.relative_to(stored)
        ids = set(pq.read_table(path, columns=["article_id"]).column(0).to_pylist())
        assert (path.read_bytes() == original.read_bytes()) == (not ids & changed), path


@pytest.mark.parametrize("next_command", ["run", "reprocess"])
def test_killed_during_its_commit_the_next_command_completes_it(
    datasets: Datasets, stored: Path, next_command: str
) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_ONE_REPLACEMENT, *reprocess_args(datasets, stored)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL
    assert len(list((stored / "_state" / "commits").glob("*.json"))) == 1
    # Between the two: one file replaced, the others not yet, and every article once.
    halfway = read_articles(stored)
    assert halfway.column("article_id").equals(read_articles(datasets.stored).column("article_id"))
    assert 0 < len(with_topic(halfway, NEW_TOPIC)) < 3

    if next_command == "run":
        assert (
            main(["run", *IN_PROCESS, "--config", str(datasets.config), "--out", str(stored)]) == 0
        )
    else:
        assert main(reprocess_args(datasets, stored)) == 0
    assert_reprocessed_like_fresh(stored, datasets)
    assert not list((stored / "_state" / "commits").glob("*.json"))


def test_alert_raises_each_newly_matched_story_once(
    datasets: Datasets, stored: Path, broker: Broker, tmp_path: Path
) -> None:
    alerts_topic = new_topic(broker.bootstrap, partitions=1, prefix="alerts")
    config = write_config(
        tmp_path / "alerting.yaml",
        [rss_source(name, url) for name, url in datasets.sources],
        stored,
        [FILE_ALERTS, kafka_alerts(broker.bootstrap, alerts_topic)],
    )
    args = ["reprocess", "--config", str(config), "--topics", str(datasets.topics), "--alert"]
    before = read_jsonl(stored, "alerts")
    assert main(args) == 0
    raised = [a for a in read_jsonl(stored, "alerts") if a not in before]
    fresh = [a for a in read_jsonl(datasets.fresh, "alerts") if a["topic"] == NEW_TOPIC]
    assert len(raised) == 3
    assert sorted(a["alert_id"] for a in raised) == sorted(a["alert_id"] for a in fresh)
    sent = [json.loads(value) for _, value in read_all(broker.bootstrap, alerts_topic)]
    assert sorted(sent, key=by_alert_id) == sorted(raised, key=by_alert_id)
    assert_reprocessed_like_fresh(stored, datasets)

    assert main(args) == 0
    assert len(read_jsonl(stored, "alerts")) == len(before) + 3
    # Even with the stories matching anew (the articles as first stored), the alert log
    # holds their alerts: none is raised twice.
    shutil.rmtree(stored / "articles")
    shutil.copytree(datasets.stored / "articles", stored / "articles")
    assert main(args) == 0
    assert len(read_jsonl(stored, "alerts")) == len(before) + 3
    assert len(read_all(broker.bootstrap, alerts_topic)) == 3
    assert_reprocessed_like_fresh(stored, datasets)


def by_alert_id(alert: dict[str, Any]) -> str:
    return str(alert["alert_id"])


def test_a_held_run_lock_exits_75_and_changes_nothing(datasets: Datasets, stored: Path) -> None:
    from newswatch.pipelines.control.lock import RunLock

    digests = file_digests(stored)
    with RunLock(str(stored), ttl_s=600):
        assert main(reprocess_args(datasets, stored)) == 75
    assert file_digests(stored) == digests


def test_progress_is_shown_on_a_terminal_and_not_in_json_logs(
    datasets: Datasets, stored: Path
) -> None:
    def stderr_of(*args: str) -> str:
        """The command's stderr written to a pseudo-terminal, as a person would see it."""
        master, slave = pty.openpty()
        command = [sys.executable, "-m", "newswatch.pipelines.cli"]
        child = subprocess.Popen(
            [*command, *reprocess_args(datasets, stored, "--dry-run", *args)],
            stdout=subprocess.DEVNULL,
            stderr=slave,
        )
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        assert child.wait(timeout=60) == 0
        return seen.decode("utf-8", "replace")

    shown = stderr_of("--articles-per-pass", "7")
    assert "partitions 0/13  articles 0/14" in shown
    assert "partitions 13/13  articles 14/14" in shown and "articles/s" in shown
    assert "time left" in shown
    assert "partitions" not in stderr_of("--log-format", "json")
