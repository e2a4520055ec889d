"""The whole run on Beam's portable runner: the job API and proto translation Flink, Spark and
Dataflow go through, with an embedded job service and the SDK harness in this process.

Same inputs (local RSS feeds and a Kafka topic, with copies of one story across them) read
by the DirectRunner and by the ``PortableRunner``; articles, clusters, alerts and the
committed counts must be the same.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from articles import arms_story, filler_story
from configs import kafka_source, rss_source, write_config
from feeds import stories_feed
from kafka_tools import new_topic, produce
from outputs import read_articles, read_jsonl, run_reports
from servers import LocalHttpServer, respond

from newswatch.pipelines.cli import main
from newswatch.pipelines.cli.broker import Broker

pytestmark = pytest.mark.slow

SAMPLES = files("newswatch.pipelines").joinpath("defaults", "samples")
PORTABLE = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]
# Set by the run, not by what it read.
RUN_COLUMNS = ["ingested_at"]
ALERT_RUN_FIELDS = {"created_at"}


def serve_inputs(http_server: LocalHttpServer, broker: Broker) -> str:
    """The sample feeds, a feed of arms stories, and a Kafka topic with filler stories and
    copies of the arms stories under other URLs (near-duplicates across sources)."""
    for name in ("world-wire.xml", "asia-desk.atom.xml"):
        http_server.routes[f"/{name}"] = respond(200, SAMPLES.joinpath(name).read_bytes())
    http_server.routes["/arms.xml"] = respond(200, stories_feed(arms_story(i) for i in range(2)))
    topic = new_topic(broker.bootstrap, partitions=2)
    produce(
        broker.bootstrap,
        topic,
        [filler_story(i, seed=5) for i in range(6)] + [arms_story(i) for i in range(2, 4)],
    )
    return topic


def run_on(
    engine: list[str], name: str, tmp_path: Path, http: LocalHttpServer, bootstrap: str, topic: str
) -> Path:
    (tmp_path / name).mkdir()
    out = tmp_path / name / "data"
    config = write_config(
        tmp_path / name / "nw.yaml",
        [
            rss_source("world", http.url("/world-wire.xml")),
            rss_source("asia", http.url("/asia-desk.atom.xml")),
            rss_source("arms", http.url("/arms.xml")),
            # A group of its own: each run reads the whole topic.
            kafka_source(bootstrap, topic, group_id=f"newswatch-{name}"),
        ],
        out,
        alerts=None,
    )
    assert main(["run", "--config", str(config), *engine]) == 0
    return out


def comparable_articles(out: Path) -> pa.Table:
    table = read_articles(out).drop_columns(RUN_COLUMNS)
    return table.sort_by("article_id")


def comparable_alerts(out: Path) -> list[dict[str, Any]]:
    return sorted(
        (
            {k: v for k, v in a.items() if k not in ALERT_RUN_FIELDS}
            for a in read_jsonl(out, "alerts")
        ),
        key=lambda a: (a["topic"], a["cluster_id"]),
    )


def test_the_portable_runner_gives_what_the_direct_runner_gives(
    tmp_path: Path, http_server: LocalHttpServer, broker: Broker
) -> None:
    topic = serve_inputs(http_server, broker)
    direct = run_on(["--workers", "1"], "direct", tmp_path, http_server, broker.bootstrap, topic)
    portable = run_on(PORTABLE, "portable", tmp_path, http_server, broker.bootstrap, topic)

    articles = comparable_articles(direct)
    # 14 of the sample feeds, 2 arms stories by RSS, 6 fillers and 2 arms copies by Kafka.
    assert articles.num_rows == 24
    copies = [r for r in articles.to_pylist() if r["is_duplicate"]]
    assert len(copies) == 2, "the Kafka copies join the clusters of the RSS arms stories"
    assert comparable_articles(portable).equals(articles)
    alerts = comparable_alerts(direct)
    assert alerts and comparable_alerts(portable) == alerts
    [direct_report], [portable_report] = run_reports(direct), run_reports(portable)
    for report in (direct_report, portable_report):
        report["committed"].pop("run_id")
    assert portable_report["committed"] == direct_report["committed"]
