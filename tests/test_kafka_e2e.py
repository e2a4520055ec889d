"""Kafka in and out against the real development broker: bounded runs, poison messages,
offsets committed only after output is durable, alerts on Kafka and to subscribers."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from articles import arms_story, filler_story
from configs import GROUP, kafka_config
from kafka_tools import committed_offsets, high_watermarks, new_topic, produce, read_all
from outputs import dataset_files, read_articles, read_jsonl
from processes import IN_PROCESS, Subscriber, newswatch, wait_for

from newswatch.pipelines.cli import main
from newswatch.pipelines.cli.broker import Broker

pytestmark = pytest.mark.slow


def test_a_three_partition_topic_lands_whole_and_a_rerun_adds_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    topic = new_topic(broker.bootstrap, partitions=3)
    alerts_topic = new_topic(broker.bootstrap, partitions=1, prefix="alerts")
    stories = [filler_story(i) for i in range(27)] + [arms_story(i) for i in range(2)]
    produce(broker.bootstrap, topic, stories)
    out = tmp_path / "data"
    config = kafka_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out, alerts_topic)

    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0

    table = read_articles(out)
    assert sorted(table.column("url").to_pylist()) == sorted(s["url"] for s in stories)
    high = high_watermarks(broker.bootstrap, topic)
    assert sum(high.values()) == 29 and all(high.values())
    assert committed_offsets(broker.bootstrap, topic, GROUP) == high
    file_alerts = read_jsonl(out, "alerts")
    assert {a["url"] for a in file_alerts} == {
        "https://arms.example/story/0",
        "https://arms.example/story/1",
    }
    sent = read_all(broker.bootstrap, alerts_topic)
    assert sorted(json.loads(v)["alert_id"] for _, v in sent) == sorted(
        a["alert_id"] for a in file_alerts
    )
    assert {k for k, _ in sent} == {b"dprk-russia-arms"}

    files_before = dataset_files(out)
    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    assert dataset_files(out) == files_before
    assert len(read_all(broker.bootstrap, alerts_topic)) == len(sent)

    more = [filler_story(i, seed=8) for i in range(4)]
    produce(broker.bootstrap, topic, more)
    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    assert read_articles(out).num_rows == 33
    assert committed_offsets(broker.bootstrap, topic, GROUP) == high_watermarks(
        broker.bootstrap, topic
    )


def test_poison_messages_go_to_rejected_and_are_committed(broker: Broker, tmp_path: Path) -> None:
    topic = new_topic(broker.bootstrap, partitions=2)
    poison = {
        b"\xff\xfe\x00not utf-8": "not_utf8",
        b"{not json": "not_json",
        b"[1, 2, 3]": "not_an_object",
        json.dumps({"title": "no address"}).encode(): "missing_url_and_id",
        json.dumps({"url": "https://x.example/1", "title": 5}).encode(): "wrong_type",
        json.dumps({"url": "https://x.example/2", "text": "x" * 5000}).encode(): "too_large",
    }
    good = [filler_story(i, seed=9) for i in range(5)]
    produce(broker.bootstrap, topic, [*poison, *good])
    out = tmp_path / "data"
    config = kafka_config(
        tmp_path / "nw.yaml", broker.bootstrap, topic, out, max_message_bytes=2000
    )

    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0

    assert sorted(read_articles(out).column("url").to_pylist()) == sorted(s["url"] for s in good)
    rejected = read_jsonl(out, "rejected")
    assert sorted(r["reason"] for r in rejected) == sorted(poison.values())
    for record in rejected:
        assert record["topic"] == topic and record["source"] == "wire"
        assert isinstance(record["partition"], int) and isinstance(record["offset"], int)
        raw = base64.b64decode(record["raw_base64"])
        original = next(p for p, reason in poison.items() if reason == record["reason"])
        assert raw == (original if record["reason"] != "too_large" else original[: len(raw)])
    assert committed_offsets(broker.bootstrap, topic, GROUP) == high_watermarks(
        broker.bootstrap, topic
    )


def test_a_run_killed_mid_way_commits_nothing_and_the_rerun_loses_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    topic = new_topic(broker.bootstrap, partitions=3)
    stories = [filler_story(i, seed=11) for i in range(120)] + [arms_story(i) for i in range(2)]
    produce(broker.bootstrap, topic, stories)
    out = tmp_path / "data"
    config = kafka_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out)

    run = newswatch(
        "run", *IN_PROCESS, "--config", str(config), stdout=subprocess.DEVNULL, stderr=None
    )
    staging = out / "_staging"
    wait_for(lambda: any(staging.glob("*/articles/dt=*/*.parquet")), 120, "a staged file", run)
    run.send_signal(signal.SIGKILL)
    assert run.wait(timeout=60) == -signal.SIGKILL

    assert dataset_files(out) == []
    assert set(committed_offsets(broker.bootstrap, topic, GROUP).values()) == {None}

    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    table = read_articles(out)
    assert sorted(table.column("url").to_pylist()) == sorted(s["url"] for s in stories)
    assert len(read_jsonl(out, "alerts")) == 2
    assert not any(staging.iterdir())
    assert committed_offsets(broker.bootstrap, topic, GROUP) == high_watermarks(
        broker.bootstrap, topic
    )


def test_an_unreachable_broker_fails_the_run_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = kafka_config(tmp_path / "nw.yaml", "127.0.0.1:9", "news.raw", tmp_path / "data")
    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith("newswatch: run failed:") and "127.0.0.1:9" in err
    assert "\n" not in err
    assert dataset_files(tmp_path / "data") == []


@pytest.fixture
def subscribe() -> Iterator[Callable[..., Subscriber]]:
    """Starts ``newswatch alerts subscribe ARGS...``; none outlives its test."""
    started: list[Subscriber] = []

    def start(*args: str) -> Subscriber:
        started.append(Subscriber(*args))
        return started[-1]

    yield start
    for subscriber in started:
        subscriber.kill()


def test_alerts_subscribe_over_kafka_filters_and_resumes_a_group(
    broker: Broker, tmp_path: Path, subscribe: Callable[..., Subscriber]
) -> None:
    topic = new_topic(broker.bootstrap, partitions=2)
    alerts_topic = new_topic(broker.bootstrap, partitions=1, prefix="alerts")
    out = tmp_path / "data"
    config = kafka_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out, alerts_topic)
    common = ["--bootstrap", broker.bootstrap, "--alerts-topic", alerts_topic, "--format", "json"]

    follower = subscribe(*common, "--topic", "dprk-russia-arms")  # from now on
    produce(broker.bootstrap, topic, [arms_story(0), filler_story(1, seed=12)])
    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    [line] = follower.read(1)
    assert json.loads(line)["url"] == "https://arms.example/story/0"
    assert follower.interrupt() == 0

    grouped = subscribe(*common, "--group", "desk", "--from-beginning")
    assert [json.loads(x)["url"] for x in grouped.read(1)] == ["https://arms.example/story/0"]
    assert grouped.interrupt() == 0

    produce(broker.bootstrap, topic, [arms_story(1)])
    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    resumed = subscribe(*common, "--group", "desk")
    assert [json.loads(x)["url"] for x in resumed.read(2, timeout_s=8)] == [
        "https://arms.example/story/1"
    ]
    assert resumed.interrupt() == 0

    other_topic = subscribe(*common, "--topic", "iran-russia-drones", "--from-beginning")
    assert other_topic.read(1, timeout_s=3) == []
    assert other_topic.interrupt() == 0


def test_alerts_subscribe_follows_the_file_sink(
    broker: Broker, tmp_path: Path, subscribe: Callable[..., Subscriber]
) -> None:
    topic = new_topic(broker.bootstrap, partitions=1)
    out = tmp_path / "data"
    config = kafka_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out)
    (out / "alerts").mkdir(parents=True)
    follower = subscribe("--dir", str(out / "alerts"))
    produce(broker.bootstrap, topic, [arms_story(0), arms_story(1)])
    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    lines = follower.read(2)
    assert follower.interrupt() == 0
    assert len(lines) == 2
    assert all("dprk-russia-arms" in line and "arms.example/story/" in line for line in lines)


def test_the_readme_loop_produce_run_subscribe(
    broker: Broker, tmp_path: Path, subscribe: Callable[..., Subscriber]
) -> None:
    """`newswatch produce --sample`, `newswatch run`, `newswatch alerts subscribe`, as in the README."""
    topic = f"news.readme.{os.getpid()}"
    alerts_topic = f"alerts.readme.{os.getpid()}"
    assert main(["produce", "--topic", topic, "--bootstrap", broker.bootstrap, "--sample"]) == 0
    assert len(read_all(broker.bootstrap, topic)) == 7
    out = tmp_path / "data"
    config = kafka_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out, alerts_topic)
    assert main(["run", *IN_PROCESS, "--config", str(config)]) == 0
    assert read_articles(out).num_rows == 7
    follower = subscribe(
        "--bootstrap",
        broker.bootstrap,
        "--alerts-topic",
        alerts_topic,
        "--from-beginning",
        "--topic",
        "dprk-russia-arms",
    )
    expected = [a for a in read_jsonl(out, "alerts") if a["topic"] == "dprk-russia-arms"]
    lines = follower.read(len(expected) + 1, timeout_s=10)
    assert follower.interrupt() == 0
    assert len(lines) == len(expected) == 2
    assert all("dprk-russia-arms" in line for line in lines)
    assert any("Kursk" in line for line in lines) and any("treaty" in line for line in lines)
