"""``newswatch stream`` against the real development broker: an alert while it runs, and a
stop (SIGTERM) and restart that lose nothing and store nothing twice; an RSS feed polled on
its interval with conditional GET, across a restart. Plus its pieces:
spools, the streaming near-duplicate index, the ``stream:`` config section.
No speed is asserted here (latency is measured by ``benchmarks/stream_latency.py``); the
poll interval is checked as the least time between two polls."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import StandardOptions
from articles import arms_story, filler_story
from configs import kafka_alerts, kafka_source, rss_source, write_config
from feeds import stories_feed
from kafka_tools import committed_offsets, high_watermarks, new_topic, produce, read_all
from outputs import read_articles, read_jsonl
from processes import OutputLines, Stream, Subscriber, newswatch, wait_for
from servers import LocalHttpServer, feed_with_etag

from newswatch.connectors.stream.spool import (
    append_records,
    count_spooled,
    read_spools,
    window_dir,
    window_run_id,
    window_start_us,
)
from newswatch.pipelines.cli.broker import Broker
from newswatch.pipelines.commit.committed_keys import ARTICLE_IDS, CommittedKeys
from newswatch.pipelines.control.config import NearDuplicateSettings, StreamSettings, parse_config
from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.core.minhash import (
    Signed,
    band_hashes,
    decode_signature,
    encode_signature,
    is_near_duplicate,
    shingle_hashes,
    signature,
)
from newswatch.pipelines.core.signature_index import SignatureIndex
from newswatch.pipelines.stream import StreamNotSupported, stream_options
from newswatch.schemas import ARTICLE_SCHEMA

WAIT_S = 90.0
GROUP = "newswatch-stream-test"


def stream_config(
    path: Path, bootstrap: str, topic: str, out: Path, alerts_topic: str, **stream: Any
) -> Path:
    return write_config(
        path,
        [kafka_source(bootstrap, topic, group_id=GROUP)],
        out,
        [{"type": "file"}, kafka_alerts(bootstrap, alerts_topic)],
        stream={"window": 2, "status_interval": 5, **stream},
    )


def new_topics(broker: Broker, partitions: int) -> tuple[str, str]:
    """A topic to read, and one for the alerts."""
    return (
        new_topic(broker.bootstrap, partitions=partitions),
        new_topic(broker.bootstrap, partitions=1, prefix="alerts"),
    )


@pytest.fixture
def subscribe() -> Iterator[Any]:
    """Starts ``newswatch alerts subscribe --format json`` on an alerts topic, from the start."""
    started: list[Subscriber] = []

    def start(bootstrap: str, alerts_topic: str) -> Subscriber:
        subscriber = Subscriber(
            "--bootstrap", bootstrap, "--alerts-topic", alerts_topic,
            "--from-beginning", "--format", "json",
        )  # fmt: skip
        started.append(subscriber)
        return subscriber

    yield start
    for subscriber in started:
        if subscriber.process.poll() is None:
            subscriber.process.send_signal(signal.SIGINT)
            try:
                subscriber.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                subscriber.kill()


def next_alert(subscriber: Subscriber) -> dict[str, Any]:
    alerts = subscriber.alerts(1, timeout_s=WAIT_S)
    assert alerts, "no alert reached the subscriber"
    return alerts[0]


@pytest.mark.slow
def test_an_alert_while_streaming_and_a_restart_that_loses_and_repeats_nothing(
    broker: Broker, tmp_path: Path, subscribe: Any
) -> None:
    topic, alerts_topic = new_topics(broker, partitions=3)
    out = tmp_path / "data"
    config = stream_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out, alerts_topic)
    subscriber = subscribe(broker.bootstrap, alerts_topic)
    before = [filler_story(i, seed=21) for i in range(6)]
    produce(broker.bootstrap, topic, before)

    stream = Stream(config)
    stream.wait_for_status(lambda s: s["stored"] == 6, "6 stored")
    produce(broker.bootstrap, topic, [arms_story(0)])
    first = next_alert(subscriber)
    assert first["topic"] == "dprk-russia-arms"
    assert first["url"] == "https://arms.example/story/0"
    during = [filler_story(i, seed=22) for i in range(5)]
    produce(broker.bootstrap, topic, during)
    stream.wait_for_status(lambda s: s["read"] == 12, "12 read")
    assert stream.stop() == 0
    assert committed_offsets(broker.bootstrap, topic, GROUP) == (
        high_watermarks(broker.bootstrap, topic)
    )

    # Produced while stopped, and after the restart: a copy of a stored story (same URL)
    # and the arms story again must not be stored or alerted twice.
    while_stopped = [filler_story(i, seed=23) for i in range(4)]
    produce(broker.bootstrap, topic, while_stopped)
    stream = Stream(config)
    after = [filler_story(i, seed=24) for i in range(3)]
    produce(broker.bootstrap, topic, [*after, before[0], arms_story(0), arms_story(1)])
    second = next_alert(subscriber)
    assert second["url"] == "https://arms.example/story/1"
    # Of the 10 read since the restart, the copy of a stored story and the arms story again
    # are exact duplicates; the other 8 are stored, and every partition is caught up.
    caught_up = {"read": 10, "stored": 8, "pending_stored": 0, "exact_duplicates": 2}
    stream.wait_for_status(
        lambda s: caught_up.items() <= s.items() and set(s["lag"].values()) == {0},
        f"{caught_up}, lag 0",
    )
    assert stream.stop() == 0

    stored = read_articles(out).column("url").to_pylist()
    expected = [s["url"] for s in [*before, *during, *while_stopped, *after]] + [
        "https://arms.example/story/0",
        "https://arms.example/story/1",
    ]
    assert sorted(stored) == sorted(expected)  # every article once: none lost, none twice
    file_alerts = read_jsonl(out, "alerts")
    assert sorted(a["url"] for a in file_alerts) == [
        "https://arms.example/story/0",
        "https://arms.example/story/1",
    ]
    sent = [json.loads(value) for _, value in read_all(broker.bootstrap, alerts_topic)]
    assert sorted(a["alert_id"] for a in sent) == sorted(a["alert_id"] for a in file_alerts)
    assert committed_offsets(broker.bootstrap, topic, GROUP) == (
        high_watermarks(broker.bootstrap, topic)
    )
    assert not list((out / "_staging").glob("*/*"))  # nothing left half-written
    assert not list((out / "_state" / "commits").glob("*.json"))
    # The stream's index of committed ids holds exactly what was stored.
    index = CommittedKeys(str(out), ARTICLE_IDS)
    assert index.path == str(out / "_state" / "index" / "article_ids.sqlite")
    index.sync()
    assert len(index) == len(stored)
    assert all(i in index for i in read_articles(out).column("article_id").to_pylist())
    index.close()


@pytest.mark.slow
def test_a_drain_that_times_out_exits_4_and_the_next_start_loses_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    topic, alerts_topic = new_topics(broker, partitions=2)
    out = tmp_path / "data"
    config = stream_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out, alerts_topic)
    hurried = stream_config(
        tmp_path / "hurried.yaml", broker.bootstrap, topic, out, alerts_topic, drain_timeout=1
    )

    stream = Stream(hurried)
    stream.wait_for_status(lambda s: s["read"] == 0, "running, and idle")
    # Read at the next tick (within 0.5 s) as one bundle that takes seconds to process;
    # the stop arrives in the middle of it, and the drain cannot end within 1 s.
    backlog = [filler_story(i, seed=41) for i in range(1000)]
    produce(broker.bootstrap, topic, backlog)
    time.sleep(1)
    assert stream.stop() == 4
    assert any("did not commit within 1s" in line for line in stream.lines())
    assert not (out / "_state" / "run.lock").exists()  # the lock was released

    # A thousand articles through the NLP stage: on a busy machine this takes minutes.
    stream = Stream(config, wait_s=3 * WAIT_S)
    stream.wait_for_status(
        lambda s: s["stored"] == len(backlog) and s["pending_stored"] == 0, "the backlog stored"
    )
    assert stream.stop() == 0
    stored = read_articles(out).column("url").to_pylist()
    assert sorted(stored) == sorted(story["url"] for story in backlog)
    assert committed_offsets(broker.bootstrap, topic, GROUP) == (
        high_watermarks(broker.bootstrap, topic)
    )


@pytest.mark.slow
def test_max_runtime_drains_and_exits_0_with_text_status_lines(
    broker: Broker, tmp_path: Path
) -> None:
    """Also the one test of the text form of the status (the default --log-format)."""
    topic, alerts_topic = new_topics(broker, partitions=2)
    out = tmp_path / "data"
    config = stream_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out, alerts_topic)
    stories = [filler_story(i, seed=51) for i in range(5)]
    produce(broker.bootstrap, topic, stories)
    process = newswatch("stream", "--config", str(config), "--max-runtime", "20", stdout=None)
    stderr = OutputLines(process, process.stderr)
    assert process.wait(timeout=WAIT_S + 20) == 0  # by itself: no signal was sent
    lines = stderr.rest()
    assert any("(--max-runtime): draining" in line for line in lines)
    status_lines = [line for line in lines if line.startswith("newswatch stream 20")]
    assert status_lines, lines  # the status, as text lines
    assert "(stopped)" in status_lines[-1]
    stored = read_articles(out).column("url").to_pylist()
    assert sorted(stored) == sorted(story["url"] for story in stories)
    assert committed_offsets(broker.bootstrap, topic, GROUP) == (
        high_watermarks(broker.bootstrap, topic)
    )
    assert not (out / "_state" / "run.lock").exists()


class TimedFeed:
    """A feed route honouring conditional GET, with the time of every request."""

    def __init__(self, body: bytes, etag: str) -> None:
        self.times: list[float] = []
        self.serve(body, etag)

    def serve(self, body: bytes, etag: str) -> None:
        self._route = feed_with_etag(body, etag)

    def __call__(self, handler: Any) -> None:
        self.times.append(time.monotonic())
        self._route(handler)


@pytest.mark.slow
def test_feeds_are_polled_on_their_interval_with_conditional_get_across_a_restart(
    http_server: LocalHttpServer, tmp_path: Path
) -> None:
    first = [filler_story(i, seed=31) for i in range(3)]
    feed = TimedFeed(stories_feed(first), '"v1"')
    http_server.routes["/world.xml"] = feed
    out = tmp_path / "data"
    config = write_config(
        tmp_path / "nw.yaml",
        [rss_source("world", http_server.url("/world.xml"), poll_interval=1)],
        out,
        stream={"window": 2, "status_interval": 1},
    )

    def validators() -> list[str | None]:
        return [headers.get("if-none-match") for _, headers in http_server.requests]

    stream = Stream(config)
    stream.wait_for_status(lambda s: s["stored"] == 3, "3 stored")
    wait_for(
        lambda: validators().count('"v1"') >= 2, WAIT_S, "two conditional polls", stream.process
    )
    # The feed changes: two new stories, one of them a watched development.
    second = [*first, filler_story(3, seed=31), arms_story(0)]
    feed.serve(stories_feed(second), '"v2"')
    stream.wait_for_status(lambda s: s["stored"] == 5 and s["alerts"] == 1, "5 stored, 1 alert")
    assert stream.stop() == 0
    polls_before_restart = len(http_server.requests)
    saved = json.loads((out / "_state" / "feeds.json").read_text("utf-8"))
    assert saved["world"]["etag"] == '"v2"'  # the validators of the committed answer

    stream = Stream(config)
    wait_for(
        lambda: len(http_server.requests) > polls_before_restart + 1, WAIT_S, "polls",
        stream.process,
    )  # fmt: skip
    assert stream.stop() == 0

    sent = validators()
    # The first fetch ever is a full one; until the feed changed every poll asked "changed
    # since v1?" (the last of them got v2 in full), and every poll since, across the
    # restart, asks about v2.
    v1, v2 = sent.count('"v1"'), sent.count('"v2"')
    assert sent == [None] + ['"v1"'] * v1 + ['"v2"'] * v2
    assert v1 >= 3 and v2 >= 2
    assert sent[polls_before_restart] == '"v2"'  # the restart resumed from the saved ETag
    gaps = [b - a for a, b in zip(feed.times, feed.times[1:], strict=False)]
    within_run = gaps[: polls_before_restart - 1] + gaps[polls_before_restart:]
    assert min(within_run) >= 0.95  # never polled before its interval was up
    stored = read_articles(out).column("url").to_pylist()
    assert sorted(stored) == sorted(story["url"] for story in second)
    assert [a["url"] for a in read_jsonl(out, "alerts")] == [arms_story(0)["url"]]
    # Windows are written as batch runs write: same partitions, names and columns.
    files = sorted((out / "articles").glob("dt=*/part-*.parquet"))
    days = {datetime.fromisoformat(s["published"]).astimezone(UTC).date() for s in second}
    assert {f.parent.name for f in files} == {f"dt={day}" for day in days}
    for path in files:
        assert pq.read_schema(path).remove_metadata() == ARTICLE_SCHEMA.remove_metadata()


def test_spools_keep_records_by_window_until_read(tmp_path: Path) -> None:
    size = 60_000_000
    start = window_start_us(1_795_878_196_500_000, size)
    assert start == 1_795_878_180_000_000
    run_id = window_run_id(start, "abc123")
    assert run_id == "20261128T150300000Z-abc123"
    assert window_run_id(start + size, "abc123") > run_id  # sorted by time
    directory = window_dir(str(tmp_path), run_id)
    append_records(f"{directory}/articles.main.spool", ["a", "b"])
    append_records(f"{directory}/articles.main.spool", ["c"])
    append_records(f"{directory}/articles.other.spool", ["d"])
    append_records(f"{directory}/alerts.main.spool", ["x"])
    assert read_spools(directory, "articles") == ["a", "b", "c", "d"]
    assert count_spooled(directory, "articles") == 4
    assert read_spools(directory, "rejected") == []
    assert count_spooled(str(tmp_path / "missing"), "articles") == 0


def _signed(article_id: str, text: str, published: datetime | None = None) -> Signed:
    shingles = shingle_hashes(text)
    return Signed(
        article_id=article_id,
        published_at=published,
        this_run=False,
        cluster_id=article_id,
        minhash=encode_signature(signature(shingles, 128)),
        shingle_count=len(shingles),
    )


def test_the_streaming_index_finds_copies_and_forgets_old_days() -> None:
    story = " ".join(filler_story(1, seed=30)["text"] for _ in range(2))
    other = " ".join(filler_story(2, seed=30)["text"] for _ in range(2))
    index = SignatureIndex(NearDuplicateSettings())
    index.add(_signed("a" * 32, story, datetime(2026, 1, 1, tzinfo=UTC)), "2026-01-01")
    index.add(_signed("b" * 32, other), "2026-01-03")
    copy = _signed("c" * 32, "Sign up for our newsletter. " + story)
    assert [s.article_id for s in index.near_duplicates(copy)] == ["a" * 32]
    assert index.near_duplicates(_signed("d" * 32, "too short")) == []
    assert index.drop_before("2026-01-02") == 1
    assert index.near_duplicates(copy) == [] and len(index) == 1


def _reference_near_duplicates(
    added: list[Signed], probe: Signed, settings: NearDuplicateSettings
) -> set[str]:
    """The index's answer worked out the plain way: a dict of band hashes to lists."""
    buckets: dict[int, list[Signed]] = {}
    for signed in added:
        for key in band_hashes(decode_signature(signed.minhash), settings.rows_per_band).tolist():
            buckets.setdefault(key, []).append(signed)
    found = set()
    for key in band_hashes(decode_signature(probe.minhash), settings.rows_per_band).tolist():
        for earlier in buckets.get(key, [])[: settings.max_bucket]:
            if is_near_duplicate(earlier, probe, settings.threshold):
                found.add(earlier.article_id)
    return found


