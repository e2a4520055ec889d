"""The stream's sender thread: it drains while running, and a stop does not wait out the
backoff of a receiver that is down."""

from __future__ import annotations

import time
from pathlib import Path

from delivery_receivers import WebhookReceiver, story

from newswatch.pipelines.cli.broker import free_port
from newswatch.pipelines.delivery import enqueue, status
from newswatch.pipelines.delivery.loop import DeliveryLoop
from newswatch.pipelines.delivery.sinks import RetryPolicy, WebhookSink

SECRET = "loop-secret"


def hook(port: int, retries: int = 5) -> WebhookSink:
    return WebhookSink(
        name="desk-hook",
        url=f"http://127.0.0.1:{port}/hook",
        secret=SECRET,
        allow_insecure=True,
        retry=RetryPolicy(retries=retries, base_delay_s=30.0),
    )


def test_the_loop_delivers_what_is_queued_while_it_runs(tmp_path: Path) -> None:
    with WebhookReceiver(SECRET) as receiver:
        sink = hook(receiver.port)
        loop = DeliveryLoop(str(tmp_path), [sink], interval_s=0.05)
        loop.start()
        try:
            enqueue(str(tmp_path), "window-1", [story(1)], [sink])
            deadline = time.monotonic() + 10
            while not receiver.accepted_ids() and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            loop.stop(10)
    assert receiver.accepted_ids() == [story(1).alert_id]


def test_a_stop_gives_up_the_backoff_and_keeps_the_alert_pending(tmp_path: Path) -> None:
    sink = hook(free_port())  # nobody listens: every try fails, the next waits 15-30 s
    enqueue(str(tmp_path), "window-1", [story(1)], [sink])
    loop = DeliveryLoop(str(tmp_path), [sink], interval_s=0.05)
    loop.start()
    time.sleep(0.5)  # the first try has failed; the loop waits for its retry
    started = time.monotonic()
    loop.stop(10)
    assert time.monotonic() - started < 5
    [row] = status(str(tmp_path))
    assert (row.delivered, row.pending, row.dead) == (0, 1, 0)
