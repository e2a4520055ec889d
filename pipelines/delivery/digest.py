"""Digests: one message per period per digest sink, with the period's stories by topic.

A drain first moves the sink's queued stories into the file of their period
(``_state/digest/<sink>/<period start>.json``, by the alert's ``created_at``), then sends
every period that has ended and is not sent yet, and marks it sent. So a period is sent
once however many runs added to it and however often the sender runs or restarts; only a
crash between the receiver taking the digest and the mark being written sends it again,
with the same ``digest_id``. A story raised after its period went out (a run that
committed late) goes into the current period rather than being lost.

Periods start at ``at`` in the sink's time zone (``zoneinfo``), so a daily 07:00 digest in
Europe/Brussels comes at 07:00 local time in summer and in winter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from newswatch.pipelines.delivery import outbox, store
from newswatch.pipelines.delivery.messages import Message, digest_message
from newswatch.pipelines.delivery.retrying import Outcome
from newswatch.pipelines.delivery.sinks import DigestSchedule, DigestSink
from newswatch.pipelines.delivery.story import Story

DIGEST = "digest"
OPEN, SENT, DEAD = "open", "sent", "dead"
EMPTY = "empty"  # an ended period with no stories, not sent (send_empty is off)

# Sends a digest through the sink's transport: (message, JSON payload, digest id) -> outcome.
SendDigest = Callable[[DigestSink, Message, bytes, str], Outcome]


def period_containing(moment: datetime, schedule: DigestSchedule) -> tuple[datetime, datetime]:
    """The period [start, end) holding ``moment``, both in UTC."""
    tz = ZoneInfo(schedule.tz)
    local = moment.astimezone(tz)
    if schedule.every == "hourly":
        # Hours are counted in UTC so that the repeated hour of an autumn night is two periods.
        start = local.replace(minute=schedule.at.minute, second=0, microsecond=0).astimezone(UTC)
        if start > moment:
            start -= timedelta(hours=1)
        return start, start + timedelta(hours=1)
    step = 7 if schedule.every == "weekly" else 1
    day = local.date() - timedelta(days=local.weekday() if step == 7 else 0)
    start = _boundary(day, schedule.at, tz)
    if start > moment:
        day -= timedelta(days=step)
        start = _boundary(day, schedule.at, tz)
    return start, _boundary(day + timedelta(days=step), schedule.at, tz)


def _boundary(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def digest_id(sink: str, start: datetime) -> str:
    return hashlib.sha256(f"{sink}\x00{start.isoformat()}".encode()).hexdigest()[:32]


def _period_path(root: str, sink: str, start: datetime) -> str:
    return store.state_path(root, DIGEST, sink, f"{start:%Y%m%dT%H%M%SZ}.json")


def _cursor_path(root: str, sink: str) -> str:
    return store.state_path(root, DIGEST, sink, "_sent-until.json")


def _closed_until(root: str, sink: str) -> datetime | None:
    value = store.read_json(_cursor_path(root, sink))
    return datetime.fromisoformat(value["until"]) if value else None


def collect(root: str, sink: DigestSink, now: datetime) -> int:
    """Move the sink's queued stories into their periods; returns how many were new."""
    closed = _closed_until(root, sink.name)
    added = 0
    for entry in outbox.pending_entries(root, sink.name):
        groups: dict[datetime, list[Story]] = {}
        for story in entry.stories:
            start, end = period_containing(story.alert.created_at, sink.schedule)
            if closed is not None and end <= closed:  # that digest is out: the next one
                start, end = period_containing(max(now, closed), sink.schedule)
            groups.setdefault(start, []).append(story)
        for start, stories in sorted(groups.items()):
            added += _add_to_period(root, sink, start, stories)
        outbox.finish_entry(root, sink.name, entry.entry_id, outbox.Progress(), now)
    return added


def _add_to_period(root: str, sink: DigestSink, start: datetime, stories: list[Story]) -> int:
    path = _period_path(root, sink.name, start)
    _, end = period_containing(start, sink.schedule)
    record = store.read_json(path) or {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "status": OPEN,
        "stories": [],
    }
    known = {s["alert"]["alert_id"] for s in record["stories"]}
    new = [s.to_dict() for s in stories if s.alert.alert_id not in known]
    if new:
        record["stories"] += new
        store.write_json(path, record)
    return len(new)


