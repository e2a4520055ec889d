"""Faults against real components: processes killed mid-commit, a broker that stops
answering, hostile feed servers, a full or read-only disk, and every kind of bad input.
Each test asserts what was stored, committed and reported afterwards."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from articles import arms_story, filler_story
from configs import GROUP, kafka_alerts, kafka_config, kafka_source, rss_source, write_config
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka_tools import committed_offsets, high_watermarks, new_topic, produce, read_all
from outputs import dataset_files, read_articles, read_jsonl
from processes import child_pids, is_running, newswatch, wait_for
from servers import LocalHttpServer, respond

from newswatch.connectors.kafka.messages import parse_message
from newswatch.pipelines import run as batch
from newswatch.pipelines.cli import main
from newswatch.pipelines.cli.broker import Broker, free_port, start_broker
from newswatch.pipelines.control.config import load_config
from newswatch.schemas import RawArticle

pytestmark = pytest.mark.slow


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    """A broker of the test's own, which the test may pause; resumed and stopped at the end."""
    running = start_broker(free_port())
    yield running
    running.process.send_signal(signal.SIGCONT)
    running.stop()


def alerts_recorded_as_delivered(out: Path) -> bool:
    """True when the one commit manifest in ``out`` records its alerts as sent."""
    manifests = list((out / "_state" / "commits").glob("*.json"))
    try:
        return len(manifests) == 1 and json.loads(manifests[0].read_text())["alerts_delivered"]
    except (OSError, ValueError):  # being rewritten
        return False


def test_killed_after_alerts_were_sent_but_before_offsets_were_committed(
    own_broker: Broker, broker: Broker, tmp_path: Path
) -> None:
    """The source broker stops answering as the commit begins, so the commit sends the alerts
    (to another broker) and then hangs on the offset commit, where the process is killed."""
    topic = new_topic(own_broker.bootstrap, partitions=3)
    alerts_topic = new_topic(broker.bootstrap, partitions=1, prefix="alerts")
    stories = [filler_story(i, seed=21) for i in range(30)] + [arms_story(i) for i in range(2)]
    produce(own_broker.bootstrap, topic, stories)
    out = tmp_path / "data"
    # Alerts go to the other broker, so they can be sent while the source broker is paused.
    config = write_config(
        tmp_path / "nw.yaml",
        [kafka_source(own_broker.bootstrap, topic)],
        out,
        [{"type": "file"}, kafka_alerts(broker.bootstrap, alerts_topic)],
    )

    run = newswatch("run", "--config", str(config), stdout=subprocess.DEVNULL, stderr=None)
    wait_for(lambda: any((out / "articles").glob("dt=*/*.parquet")), 60, "a commit", run)
    own_broker.process.send_signal(signal.SIGSTOP)
    wait_for(
        lambda: len(read_all(broker.bootstrap, alerts_topic, timeout_s=1)) == 2, 30, "2 alerts sent"
    )
    wait_for(lambda: alerts_recorded_as_delivered(out), 30, "the manifest to record the alerts")
    workers = child_pids(run.pid)
    assert workers, "the default run has worker processes"
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    # The workers die with the run: none is left to commit the offsets once the broker answers.
    wait_for(lambda: not any(map(is_running, workers)), 10, "the workers to die with the run")
    own_broker.process.send_signal(signal.SIGCONT)

    assert alerts_recorded_as_delivered(out)
    assert set(committed_offsets(own_broker.bootstrap, topic, GROUP).values()) == {None}

    assert main(["run", "--config", str(config)]) == 0
    assert sorted(read_articles(out).column("url").to_pylist()) == sorted(s["url"] for s in stories)
    file_alerts = read_jsonl(out, "alerts")
    assert len(file_alerts) == 2
    sent = [json.loads(v)["alert_id"] for _, v in read_all(broker.bootstrap, alerts_topic)]
    assert sorted(sent) == sorted(a["alert_id"] for a in file_alerts)
    assert committed_offsets(own_broker.bootstrap, topic, GROUP) == high_watermarks(
        own_broker.bootstrap, topic
    )
    assert not list((out / "_state" / "commits").glob("*.json"))


def test_a_broker_that_stops_answering_mid_run_fails_it_and_commits_nothing(
    own_broker: Broker, tmp_path: Path
) -> None:
    topic = new_topic(own_broker.bootstrap, partitions=2)
    stories = [filler_story(i, seed=22) for i in range(20)]
    produce(own_broker.bootstrap, topic, stories)
    out = tmp_path / "data"
    config_path = kafka_config(
        tmp_path / "nw.yaml", own_broker.bootstrap, topic, out, read_timeout=2
    )
    config = load_config(str(config_path))
    plan = batch.plan_run(config)  # the broker answered when the run began ...
    own_broker.process.send_signal(signal.SIGSTOP)  # ... and then went silent
    pipeline = beam.Pipeline(options=PipelineOptions([]))
    batch.build(pipeline, config, plan)
    with pytest.raises(Exception, match="no data from|did not answer|cannot reach"):
        pipeline.run().wait_until_finish()
    own_broker.process.send_signal(signal.SIGCONT)

    assert dataset_files(out) == []
    assert set(committed_offsets(own_broker.bootstrap, topic, GROUP).values()) == {None}
    assert main(["run", "--config", str(config_path)]) == 0
    assert sorted(read_articles(out).column("url").to_pylist()) == sorted(s["url"] for s in stories)


