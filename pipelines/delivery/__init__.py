"""Delivering alerts to people and systems: Apprise notifications, signed webhooks, Atom
feeds per topic, digests and spike alerts (``alerts[]`` items of type ``notify``,
``webhook``, ``feed`` and ``digest``).

Delivery never blocks or undoes a commit. What the run and the stream call:

* at commit, once a run's (or window's) alerts are in the alert log, inside the commit
  step so that a repeated commit repeats it (it writes nothing twice)::

      enqueue(root: str, run_id: str, alerts: Sequence[Alert | Story],
              sinks: Sequence[DeliverySink]) -> int

* after the commit (at the end of ``newswatch run``; in ``newswatch stream`` after each
  window's commit and on a timer, so digests go out on time), with the run lock held::

      deliver(root: str, sinks: Sequence[DeliverySink], now: datetime | None = None,
              *, sleep=time.sleep) -> list[SinkDelivery]

  ``deliver`` also finishes what a killed process left: calling it at start-up, before a
  new run, sends the outbox of a run that committed but did not deliver.

* spikes, after a commit: ``find_spikes(story_alerts, now, settings,
  load_last_spikes(root))`` over the story alerts of the last ``baseline_days`` (the alert
  log), then ``enqueue`` the spikes under a run id of their own and ``record_spikes(root,
  spikes)``.

* config: ``parse_delivery_sinks([(raw, "alerts[i]"), ...], file=..., environ=...)`` for
  the ``alerts[]`` items of these types, ``parse_spike_settings(raw, "spikes", file=...)``.

* command line: ``command.add_status_parser`` / ``command.add_retry_parser`` on the
  ``alerts`` sub-commands, then ``command.main(args)``.

State lives under ``<out>/_state/`` (``outbox/``, ``deadletter/``, ``digest/``, ``feeds/``,
``spikes/``); the feeds under ``<out>/feeds/``. Every file goes through Beam filesystems.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newswatch.pipelines.delivery.deadletters import SinkStatus, retry, status
    from newswatch.pipelines.delivery.outbox import enqueue
    from newswatch.pipelines.delivery.sender import SinkDelivery, deliver
    from newswatch.pipelines.delivery.sink_config import (
        parse_delivery_sink,
        parse_delivery_sinks,
        parse_spike_settings,
    )
    from newswatch.pipelines.delivery.sinks import DeliverySink, SpikeSettings
    from newswatch.pipelines.delivery.spikes import find_spikes, load_last_spikes, record_spikes
    from newswatch.pipelines.delivery.story import Story

# Imported when first used: the config reads ``sinks`` and ``sink_config`` and must not load
# Beam (which the outbox's filesystem access does).
_HOME = {
    "SinkStatus": "deadletters",
    "retry": "deadletters",
    "status": "deadletters",
    "enqueue": "outbox",
    "SinkDelivery": "sender",
    "deliver": "sender",
    "parse_delivery_sink": "sink_config",
    "parse_delivery_sinks": "sink_config",
    "parse_spike_settings": "sink_config",
    "DeliverySink": "sinks",
    "SpikeSettings": "sinks",
    "find_spikes": "spikes",
    "load_last_spikes": "spikes",
    "record_spikes": "spikes",
    "Story": "story",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


__all__ = [
    "DeliverySink",
    "SinkDelivery",
    "SinkStatus",
    "SpikeSettings",
    "Story",
    "deliver",
    "enqueue",
    "find_spikes",
    "load_last_spikes",
    "parse_delivery_sink",
    "parse_delivery_sinks",
    "parse_spike_settings",
    "record_spikes",
    "retry",
    "status",
]