def send_due(root: str, sink: DigestSink, now: datetime, send: SendDigest) -> int:
    """Send every ended period not sent yet (and, with send_empty, the last one if empty)."""
    closed = _closed_until(root, sink.name)
    folder = store.state_path(root, DIGEST, sink.name)
    paths = [p for p in store.list_json(folder) if not store.stem(p).startswith("_")]
    if sink.send_empty:
        start, end = period_containing(
            period_containing(now, sink.schedule)[0] - timedelta(microseconds=1), sink.schedule
        )
        path = _period_path(root, sink.name, start)
        if (closed is None or end > closed) and path not in paths:
            record = {"start": start.isoformat(), "end": end.isoformat(), "status": OPEN}
            store.write_json(path, {**record, "stories": []})
            paths.append(path)
    sent = 0
    for path in sorted(paths):
        record = store.read_json(path)
        end = datetime.fromisoformat(record["end"])
        if record["status"] != OPEN or end > now:
            continue
        result = _send_period(root, sink, path, record, now, send)
        if result == OPEN:  # the sink's wait ran out: this period and later ones wait
            break
        if result == SENT:
            sent += 1
        if closed is None or end > closed:
            closed = end
            store.write_json(_cursor_path(root, sink.name), {"until": end.isoformat()})
    return sent


def _send_period(
    root: str, sink: DigestSink, path: str, record: dict[str, Any], now: datetime, send: SendDigest
) -> str:
    """Send one ended period; returns its status after: sent, dead, or still open."""
    start, end = datetime.fromisoformat(record["start"]), datetime.fromisoformat(record["end"])
    stories = [Story.from_dict(s) for s in record["stories"]]
    if not stories and not sink.send_empty:
        record["status"] = SENT
        store.write_json(path, record)
        return EMPTY
    stories.sort(key=lambda s: (s.alert.topic, s.alert.created_at, s.alert.alert_id))
    tz = ZoneInfo(sink.schedule.tz)
    titles = {s.alert.topic: s.alert.topic_title for s in stories}
    message = digest_message(sink.name, start.astimezone(tz), end.astimezone(tz), stories, titles)
    ident = digest_id(sink.name, start)
    payload = {
        "kind": DIGEST,
        "digest_id": ident,
        "sink": sink.name,
        "period": {"start": record["start"], "end": record["end"], "tz": sink.schedule.tz},
        "stories": [
            {**s.alert.to_dict(), "copies": s.copies, "sources": list(s.sources)} for s in stories
        ],
    }
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    outcome = send(sink, message, body, ident)
    if outcome.last.ok:
        record["status"], record["sent_at"] = SENT, now.isoformat()
        store.write_json(path, record)
        outbox.update_ledger(root, sink.name, now, delivered=1, last_delivered_at=now.isoformat())
        return SENT
    error = outcome.last.error or "the receiver refused the digest"
    if outcome.out_of_time:
        outbox.record_error(root, sink.name, error, now)
        return OPEN
    outbox.bury(
        root,
        sink.name,
        ident,
        {
            "period": store.stem(path),
            "error": error,
            "attempts": outcome.attempts,
            "dead_at": now.isoformat(),
        },
    )
    record["status"] = DEAD
    store.write_json(path, record)
    outbox.record_error(root, sink.name, error, now)
    return DEAD


def reopen_period(root: str, sink: str, period: str) -> None:
    """A dead digest back to open: the next drain sends it again."""
    path = store.state_path(root, DIGEST, sink, f"{store.safe_name(period, 'period')}.json")
    record = store.read_json(path)
    if record is not None and record["status"] == DEAD:
        record["status"] = OPEN
        store.write_json(path, record)


def pending_stories(root: str, sink: str) -> int:
    """Stories waiting in periods not sent yet."""
    total = 0
    for path in store.list_json(store.state_path(root, DIGEST, sink)):
        if store.stem(path).startswith("_"):
            continue
        record = store.read_json(path)
        total += len(record["stories"]) if record["status"] == OPEN else 0
    return total
