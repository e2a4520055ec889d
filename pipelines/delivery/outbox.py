"""The durable outbox: alerts waiting for delivery, what was delivered, what is dead.

Layout under ``<out>/_state/``::

    outbox/<sink>/pending/<entry>.json   stories of one committed run or window, for one sink
    outbox/<sink>/progress/<entry>.json  which of them were delivered or given up so far
    outbox/<sink>/ledger.json            delivered count, last error, entries finished
    deadletter/<sink>/<id>.json          an alert (or digest) the receiver kept refusing

``enqueue`` runs as part of a commit and writes one pending entry per (sink, run). It is
safe to call again for the same run (a commit repeated after a crash): an entry that is
pending, or that the ledger lists as finished, is not written again. The sender records
each alert delivered in the entry's progress file before going on, so a crash in a drain
repeats at most the alert being sent when it died (at least once, with the stable
``alert_id``). An entry is finished by recording it in the ledger, then deleting its
files; a crash in between leaves files the next drain recognises as finished.

The ledger remembers finished entries for ``FINISHED_KEPT``: a commit is repeated at the
next start, long before that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from newswatch.pipelines.delivery import store
from newswatch.pipelines.delivery.sinks import DeliverySink
from newswatch.pipelines.delivery.story import Story
from newswatch.schemas import Alert

OUTBOX = "outbox"
DEADLETTER = "deadletter"
FINISHED_KEPT = timedelta(days=90)


@dataclass(frozen=True)
class Entry:
    """One pending entry: ``entry_id`` is the run or window id (``retry-...`` for retries)."""

    sink: str
    entry_id: str
    stories: tuple[Story, ...]


@dataclass
class Progress:
    delivered: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)

    def done(self, alert_id: str) -> bool:
        return alert_id in self.delivered or alert_id in self.dead


def _sink_dir(root: str, sink: str, *parts: str) -> str:
    return store.state_path(root, OUTBOX, store.safe_name(sink, "sink name"), *parts)


def _pending_path(root: str, sink: str, entry_id: str) -> str:
    return _sink_dir(root, sink, "pending", f"{store.safe_name(entry_id, 'entry id')}.json")


def _progress_path(root: str, sink: str, entry_id: str) -> str:
    return _sink_dir(root, sink, "progress", f"{entry_id}.json")


def deadletter_dir(root: str, sink: str) -> str:
    return store.state_path(root, DEADLETTER, store.safe_name(sink, "sink name"))


def enqueue(
    root: str,
    run_id: str,
    alerts: Sequence[Alert | Story],
    sinks: Iterable[DeliverySink],
) -> int:
    """Queue a committed run's (or window's) alerts for every sink that takes them.

    Returns the number of entries written; 0 for a run already queued or delivered.
    """
    stories = [a if isinstance(a, Story) else Story(a) for a in alerts]
    written = 0
    for sink in sinks:
        chosen = [s.to_dict() for s in stories if sink.selection.accepts(s.alert)]
        if not chosen or already_queued(root, sink.name, run_id):
            continue
        write_entry(root, sink.name, run_id, chosen)
        written += 1
    return written


def already_queued(root: str, sink: str, entry_id: str) -> bool:
    if store.exists(_pending_path(root, sink, entry_id)):
        return True
    return entry_id in load_ledger(root, sink).get("finished", {})


def pending_entries(root: str, sink: str) -> Iterator[Entry]:
    """The sink's pending entries, oldest run first; finished ones are cleaned up on the way."""
    finished = load_ledger(root, sink).get("finished", {})
    for path in store.list_json(_sink_dir(root, sink, "pending")):
        entry_id = store.stem(path)
        if entry_id in finished:
            _forget(root, sink, entry_id)
            continue
        record = store.read_json(path)
        if record is None:  # deleted by a concurrent ``retry`` or finished meanwhile
            continue
        yield Entry(sink, entry_id, tuple(Story.from_dict(s) for s in record["stories"]))


def load_progress(root: str, sink: str, entry_id: str) -> Progress:
    data = store.read_json(_progress_path(root, sink, entry_id), {})
    return Progress(list(data.get("delivered", [])), list(data.get("dead", [])))


def save_progress(root: str, sink: str, entry_id: str, progress: Progress) -> None:
    store.write_json(
        _progress_path(root, sink, entry_id),
        {"delivered": progress.delivered, "dead": progress.dead},
    )


def load_ledger(root: str, sink: str) -> dict[str, Any]:
    return store.read_json(_sink_dir(root, sink, "ledger.json"), {}) or {}


def update_ledger(root: str, sink: str, now: datetime, **changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into the ledger (``delivered`` adds up) and save it atomically."""
    ledger = load_ledger(root, sink)
    ledger["delivered"] = ledger.get("delivered", 0) + changes.pop("delivered", 0)
    finished = dict(ledger.get("finished", {}))
    finished.update(changes.pop("finished", {}))
    ledger.update(changes)
    ledger["finished"] = {
        entry: at
        for entry, at in finished.items()
        if now - datetime.fromisoformat(at) < FINISHED_KEPT
    }
    store.write_json(_sink_dir(root, sink, "ledger.json"), ledger)
    return ledger


def finish_entry(root: str, sink: str, entry_id: str, progress: Progress, now: datetime) -> None:
    """Count the entry's deliveries once and forget its files."""
    changes: dict[str, Any] = {"last_delivered_at": now.isoformat()} if progress.delivered else {}
    update_ledger(
        root,
        sink,
        now,
        delivered=len(progress.delivered),
        finished={entry_id: now.isoformat()},
        **changes,
    )
    _forget(root, sink, entry_id)


def _forget(root: str, sink: str, entry_id: str) -> None:
    store.delete(_pending_path(root, sink, entry_id))
    store.delete(_progress_path(root, sink, entry_id))


def record_error(root: str, sink: str, error: str, now: datetime) -> None:
    update_ledger(root, sink, now, last_error=error, last_error_at=now.isoformat())


def bury(root: str, sink: str, letter_id: str, record: dict[str, Any]) -> None:
    """Write a dead letter: what could not be delivered and the last error (already scrubbed)."""
    path = store.join(deadletter_dir(root, sink), f"{store.safe_name(letter_id, 'id')}.json")
    store.write_json(path, record)


def known_sinks(root: str) -> list[str]:
    """Every sink with state in the outbox or the dead letters."""
    found = set(store.list_dirs(store.state_path(root, OUTBOX)))
    found |= set(store.list_dirs(store.state_path(root, DEADLETTER)))
    return sorted(found)


def write_entry(root: str, sink: str, entry_id: str, stories: Sequence[dict[str, Any]]) -> None:
    """A pending entry of ``Story.to_dict()`` records, as is (dead letters sent again)."""
    record = {"sink": sink, "entry": entry_id, "stories": list(stories)}
    store.write_json(_pending_path(root, sink, entry_id), record)
