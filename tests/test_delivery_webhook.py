"""Signed webhooks against a real HTTP receiver: signatures, retries, dead letters, retry."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path

import pytest
from delivery_receivers import T0, WebhookReceiver, story

from newswatch.pipelines.cli.broker import free_port
from newswatch.pipelines.delivery import deliver, enqueue, retry, status
from newswatch.pipelines.delivery.retrying import (
    Attempt,
    WaitBudget,
    backoff_delay,
    with_retries,
)
from newswatch.pipelines.delivery.sinks import RetryPolicy, WebhookSink
from newswatch.pipelines.delivery.webhook import parse_retry_after, signature
from newswatch.schemas import Alert

SECRET = "s3cr3t-signing-key-for-tests"
FAST = RetryPolicy(retries=3, base_delay_s=0.01, max_delay_s=0.05)


def sink(url: str, policy: RetryPolicy = FAST, name: str = "hook") -> WebhookSink:
    return WebhookSink(name=name, url=url, secret=SECRET, allow_insecure=True, retry=policy)


class Sleeps(list[float]):
    """Records the backoff instead of waiting it out (the receivers are real)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_every_webhook_is_signed_over_timestamp_dot_body(tmp_path: Path) -> None:
    alerts = [story(1), story(2)]
    with WebhookReceiver(SECRET) as receiver:
        enqueue(str(tmp_path), "run-1", alerts, [sink(receiver.url)])
        [report] = deliver(str(tmp_path), [sink(receiver.url)], T0, sleep=Sleeps())
    assert report.delivered == 2
    assert [d.json for d in receiver.deliveries] == [a.to_dict() for a in alerts]
    assert all(d.signature_ok and d.fresh for d in receiver.deliveries)
    assert receiver.accepted_ids() == [a.alert_id for a in alerts]
    assert {d.headers["Content-Type"] for d in receiver.deliveries} == {
        "application/json; charset=utf-8"
    }


def test_the_signature_is_documented_hmac_sha256() -> None:
    body = b'{"a": 1}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, "1700000000", body) == f"sha256={expected}"


def test_a_500_then_200_receiver_gets_the_alert_once_the_retry_comes(tmp_path: Path) -> None:
    sleeps = Sleeps()
    with WebhookReceiver(SECRET, script=[500, 503]) as receiver:
        enqueue(str(tmp_path), "run-1", [story(1)], [sink(receiver.url)])
        [report] = deliver(str(tmp_path), [sink(receiver.url)], T0, sleep=sleeps)
    assert receiver.statuses == [500, 503, 200]
    assert receiver.accepted_ids() == [story(1).alert_id]
    assert all(d.signature_ok for d in receiver.deliveries)
    assert report.delivered == 1 and report.dead == 0
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1] * 2  # backed off between the tries


def test_retry_after_is_honoured_and_capped(tmp_path: Path) -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(retries=2, base_delay_s=0.01, retry_after_cap_s=7)
    with WebhookReceiver(
        SECRET, script=[(429, {"Retry-After": "3"}), (503, {"Retry-After": "3600"})]
    ) as receiver:
        enqueue(str(tmp_path), "run-1", [story(1)], [sink(receiver.url, policy)])
        deliver(str(tmp_path), [sink(receiver.url, policy)], T0, sleep=sleeps)
    assert sleeps == [3.0, 7.0]
    assert receiver.statuses == [429, 503, 200]


def test_a_receiver_down_for_the_whole_drain_gets_it_once_after_retry(tmp_path: Path) -> None:
    root = str(tmp_path)
    port = free_port()  # nothing listens there yet: connection refused
    hook = sink(f"http://127.0.0.1:{port}/hook")
    enqueue(root, "run-1", [story(1), story(2)], [hook])
    [report] = deliver(root, [hook], T0, sleep=Sleeps())
    assert (report.delivered, report.dead) == (0, 2)
    [row] = status(root)
    assert (row.sink, row.delivered, row.pending, row.dead) == ("hook", 0, 0, 2)
    assert row.last_error and "ConnectionRefusedError" in row.last_error
    dead = sorted((tmp_path / "_state" / "deadletter" / "hook").glob("*.json"))
    assert len(dead) == 2 and "error" in json.loads(dead[0].read_text())

    assert deliver(root, [hook], T0, sleep=Sleeps())[0].delivered == 0  # dead stays dead
    assert retry(root, "hook") == {"hook": 2}
    with WebhookReceiver(SECRET, port=port) as back:
        deliver(root, [hook], T0, sleep=Sleeps())
        deliver(root, [hook], T0, sleep=Sleeps())  # a second drain sends nothing more
    assert sorted(back.accepted_ids()) == sorted([story(1).alert_id, story(2).alert_id])
    assert all(d.signature_ok for d in back.deliveries)
    [row] = status(root)
    assert (row.delivered, row.pending, row.dead) == (2, 0, 0)