@pytest.mark.parametrize("merge_every", [64 * 3, 10**9])
def test_the_streaming_index_answers_as_plain_buckets_do(merge_every: int) -> None:
    """Copies of a few stories (cut short, wrapped in boilerplate) against the array index,
    merging often or never, with a small bucket cap and days dropped on the way."""
    settings = NearDuplicateSettings(max_bucket=3)
    rng = random.Random(5)
    stories = [" ".join(filler_story(i, seed=40)["text"] for _ in range(3)) for i in range(6)]
    index = SignatureIndex(settings, merge_every=merge_every)
    added: list[tuple[str, Signed]] = []
    capped = copies = 0
    for n in range(90):
        words = rng.choice(stories).split()
        cut = words[: rng.randint(len(words) // 2, len(words))]
        text = " ".join(["Subscribe", "now", *cut] if rng.random() < 0.5 else cut)
        day = f"2026-01-{1 + n // 30:02d}"
        probe = _signed(f"{n:032x}", text)
        current = [signed for d, signed in added]
        expected = _reference_near_duplicates(current, probe, settings)
        uncapped = _reference_near_duplicates(current, probe, NearDuplicateSettings(max_bucket=99))
        copies += bool(expected)
        capped += len(uncapped) > len(expected)
        assert {s.article_id for s in index.near_duplicates(probe)} == expected
        index.add(probe, day)
        added.append((day, probe))
        if n == 60:
            assert index.drop_before("2026-01-02") == 30
            added = [(d, signed) for d, signed in added if d >= "2026-01-02"]
    assert len(index) == len(added) == 60
    assert copies > 60 and capped > 10  # the case covers copies found, and the cap


def test_the_stream_section_of_the_config() -> None:
    base: dict[str, Any] = {"sources": [{"name": "a", "type": "rss", "url": "http://x.test/"}]}
    assert parse_config(base, "nw.yaml", None).stream == StreamSettings()
    parsed = parse_config({**base, "stream": {"window": 5, "status_interval": 2}}, "nw.yaml", None)
    assert (parsed.stream.window_s, parsed.stream.status_interval_s) == (5.0, 2.0)
    for stream, where in (
        ({"windw": 5}, "stream.windw"),
        ({"window": 0}, "stream.window"),
        ({"window": 2, "tick": 3}, "stream.tick"),
        ({"status_interval": "30s"}, "stream.status_interval"),
        ({"state_refresh": 10}, "stream.state_refresh"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_config({**base, "stream": stream}, "nw.yaml", None)
        assert where in str(err.value)


def test_the_stream_runs_on_the_direct_runner_only() -> None:
    assert stream_options([]).view_as(StandardOptions).streaming
    for args in (["--runner=FlinkRunner"], ["--direct_running_mode=multi_processing"]):
        with pytest.raises(StreamNotSupported):
            stream_options(args)