GOOD_FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Good</title>
<item><title>Harbour reopens after storm</title><link>https://good.example/harbour</link>
<description>The harbour reopened on Monday after a week of repairs.</description></item>
</channel></rss>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<rss version="2.0"><channel><title>&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;</title>
<item><title>&b;</title><link>https://evil.example/1</link></item></channel></rss>"""


def _trickle(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml")
    handler.end_headers()
    for _ in range(40):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.1)


def _redirect_loop(handler) -> None:
    handler.send_response(302)
    handler.send_header("Location", "/loop.xml")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def test_hostile_feed_servers_are_each_reported_and_the_run_goes_on(
    tmp_path: Path, http_server: LocalHttpServer
) -> None:
    bomb = gzip.compress(b"\0" * (20 * 2**20))
    routes = {
        "/good.xml": respond(200, GOOD_FEED, Content_Type="application/rss+xml"),
        "/slow.xml": _trickle,
        "/404.xml": respond(404, b"no"),
        "/500.xml": respond(500, b"boom"),
        "/429.xml": respond(429, b"", Retry_After="3600"),
        "/loop.xml": _redirect_loop,
        "/html.xml": respond(200, b"<html><body>hello</body></html>", Content_Type="text/html"),
        "/bomb.xml": respond(
            200, bomb, Content_Type="application/rss+xml", Content_Encoding="gzip"
        ),
        "/huge.xml": respond(
            200, b"<rss>" + b" " * (3 * 2**20), Content_Type="application/rss+xml"
        ),
        "/cut.xml": respond(200, GOOD_FEED[:150], Content_Type="application/rss+xml"),
        "/laughs.xml": respond(200, BILLION_LAUGHS, Content_Type="application/rss+xml"),
    }
    http_server.routes.update(routes)
    config = write_config(
        tmp_path / "nw.yaml",
        [
            rss_source("feed-" + path.strip("/").split(".")[0], http_server.url(path))
            for path in routes
        ],
        tmp_path / "data",
        alerts=None,
        http={"timeout": 1, "max_bytes": 1048576},
    )

    assert main(["run", "--config", str(config)]) == 0
    assert read_articles(tmp_path / "data").column("url").to_pylist() == [
        "https://good.example/harbour"
    ]
    [report_file] = (tmp_path / "data" / "_state" / "runs").glob("*.json")
    feeds = {
        f["source"].removeprefix("feed-"): f for f in json.loads(report_file.read_text())["feeds"]
    }
    assert feeds.pop("good")["status"] == "ok"
    expected = {
        "slow": "timed out",
        "404": "HTTP 404",
        "500": "HTTP 500",
        "429": "HTTP 429",
        "loop": "redirect",
        "html": "not a feed",
        "bomb": "decompressed body over",
        "huge": "over 1048576 bytes",
        "laughs": "entity",
    }
    for name, reason in expected.items():
        assert feeds[name]["status"] == "failed", name
        assert reason in feeds[name]["error"], (name, feeds[name]["error"])
    # A truncated feed is read as far as it goes, or reported; never a crash.
    assert feeds["cut"]["status"] in ("ok", "failed") and feeds["cut"]["error"]
    assert "evil.example" not in json.dumps(read_jsonl(tmp_path / "data", "rejected"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 400 KiB filesystem (tmpfs), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_run_cleanly_and_commits_nothing(
    broker: Broker, small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = new_topic(broker.bootstrap, partitions=2)
    # Random hex does not compress: 300 stories need more than the disk's 400 KiB.
    stories = [{**filler_story(i, seed=23), "summary": os.urandom(2048).hex()} for i in range(300)]
    produce(broker.bootstrap, topic, stories)
    out = small_disk / "data"
    config = kafka_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out)

    assert main(["run", "--config", str(config)]) == 4
    assert "No space left on device" in capsys.readouterr().err
    assert dataset_files(out) == []
    assert set(committed_offsets(broker.bootstrap, topic, GROUP).values()) == {None}

    elsewhere = tmp_path / "roomy"
    assert main(["run", "--config", str(config), "--out", str(elsewhere)]) == 0
    assert read_articles(elsewhere).num_rows == 300


def remount_read_only(mount: Path, timeout: float = 30.0) -> None:
    """Remount read-only, retrying while a writer holds a file open (the kernel says busy)."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            ["mount", "-o", "remount,ro", str(mount)], capture_output=True, text=True
        )
        if done.returncode == 0:
            return
        if "busy" not in done.stderr or time.monotonic() > deadline:
            raise AssertionError(f"remount read-only failed: {done.stderr}")
        time.sleep(0.02)


def test_an_output_turning_read_only_mid_run_fails_it_cleanly(
    broker: Broker, small_disk: Path, tmp_path: Path
) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    topic = new_topic(broker.bootstrap, partitions=2)
    stories = [filler_story(i, seed=24) for i in range(150)]
    produce(broker.bootstrap, topic, stories)
    out = small_disk / "data"
    config = kafka_config(tmp_path / "nw.yaml", broker.bootstrap, topic, out)

    run = newswatch("run", "--config", str(config), stdout=subprocess.DEVNULL)
    wait_for(lambda: any(out.glob("_staging/*/articles/dt=*/*.parquet")), 60, "a staged file")
    remount_read_only(small_disk)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 4, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("newswatch: run failed:") and "Read-only file system" in last
    # No traceback: the reason, and a warning that the lock file could not be removed.
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err

    assert dataset_files(out) == []
    assert set(committed_offsets(broker.bootstrap, topic, GROUP).values()) == {None}
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert main(["run", "--config", str(config)]) == 0
    assert sorted(read_articles(out).column("url").to_pylist()) == sorted(s["url"] for s in stories)
    assert not any((out / "_staging").iterdir())


def test_odd_articles_are_stored_or_rejected_with_a_reason(broker: Broker, tmp_path: Path) -> None:
    topic = new_topic(broker.bootstrap, partitions=1)
    huge = "The council met again. " * (5 * 2**20 // 23)
    messages = [
        {"url": "https://odd.example/huge", "title": "A very long report", "text": huge},
        {
            "url": "https://odd.example/korean",
            "title": "서울 날씨",
            "text": "서울은 오늘 맑겠습니다. 기온은 영상 5도입니다.",
        },
        {
            "url": "https://odd.example/cyrillic",
            "title": "Погода",
            "text": "В Москве сегодня солнечно и тепло.",
        },
        {
            "url": "https://odd.example/future",
            "title": "From the future",
            "text": "Dated 2999.",
            "published": "2999-01-01T00:00:00Z",
        },
        {
            "url": "https://odd.example/ancient",
            "title": "Old",
            "text": "Dated 1970.",
            "published": "1970-01-01T00:00:00Z",
        },
        {"url": "https://odd.example/empty", "title": "", "text": ""},
        {
            "url": "https://odd.example/../../etc/passwd",
            "title": "Path tricks",
            "text": "../../../",
        },
        {"url": "https://odd.example/types", "title": ["not", "a", "string"]},
        {"id": 12345, "title": "numeric id"},
    ]
    produce(broker.bootstrap, topic, messages)
    out = tmp_path / "data"
    config = kafka_config(
        tmp_path / "nw.yaml", broker.bootstrap, topic, out, max_message_bytes=8_000_000
    )
    assert main(["run", "--config", str(config)]) == 0

    rows = {r["url"]: r for r in read_articles(out).to_pylist()}
    assert len(rows["https://odd.example/huge"]["text"]) == 200_000
    assert rows["https://odd.example/korean"]["title"] == "서울 날씨"
    assert "Москве" in rows["https://odd.example/cyrillic"]["text"]
    assert rows["https://odd.example/future"]["published_at"] is None
    assert rows["https://odd.example/ancient"]["published_at"] is None
    assert (
        "https://odd.example/etc/passwd" in rows or "https://odd.example/../../etc/passwd" in rows
    )
    reasons = sorted(r["reason"] for r in read_jsonl(out, "rejected"))
    assert reasons == ["empty_text", "wrong_type", "wrong_type"]
    for path in dataset_files(out):
        assert path.startswith(("articles/dt=", "alerts/dt=", "rejected/dt=")) and ".." not in path


def test_secrets_never_reach_output_or_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-do-not-print"
    monkeypatch.setenv("NEWSWATCH_TEST_KAFKA_PASSWORD", secret)
    config = kafka_config(
        tmp_path / "nw.yaml",
        "127.0.0.1:9",
        "news.raw",
        tmp_path / "data",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="reader",
        sasl_plain_password_env="NEWSWATCH_TEST_KAFKA_PASSWORD",
    )
    assert main(["run", "--config", str(config), "-v"]) == 4
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "url",
                            "id",
                            "title",
                            "text",
                            "summary",
                            "published",
                            "source",
                            "language",
                            "authors",
                            "x",
                        ]
                    ),
                    children,
                    max_size=6,
                )
            ),
            max_leaves=12,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_message_becomes_an_article_or_a_rejection(value: bytes) -> None:
    from datetime import UTC, datetime

    result = parse_message("wire", "t", 0, 7, value, 10_000, datetime(2024, 1, 1, tzinfo=UTC))
    if isinstance(result, RawArticle):
        # The message's own "source" names the publisher; the source's name is the default.
        publisher = (json.loads(value).get("source") or "").strip() or "wire"
        assert (result.source, result.origin) == (publisher, "kafka://t/0/7")
    else:
        assert result.reason and result.locator == {"topic": "t", "partition": 0, "offset": 7}