def test_an_error_that_echoes_the_secrets_is_recorded_without_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "hook-path-token-5d41402a"
    with WebhookReceiver(SECRET) as receiver:
        echo = f"bad request to /{token} signed with {SECRET}".encode()
        receiver.script = [(422, {}, echo)]
        hook = sink(f"{receiver.url}/{token}")
        enqueue(str(tmp_path), "run-1", [story(1)], [hook])
        [report] = deliver(str(tmp_path), [hook], T0, sleep=Sleeps())
    assert report.dead == 1
    [row] = status(str(tmp_path))
    assert row.last_error and row.last_error.startswith("HTTP 422 from http://127.0.0.1/...")
    state = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    for text in (row.last_error, state, caplog.text):
        assert SECRET not in text and token not in text


def test_a_4xx_is_not_retried(tmp_path: Path) -> None:
    with WebhookReceiver(SECRET, script=[400]) as receiver:
        enqueue(str(tmp_path), "run-1", [story(1)], [sink(receiver.url)])
        [report] = deliver(str(tmp_path), [sink(receiver.url)], T0, sleep=Sleeps())
    assert receiver.statuses == [400] and report.dead == 1


def test_a_crash_between_commit_and_delivery_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit is repeated after the crash (enqueue again), then two drains; the second
    drain is killed after recording its first alert, as by a SIGKILL."""
    from newswatch.pipelines.delivery import outbox

    root, alerts = str(tmp_path), [story(n) for n in range(1, 5)]
    with WebhookReceiver(SECRET) as receiver:
        hook = sink(receiver.url)
        assert enqueue(root, "run-1", alerts, [hook]) == 1
        assert enqueue(root, "run-1", alerts, [hook]) == 0  # the repeated commit
        real_save = outbox.save_progress

        def save_then_die(*args: object) -> None:
            real_save(*args)  # type: ignore[arg-type]
            raise KeyboardInterrupt  # the process dies right after recording one alert

        monkeypatch.setattr(outbox, "save_progress", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            deliver(root, [hook], T0, sleep=Sleeps())
        monkeypatch.setattr(outbox, "save_progress", real_save)
        assert enqueue(root, "run-1", alerts, [hook]) == 0  # recovery repeats the commit
        deliver(root, [hook], T0, sleep=Sleeps())
        deliver(root, [hook], T0, sleep=Sleeps())
        assert enqueue(root, "run-1", alerts, [hook]) == 0  # even after it was delivered
        deliver(root, [hook], T0, sleep=Sleeps())
    assert receiver.accepted_ids() == [a.alert_id for a in alerts]
    [row] = status(root)
    assert (row.delivered, row.pending, row.dead) == (4, 0, 0)


def test_sinks_take_only_their_topics_and_scores(tmp_path: Path) -> None:
    from newswatch.pipelines.delivery.sinks import AlertSelection

    picky = WebhookSink(
        name="picky",
        url="http://127.0.0.1:9/",
        allow_insecure=True,
        selection=AlertSelection(topics=frozenset({"iran-russia-drones"}), min_score=0.9),
    )
    alerts: list[Alert] = [
        story(1),
        story(2, topic="iran-russia-drones", score=0.5),
        story(3, topic="iran-russia-drones", score=0.95),
    ]
    enqueue(str(tmp_path), "run-1", alerts, [picky])
    [row] = status(str(tmp_path), ["picky"])
    assert row.pending == 1


@pytest.mark.parametrize(
    ("retry", "retry_after", "jitter", "expected"),
    [
        (0, None, 0.0, 0.5),
        (0, None, 0.999, 0.9995),
        (3, None, 0.0, 4.0),
        (10, None, 1.0, 30.0),  # capped at max_delay_s
        (0, 5.0, 0.5, 5.0),
        (0, 1e9, 0.5, 60.0),  # Retry-After capped
    ],
)
def test_backoff_delay(
    retry: int, retry_after: float | None, jitter: float, expected: float
) -> None:
    assert backoff_delay(retry, RetryPolicy(), retry_after, jitter) == pytest.approx(expected)


def test_the_wait_is_bounded_per_sink_and_drain() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(retries=20, base_delay_s=1, max_delay_s=30, max_wait_s=60)
    budget = WaitBudget(policy.max_wait_s)
    outcome = with_retries(
        lambda: Attempt(ok=False, error="down"), policy, sleeps, budget, lambda: 1.0
    )
    assert outcome.out_of_time and sum(sleeps) <= 60
    assert outcome.attempts == len(sleeps) + 1 < 21


def test_a_drain_that_runs_out_of_wait_leaves_the_rest_pending(tmp_path: Path) -> None:
    root, port = str(tmp_path), free_port()
    policy = RetryPolicy(retries=5, base_delay_s=1, max_wait_s=2)
    hook = sink(f"http://127.0.0.1:{port}/hook", policy)
    alerts = [story(n) for n in range(1, 6)]
    enqueue(root, "run-1", alerts, [hook])
    sleeps = Sleeps()
    [report] = deliver(root, [hook], T0, sleep=sleeps)
    assert report.held and (report.delivered, report.dead) == (0, 0)
    assert sum(sleeps) <= 2
    [row] = status(root)
    assert (row.pending, row.dead) == (5, 0) and row.last_error
    with WebhookReceiver(SECRET, port=port) as receiver:
        deliver(root, [hook], T0, sleep=Sleeps())
    assert receiver.accepted_ids() == [a.alert_id for a in alerts]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = 1445412480.0  # 2015-10-21 07:28:00 UTC
    assert parse_retry_after(value, now) == expected
