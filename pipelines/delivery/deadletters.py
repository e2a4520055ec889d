"""What operators see and do: per-sink status, and sending dead letters again.

``status`` and ``retry`` read and write only the delivery state under ``<out>/_state/``;
neither needs the sinks' secrets, and neither prints one (errors were scrubbed when they
were recorded).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from newswatch.pipelines.delivery import digest, outbox, store


@dataclass(frozen=True)
class SinkStatus:
    sink: str
    delivered: int  # alerts (digests for a digest sink) the receivers took
    pending: int  # alerts waiting: queued, or in a digest period not sent yet
    dead: int  # dead letters: `retry` sends them again
    last_error: str | None
    last_error_at: str | None
    last_delivered_at: str | None


def status(root: str, sinks: Sequence[str] | None = None) -> list[SinkStatus]:
    """Per sink (those named, else every sink with state): delivered, pending, dead, last error."""
    names = list(sinks) if sinks is not None else outbox.known_sinks(root)
    result = []
    for name in names:
        ledger = outbox.load_ledger(root, name)
        delivered, pending = ledger.get("delivered", 0), digest.pending_stories(root, name)
        for entry in outbox.pending_entries(root, name):
            progress = outbox.load_progress(root, name, entry.entry_id)
            delivered += len(progress.delivered)
            pending += sum(1 for s in entry.stories if not progress.done(s.alert.alert_id))
        result.append(
            SinkStatus(
                sink=name,
                delivered=delivered,
                pending=pending,
                dead=len(store.list_json(outbox.deadletter_dir(root, name))),
                last_error=ledger.get("last_error"),
                last_error_at=ledger.get("last_error_at"),
                last_delivered_at=ledger.get("last_delivered_at"),
            )
        )
    return result


def retry(root: str, sink: str | None = None, now: datetime | None = None) -> dict[str, int]:
    """Move dead letters back (of one sink, or of all); returns how many per sink.

    Dead alerts become one new pending entry; dead digests reopen their period. The next
    drain sends them. A crash part-way may leave a letter that was also moved back, which
    sends it twice: at least once, never lost.
    """
    now = now or datetime.now(UTC)
    names = [sink] if sink else store.list_dirs(store.state_path(root, outbox.DEADLETTER))
    moved: dict[str, int] = {}
    for name in names:
        letters = store.list_json(outbox.deadletter_dir(root, name))
        stories = []
        for path in letters:
            record = store.read_json(path, {})
            if "story" in record:
                stories.append(record["story"])
            elif "period" in record:
                digest.reopen_period(root, name, record["period"])
        if stories:
            entry_id = f"retry-{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"
            outbox.write_entry(root, name, entry_id, stories)
        for path in letters:
            store.delete(path)
        moved[name] = len(letters)
    return moved
