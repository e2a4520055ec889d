"""Delivering alerts to people and systems: Apprise notifications, signed webhooks, Atom
feeds per topic, digests and spike alerts (``alerts[]`` items of type ``notify``,
``webhook``, ``feed`` and ``digest``).

Delivery never blocks or undoes a commit. Where it is wired in:

* at commit: ``commit/manifest.py`` calls ``committed.queue_committed`` once the run's (or
  window's) files are in the dataset and before its source positions are saved; it reads
  the alert log and article files back, counts each story's copies and sources, and
  ``enqueue``s them (safe to repeat: a repeated commit writes nothing twice);
* after the commit, with the run lock held: ``after_commit.deliver_committed`` (spikes when
  configured, then ``deliver``) at the end of ``newswatch run`` (``pipelines/run.py``),
  and every second on the stream's sender thread (``loop.DeliveryLoop``, started by
  ``pipelines/stream.py``), which also sends digests when their period ends;
* config: ``control/config.py`` hands the ``alerts[]`` items of these types to
  ``sink_config.parse_delivery_sinks`` and ``spikes:`` to ``sink_config.spikes_section``;
* command line: ``newswatch alerts status`` and ``alerts retry`` live in
  ``pipelines/cli/alerts_delivery.py``.

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
