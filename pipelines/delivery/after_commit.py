"""Delivery after a commit, as ``newswatch run`` and ``newswatch stream`` call it.

``deliver_committed`` raises the spike alerts due (when ``spikes:`` is configured), then
drains every sink's outbox once. It is called with the run lock held: at the end of a run
(``pipelines/run.py``) and on the stream's delivery thread (``loop.py``). It never raises
for a receiver or for delivery state: what went wrong is in the report, scrubbed of every
secret, so a failed delivery never changes a run's outcome. Whatever was not delivered
stays in the outbox for the next drain.

Spike alerts are not written to the alert log, which keeps one alert per (topic, story):
the story a spike points at already has its alert there. They are queued under an entry
of their own (``spikes-<time>``) and kept in ``_state/spikes/alerts/<alert id>.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from newswatch.pipelines.delivery import store
from newswatch.pipelines.delivery.committed import recent_story_alerts
from newswatch.pipelines.delivery.outbox import enqueue
from newswatch.pipelines.delivery.redact import redact_text
from newswatch.pipelines.delivery.retrying import Sleep
from newswatch.pipelines.delivery.sender import SinkDelivery, deliver
from newswatch.pipelines.delivery.sinks import DeliverySink, SpikeSettings, all_secrets
from newswatch.pipelines.delivery.spikes import (
    SPIKES,
    find_spikes,
    load_last_spikes,
    record_spikes,
)
from newswatch.pipelines.delivery.story import Story
from newswatch.schemas import Alert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReport:
    """One drain: per sink what it did, the spike alerts raised, and an error that stopped it."""

    sinks: tuple[SinkDelivery, ...] = ()
    spikes: int = 0
    error: str | None = None

    @property
    def delivered(self) -> int:
        return sum(s.delivered for s in self.sinks)

    @property
    def dead(self) -> int:
        return sum(s.dead for s in self.sinks)


def raise_spikes(
    root: str, sinks: Sequence[DeliverySink], settings: SpikeSettings, now: datetime
) -> list[Alert]:
    """Queue the spike alerts due at ``now`` from the alert log of the baseline period."""
    since = now - settings.window - timedelta(days=settings.baseline_days)
    spikes = find_spikes(recent_story_alerts(root, since), now, settings, load_last_spikes(root))
    if not spikes:
        return []
    for spike in spikes:
        path = store.state_path(root, SPIKES, "alerts", f"{spike.alert_id}.json")
        store.write_json(path, spike.to_dict())
    enqueue(
        root, f"spikes-{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}", [Story(s) for s in spikes], sinks
    )
    # Recorded last: a crash before this raises the spike again at the next drain (at
    # least once) rather than never.
    record_spikes(root, spikes)
    return spikes


def deliver_committed(
    root: str,
    sinks: Sequence[DeliverySink],
    spikes: SpikeSettings | None = None,
    now: datetime | None = None,
    *,
    sleep: Sleep = time.sleep,
) -> DeliveryReport:
    """Spikes (when ``spikes`` is given), then one drain of every sink. Never raises an
    ``Exception``: an error is logged and reported, without secrets."""
    if not sinks:
        return DeliveryReport()
    now = now or datetime.now(UTC)
    raised = 0
    try:
        if spikes is not None:
            raised = len(raise_spikes(root, sinks, spikes, now))
        return DeliveryReport(tuple(deliver(root, sinks, now, sleep=sleep)), raised)
    except Exception as err:  # noqa: BLE001 - delivery must not fail a committed run
        error = redact_text(f"{type(err).__name__}: {err}", all_secrets(sinks))
        log.warning("alert delivery stopped: %s; the outbox is kept for the next drain", error)
        return DeliveryReport(spikes=raised, error=error)
