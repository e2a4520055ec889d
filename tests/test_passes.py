"""A run split into passes: the pure split, and a whole multi-pass run over Kafka and RSS."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import pytest
from articles import arms_story, filler_story
from configs import kafka_source, rss_source, write_config
from hypothesis import given
from hypothesis import strategies as st
from kafka_tools import committed_offsets, high_watermarks, new_topic, produce
from outputs import read_articles, read_jsonl, run_reports
from processes import IN_PROCESS
from servers import LocalHttpServer, respond

from newswatch.connectors.kafka.connection import PartitionRange
from newswatch.connectors.rss.read import FeedRequest
from newswatch.pipelines.cli import main
from newswatch.pipelines.cli.broker import Broker
from newswatch.pipelines.control.config import RunSettings, load_config
from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.run import RunPlan, split_plan

SAMPLES = files("newswatch.pipelines").joinpath("defaults", "samples")
STARTED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def plan_of(ranges: list[tuple[int, int]], feeds: int = 0) -> RunPlan:
    return RunPlan(
        run_id="20261128T120000Z-abcdef",
        started_at=STARTED,
        feeds=tuple(FeedRequest(source=f"f{i}", url=f"http://x.test/{i}") for i in range(feeds)),
        kafka=tuple(
            PartitionRange("wire", "news", p, start, end) for p, (start, end) in enumerate(ranges)
        ),
    )


def test_a_plan_within_the_limits_is_one_pass() -> None:
    plan = plan_of([(0, 10), (5, 5)], feeds=3)
    assert split_plan(plan, RunSettings(max_messages_per_pass=10, max_feeds_per_pass=3)) == [plan]


def test_feeds_are_split_in_order_and_kafka_is_shared_fairly() -> None:
    plan = plan_of([(0, 100), (10, 13), (7, 7)], feeds=5)
    passes = split_plan(plan, RunSettings(max_messages_per_pass=40, max_feeds_per_pass=2))
    assert [[f.source for f in p.feeds] for p in passes] == [["f0", "f1"], ["f2", "f3"], ["f4"]]
    assert [[(r.partition, r.start, r.end) for r in p.kafka] for p in passes] == [
        # The partition with nothing new is reported by the first pass; the short one is
        # finished there and its unused share goes to the long one.
        [(0, 0, 37), (1, 10, 13), (2, 7, 7)],
        [(0, 37, 77)],
        [(0, 77, 100)],
    ]
    assert {p.run_id for p in passes} == {plan.run_id}


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.integers(0, 120)).map(lambda t: (t[0], t[0] + t[1])),
        max_size=6,
    ),
    st.integers(0, 12),
    st.integers(1, 90),
    st.integers(1, 5),
)
def test_passes_cover_each_range_once_in_order_within_the_limits(
    ranges: list[tuple[int, int]], feeds: int, budget: int, feeds_per_pass: int
) -> None:
    plan = plan_of(ranges, feeds)
    passes = split_plan(plan, RunSettings(budget, feeds_per_pass))
    assert [f for p in passes for f in p.feeds] == list(plan.feeds)
    for p in passes:
        assert len(p.feeds) <= feeds_per_pass
        assert sum(r.end - r.start for r in p.kafka) <= budget
        assert all(r.start <= r.end for r in p.kafka)
    for planned in plan.kafka:
        pieces = [r for p in passes for r in p.kafka if r.partition == planned.partition]
        assert pieces, "every planned partition is in some pass"
        assert pieces[0].start == planned.start and pieces[-1].end == planned.end
        assert all(a.end == b.start for a, b in zip(pieces, pieces[1:], strict=False))
    # No pass is wasted: all but the last are full, of feeds or of messages.
    total = sum(end - start for start, end in ranges)
    assert len(passes) == max(1, -(-total // budget), -(-feeds // feeds_per_pass))


def test_run_settings_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "nw.yaml"
    sources = "sources:\n  - {name: a, type: rss, url: 'http://x.test/feed'}\n"
    config.write_text(sources + "run:\n  max_messages_per_pass: 0\n", "utf-8")
    with pytest.raises(ConfigError, match="run.max_messages_per_pass"):
        load_config(str(config))
    config.write_text(sources + "run:\n  max_feeds_per_pass: 3\n", "utf-8")
    assert load_config(str(config)).run == RunSettings(max_feeds_per_pass=3)


@pytest.mark.slow
def test_a_run_in_passes_stores_everything_once_and_commits_each_pass(
    broker: Broker,
    http_server: LocalHttpServer,
    tmp_path: Path,
) -> None:
    topic = new_topic(broker.bootstrap, partitions=3)
    stories = [filler_story(i, seed=11) for i in range(23)] + [arms_story(i) for i in range(2)]
    produce(broker.bootstrap, topic, stories)
    for name in ("world-wire.xml", "asia-desk.atom.xml"):
        http_server.routes[f"/{name}"] = respond(200, SAMPLES.joinpath(name).read_bytes())
    out = tmp_path / "data"
    config = write_config(
        tmp_path / "nw.yaml",
        [
            kafka_source(broker.bootstrap, topic, group_id="newswatch-passes"),
            rss_source("world", http_server.url("/world-wire.xml")),
            rss_source("asia", http_server.url("/asia-desk.atom.xml")),
        ],
        out,
        alerts=None,
        run={"max_messages_per_pass": 10, "max_feeds_per_pass": 1},
    )

    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0

    documents = run_reports(out)
    assert len(documents) == 3, "25 messages in passes of 10, and two feeds one a pass"
    committed = [d["committed"] for d in documents]
    assert all(c["offsets"] for c in committed), "each pass commits its offsets"
    assert [sum(p["read"] for p in d["partitions"]) for d in documents] == [10, 10, 5]
    assert [[f["source"] for f in d["feeds"]] for d in documents] == [["world"], ["asia"], []]
    table = read_articles(out)
    urls = table.column("url").to_pylist()
    assert len(urls) == len(set(urls)), "nothing stored twice across passes"
    assert {s["url"] for s in stories} <= set(urls)
    # The sample feeds share one story (stored once): what a single run stores of them.
    assert len(urls) == 25 + 14
    assert sum(c["articles"] for c in committed) == len(urls)
    assert committed_offsets(broker.bootstrap, topic, "newswatch-passes") == high_watermarks(
        broker.bootstrap, topic
    )
    alerts = read_jsonl(out, "alerts")
    assert len({(a["topic"], a["cluster_id"]) for a in alerts}) == len(alerts)
    assert {"https://arms.example/story/0", "https://arms.example/story/1"} <= {
        a["url"] for a in alerts
    }

    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    assert read_articles(out).num_rows == len(urls)
    assert len(read_jsonl(out, "alerts")) == len(alerts)
