"""One set of inputs run on two Beam runners, and what must come out the same.

The inputs: the sample feeds and a feed of arms stories over a local HTTP server, and a
Kafka topic with filler stories and copies of the arms stories under other URLs
(near-duplicates across sources). What must be the same: the articles (all but the
columns a run sets), the alerts, the committed counts and the counts the summary prints.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow as pa
from articles import arms_story, filler_story
from configs import kafka_source, rss_source, write_config
from feeds import stories_feed
from kafka_tools import new_topic, produce
from outputs import read_articles, read_jsonl, run_reports
from servers import LocalHttpServer, respond

from newswatch.pipelines.cli.broker import Broker
from newswatch.pipelines.control.config import load_config
from newswatch.pipelines.control.engines import engine_options
from newswatch.pipelines.run import RunOutcome, run

SAMPLES = files("newswatch.pipelines").joinpath("defaults", "samples")
# 14 of the sample feeds, 2 arms stories by RSS, 6 fillers and 2 arms copies by Kafka.
EXPECTED_ARTICLES = 24
EXPECTED_COPIES = 2  # the Kafka copies join the clusters of the RSS arms stories
# Set by the run, not by what it read.
RUN_COLUMNS = ["ingested_at"]
ALERT_RUN_FIELDS = {"created_at"}
# What `newswatch run` prints from the run's counters.
SUMMARY_COUNTERS = ("entries_read", "kafka_messages_read", "duplicates_dropped", "near_duplicates")


def serve_inputs(http_server: LocalHttpServer, broker: Broker) -> str:
    """Serve the feeds and fill a new topic; the topic's name."""
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


def write_inputs_config(
    folder: Path, http: LocalHttpServer, bootstrap: str, topic: str, kafka: bool = True
) -> Path:
    """A config reading the served inputs into ``folder/data``; its own consumer group,
    so that each run reads the whole topic."""
    folder.mkdir()
    sources = [
        rss_source("world", http.url("/world-wire.xml")),
        rss_source("asia", http.url("/asia-desk.atom.xml")),
        rss_source("arms", http.url("/arms.xml")),
    ]
    if kafka:
        sources.append(kafka_source(bootstrap, topic, group_id=f"newswatch-{folder.name}"))
    return write_config(folder / "nw.yaml", sources, folder / "data", alerts=None)


def run_on(
    beam_args: list[str],
    workers: int | None,
    folder: Path,
    http: LocalHttpServer,
    bootstrap: str,
    topic: str,
) -> tuple[Path, RunOutcome]:
    """``newswatch run`` of the served inputs with these options; the output folder and
    what the run returned (its counters and report)."""
    write_inputs_config(folder, http, bootstrap, topic)
    return rerun(beam_args, workers, folder)


def rerun(beam_args: list[str], workers: int | None, folder: Path) -> tuple[Path, RunOutcome]:
    """``newswatch run`` again with the config ``run_on`` wrote in ``folder``."""
    config = load_config(str(folder / "nw.yaml"))
    return Path(config.output), run(config, engine_options(beam_args, workers))


def comparable_articles(out: Path) -> pa.Table:
    """The stored articles without the columns a run sets (empty when there are none)."""
    table = read_articles(out)
    if not table.num_rows:
        return table
    return table.drop_columns(RUN_COLUMNS).sort_by("article_id")


def comparable_alerts(out: Path) -> list[dict[str, Any]]:
    return sorted(
        (
            {k: v for k, v in a.items() if k not in ALERT_RUN_FIELDS}
            for a in read_jsonl(out, "alerts")
        ),
        key=lambda a: (a["topic"], a["cluster_id"]),
    )


def committed_counts(out: Path) -> list[dict[str, Any]]:
    """What each run in ``out`` committed, oldest first, without their run ids."""
    return [
        {k: v for k, v in report["committed"].items() if k != "run_id"}
        for report in run_reports(out)
    ]


def summary_counts(outcome: RunOutcome) -> dict[str, int]:
    return {name: outcome.count(name) for name in SUMMARY_COUNTERS}
