"""Digests: period boundaries in the sink's time zone, and one digest per period."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from delivery_receivers import TOPIC, WebhookReceiver, story
from hypothesis import given, settings
from hypothesis import strategies as st

from newswatch.pipelines.cli.broker import free_port
from newswatch.pipelines.delivery import deliver, enqueue, retry, status
from newswatch.pipelines.delivery.digest import period_containing
from newswatch.pipelines.delivery.sinks import DigestSchedule, DigestSink, RetryPolicy, WebhookSink

SECRET = "digest-signing-key"
DAILY = DigestSchedule("daily", time(7, 0), "Europe/Brussels")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "moment", "start", "end"),
    [
        # Brussels is UTC+1 in winter, UTC+2 in summer: 07:00 local moves in UTC.
        (DAILY, utc(2026, 11, 30, 9), utc(2026, 11, 30, 6), utc(2026, 12, 1, 6)),
        (DAILY, utc(2026, 11, 30, 5, 59), utc(2026, 11, 29, 6), utc(2026, 11, 30, 6)),
        (DAILY, utc(2026, 7, 1, 5), utc(2026, 7, 1, 5), utc(2026, 7, 2, 5)),
        # The spring-forward day is 23 hours long, the autumn one 25.
        (DAILY, utc(2026, 3, 28, 12), utc(2026, 3, 28, 6), utc(2026, 3, 29, 5)),
        (DAILY, utc(2026, 10, 24, 12), utc(2026, 10, 24, 5), utc(2026, 10, 25, 6)),
        # Weekly periods start on Mondays; hourly ones at the minute of `at`, local.
        (
            DigestSchedule("weekly", time(7, 0), "UTC"),
            utc(2026, 12, 3, 12),
            utc(2026, 11, 30, 7),
            utc(2026, 12, 7, 7),
        ),
        (
            DigestSchedule("weekly", time(7, 0), "UTC"),
            utc(2026, 11, 30, 6),
            utc(2026, 11, 23, 7),
            utc(2026, 11, 30, 7),
        ),
        (
            DigestSchedule("hourly", time(0, 15), "UTC"),
            utc(2026, 11, 30, 9, 10),
            utc(2026, 11, 30, 8, 15),
            utc(2026, 11, 30, 9, 15),
        ),
        (
            DigestSchedule("hourly", time(0, 0), "Asia/Kolkata"),
            utc(2026, 11, 30, 9, 10),
            utc(2026, 11, 30, 8, 30),
            utc(2026, 11, 30, 9, 30),
        ),
    ],
)
def test_period_boundaries(
    schedule: DigestSchedule, moment: datetime, start: datetime, end: datetime
) -> None:
    assert period_containing(moment, schedule) == (start, end)


@settings(max_examples=300, deadline=None)
@given(
    # hypothesis takes naive bounds and attaches the time zone itself.
    moment=st.datetimes(
        min_value=datetime(1990, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    every=st.sampled_from(["hourly", "daily", "weekly"]),
    at=st.times(),
    tz=st.sampled_from(
        [
            "UTC",
            "Europe/Brussels",
            "America/New_York",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
        ]
    ),
)
def test_periods_hold_their_moment_and_follow_each_other(
    moment: datetime, every: str, at: time, tz: str
) -> None:
    schedule = DigestSchedule(every, at.replace(second=0, microsecond=0, tzinfo=None), tz)
    start, end = period_containing(moment, schedule)
    assert start <= moment < end
    assert period_containing(end, schedule)[0] == end  # the next period starts where this ends
    nominal = schedule.length.total_seconds()
    assert abs((end - start).total_seconds() - nominal) <= 3600  # DST moves a boundary <= 1 h


def digest_sink(url: str, *, send_empty: bool = False) -> DigestSink:
    via = WebhookSink(
        name="morning",
        url=url,
        secret=SECRET,
        allow_insecure=True,
        retry=RetryPolicy(retries=1, base_delay_s=0.01),
    )
    return DigestSink(name="morning", via=via, schedule=DAILY, send_empty=send_empty)


def no_wait(seconds: float) -> None:
    pass


def test_two_runs_in_one_period_make_one_digest_sent_once(tmp_path: Path) -> None:
    root = str(tmp_path)
    run1 = [story(1, created_at=utc(2026, 11, 30, 8)), story(2, created_at=utc(2026, 11, 30, 8))]
    run2 = [
        story(3, created_at=utc(2026, 11, 30, 14)),
        story(4, topic="iran-russia-drones", created_at=utc(2026, 11, 30, 15)),
    ]
    with WebhookReceiver(SECRET) as receiver:
        sink = digest_sink(receiver.url)
        enqueue(root, "run-1", run1, [sink])
        deliver(root, [sink], utc(2026, 11, 30, 9))  # the period is still open: nothing yet
        enqueue(root, "run-2", run2, [sink])
        deliver(root, [sink], utc(2026, 11, 30, 16))
        assert receiver.deliveries == []
        deliver(root, [sink], utc(2026, 12, 1, 6, 1))  # 07:01 in Brussels
        deliver(root, [sink], utc(2026, 12, 1, 6, 2))  # restarted sender: nothing more
        enqueue(root, "run-2", run2, [sink])  # a rerun of a committed run: nothing more
        deliver(root, [sink], utc(2026, 12, 1, 6, 3))
    [digest] = receiver.deliveries
    assert digest.signature_ok
    body = digest.json
    assert body["kind"] == "digest" and body["sink"] == "morning"
    assert body["period"] == {
        "start": "2026-11-30T06:00:00+00:00",
        "end": "2026-12-01T06:00:00+00:00",
        "tz": "Europe/Brussels",
    }
    assert [s["alert_id"] for s in body["stories"]] == [
        a.alert_id for a in (*run1, run2[0], run2[1])
    ]  # grouped by topic: dprk-russia-arms, then iran-russia-drones
    assert [s["topic"] for s in body["stories"]] == [TOPIC] * 3 + ["iran-russia-drones"]
    [row] = status(root)
    assert (row.delivered, row.pending, row.dead) == (1, 0, 0)


def test_an_empty_period_sends_nothing_unless_asked(tmp_path: Path) -> None:
    with WebhookReceiver(SECRET) as receiver:
        deliver(str(tmp_path / "quiet"), [digest_sink(receiver.url)], utc(2026, 12, 1, 7))
        assert receiver.deliveries == []
        chatty = digest_sink(receiver.url, send_empty=True)
        deliver(str(tmp_path / "chatty"), [chatty], utc(2026, 12, 1, 7))
        deliver(str(tmp_path / "chatty"), [chatty], utc(2026, 12, 1, 8))
    [digest] = receiver.deliveries
    assert digest.json["stories"] == []
    assert digest.json["period"]["end"] == "2026-12-01T06:00:00+00:00"


def test_a_story_raised_after_its_digest_went_out_is_in_the_next(tmp_path: Path) -> None:
    root = str(tmp_path)
    with WebhookReceiver(SECRET) as receiver:
        sink = digest_sink(receiver.url)
        enqueue(root, "run-1", [story(1, created_at=utc(2026, 11, 30, 8))], [sink])
        deliver(root, [sink], utc(2026, 12, 1, 6, 1))
        # A run that started before 07:00 and committed after the digest went out.
        enqueue(root, "run-2", [story(2, created_at=utc(2026, 12, 1, 5, 59))], [sink])
        deliver(root, [sink], utc(2026, 12, 1, 6, 5))
        deliver(root, [sink], utc(2026, 12, 2, 6, 5))
    first, second = (d.json for d in receiver.deliveries)
    assert [s["alert_id"] for s in first["stories"]] == [story(1).alert_id]
    assert [s["alert_id"] for s in second["stories"]] == [story(2).alert_id]


def test_a_dead_digest_is_sent_after_retry(tmp_path: Path) -> None:
    root, port = str(tmp_path), free_port()
    sink = digest_sink(f"http://127.0.0.1:{port}/hook")
    enqueue(root, "run-1", [story(1, created_at=utc(2026, 11, 30, 8))], [sink])
    deliver(root, [sink], utc(2026, 12, 1, 6, 1), sleep=no_wait)
    [row] = status(root)
    assert (row.delivered, row.dead) == (0, 1)
    assert retry(root) == {"morning": 1}
    with WebhookReceiver(SECRET, port=port) as receiver:
        deliver(root, [sink], utc(2026, 12, 1, 6, 30))
        deliver(root, [sink], utc(2026, 12, 1, 6, 31))
    [digest] = receiver.deliveries
    assert [s["alert_id"] for s in digest.json["stories"]] == [story(1).alert_id]
    [row] = status(root)
    assert (row.delivered, row.dead, row.pending) == (1, 0, 0)
