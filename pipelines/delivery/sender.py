"""Draining the outbox: every pending alert to its sink, after the commit that queued it.

Notify and webhook sinks get one message per alert, retried with backoff inside the drain
(``retrying``); an alert still refused goes to ``_state/deadletter/<sink>/`` with its last
error. The feed sink rewrites its topics' Atom files; a digest sink files the alerts into
their periods and sends the periods that have ended. Each alert sent is recorded before
the next is tried (``outbox``), so draining again after a crash repeats nothing but the
alert in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from newswatch.pipelines.delivery import digest, outbox, webhook
from newswatch.pipelines.delivery.feed import update_feeds
from newswatch.pipelines.delivery.messages import Message, story_message
from newswatch.pipelines.delivery.notify import send_message
from newswatch.pipelines.delivery.retrying import Attempt, Outcome, Sleep, WaitBudget, with_retries
from newswatch.pipelines.delivery.sinks import (
    DeliverySink,
    DigestSink,
    FeedSink,
    Transport,
    WebhookSink,
)
from newswatch.pipelines.delivery.story import Story

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkDelivery:
    """What one drain did for one sink."""

    sink: str
    delivered: int = 0
    dead: int = 0
    held: bool = False  # the receiver kept failing past the drain's wait: the rest waits


def deliver(
    root: str,
    sinks: Sequence[DeliverySink],
    now: datetime | None = None,
    *,
    sleep: Sleep = time.sleep,
) -> list[SinkDelivery]:
    """Drain every sink's outbox once. Call after a commit, with the run lock held."""
    now = now or datetime.now(UTC)
    report = []
    for sink in sinks:
        if isinstance(sink, FeedSink):
            report.append(_deliver_feed(root, sink, now))
        elif isinstance(sink, DigestSink):
            digest.collect(root, sink, now)
            budget = WaitBudget(sink.via.retry.max_wait_s)
            send = partial(_send_digest, sleep=sleep, budget=budget)
            report.append(SinkDelivery(sink.name, delivered=digest.send_due(root, sink, now, send)))
        else:
            report.append(_drain(root, sink, now, sleep))
    for item in report:
        if item.dead:
            log.warning(
                "alerts sink %s: %d alerts refused, moved to the dead letters", item.sink, item.dead
            )
        if item.held:
            log.warning("alerts sink %s: the receiver is failing; the rest waits", item.sink)
    return report


def _deliver_feed(root: str, sink: FeedSink, now: datetime) -> SinkDelivery:
    delivered = 0
    for entry in outbox.pending_entries(root, sink.name):
        update_feeds(root, sink, entry.stories, now)
        progress = outbox.Progress(delivered=[s.alert.alert_id for s in entry.stories])
        outbox.finish_entry(root, sink.name, entry.entry_id, progress, now)
        delivered += len(entry.stories)
    return SinkDelivery(sink.name, delivered=delivered)


def _drain(root: str, sink: Transport, now: datetime, sleep: Sleep) -> SinkDelivery:
    delivered = dead = 0
    budget = WaitBudget(sink.retry.max_wait_s)
    for entry in outbox.pending_entries(root, sink.name):
        progress = outbox.load_progress(root, sink.name, entry.entry_id)
        for story in entry.stories:
            alert_id = story.alert.alert_id
            if progress.done(alert_id):
                continue
            outcome = send_story(sink, story, sleep, budget)
            if outcome.out_of_time:
                # The receiver is down for longer than a drain may wait: the rest of the
                # outbox stays pending for the next drain.
                error = outcome.last.error or "the receiver refused the alert"
                outbox.record_error(root, sink.name, error, now)
                return SinkDelivery(sink.name, delivered=delivered, dead=dead, held=True)
            if outcome.last.ok:
                progress.delivered.append(alert_id)
                delivered += 1
            else:
                _bury_story(root, sink, entry.entry_id, story, outcome, now)
                progress.dead.append(alert_id)
                dead += 1
            outbox.save_progress(root, sink.name, entry.entry_id, progress)
        outbox.finish_entry(root, sink.name, entry.entry_id, progress, now)
    return SinkDelivery(sink.name, delivered=delivered, dead=dead)


def _bury_story(
    root: str, sink: Transport, entry_id: str, story: Story, outcome: Outcome, now: datetime
) -> None:
    # The dead letter is written before the progress that skips the alert: a crash in
    # between sends it again rather than losing it.
    error = outcome.last.error or "the receiver refused the alert"
    record = {
        "story": story.to_dict(),
        "error": error,
        "attempts": outcome.attempts,
        "entry": entry_id,
        "dead_at": now.isoformat(),
    }
    outbox.bury(root, sink.name, story.alert.alert_id, record)
    outbox.record_error(root, sink.name, error, now)


def send_story(sink: Transport, story: Story, sleep: Sleep, budget: WaitBudget) -> Outcome:
    """One alert through a notify or webhook sink, with the sink's retries."""
    body = story.alert.to_json().encode("utf-8")
    return send_via(sink, story_message(story), body, story.alert.alert_id, sleep, budget)


def _send_digest(
    sink: DigestSink, message: Message, body: bytes, ident: str, *, sleep: Sleep, budget: WaitBudget
) -> Outcome:
    return send_via(sink.via, message, body, ident, sleep, budget)


def send_via(
    transport: Transport,
    message: Message,
    body: bytes,
    event_id: str,
    sleep: Sleep,
    budget: WaitBudget,
) -> Outcome:
    """``message`` (notify) or the JSON ``body`` (webhook), retried per the sink's policy."""
    if isinstance(transport, WebhookSink):
        attempt = partial(webhook.post, transport, body, event_id, transport.retry.timeout_s)
        return with_retries(attempt, transport.retry, sleep, budget)
    sent: set[int] = set()

    def attempt_notify() -> Attempt:
        # A retry goes only to the URLs that have not taken the message yet.
        result = send_message(transport.urls, message, frozenset(sent))
        sent.update(result.sent)
        return Attempt(ok=len(sent) == len(transport.urls), error=result.error)

    return with_retries(attempt_notify, transport.retry, sleep, budget)
