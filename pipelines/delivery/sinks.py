"""The delivery sinks of ``alerts:`` as frozen, typed objects (parsed in ``sink_config``).

Resolved secrets (Apprise URLs, the webhook's signing key) are held with ``repr=False`` so
that printing or logging a sink never shows them; ``secrets()`` lists them for scrubbing
error texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time, timedelta

from newswatch.pipelines.delivery.redact import redact_url, url_secrets
from newswatch.schemas import Alert

NOTIFY = "notify"
WEBHOOK = "webhook"
FEED = "feed"
DIGEST = "digest"
EVERY = ("hourly", "daily", "weekly")


@dataclass(frozen=True)
class RetryPolicy:
    """How one drain retries an alert a receiver refused, before it goes to the dead letters.

    Delays grow ``base_delay_s * 2**n`` with equal jitter, capped at ``max_delay_s``; a
    ``Retry-After`` is honoured up to ``retry_after_cap_s``. A sink waits at most
    ``max_wait_s`` in one drain, all its alerts together, so a dead receiver holds a drain
    up for a bounded time (plus ``timeout_s`` per request); what it did not get to waits
    for the next drain.
    """

    retries: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    retry_after_cap_s: float = 60.0
    max_wait_s: float = 120.0
    timeout_s: float = 10.0


@dataclass(frozen=True)
class AlertSelection:
    """Which alerts a sink takes: its topics (None: all) at or above ``min_score``."""

    topics: frozenset[str] | None = None
    min_score: float = 0.0

    def accepts(self, alert: Alert) -> bool:
        if self.topics is not None and alert.topic not in self.topics:
            return False
        return alert.score >= self.min_score


@dataclass(frozen=True)
class NotifySink:
    """Apprise: chat, push and email services, one URL each."""

    name: str
    urls: tuple[str, ...] = field(repr=False)
    urls_env: str | None = None
    selection: AlertSelection = AlertSelection()
    retry: RetryPolicy = RetryPolicy()
    kind: str = NOTIFY

    def describe(self) -> str:
        where = f"${self.urls_env}" if self.urls_env else ", ".join(map(redact_url, self.urls))
        return f"notify {where}"

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for url in self.urls for s in url_secrets(url))


@dataclass(frozen=True)
class WebhookSink:
    """An HTTPS POST of the alert JSON, signed with HMAC-SHA256 when a secret is named."""

    name: str
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    secret_env: str | None = None
    allow_insecure: bool = False
    selection: AlertSelection = AlertSelection()
    retry: RetryPolicy = RetryPolicy()
    kind: str = WEBHOOK

    def describe(self) -> str:
        return f"webhook {redact_url(self.url)}"

    def secrets(self) -> tuple[str, ...]:
        return (*url_secrets(self.url), *((self.secret,) if self.secret else ()))


@dataclass(frozen=True)
class FeedSink:
    """An Atom file per topic, ``<out>/feeds/<topic>.atom``, of the newest alerts."""

    name: str
    max_entries: int = 100
    selection: AlertSelection = AlertSelection()
    kind: str = FEED

    def describe(self) -> str:
        return f"feed, newest {self.max_entries} per topic"

    def secrets(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class DigestSchedule:
    """Periods start at ``at`` in ``tz``: every hour (its minute), day, or week (on Mondays)."""

    every: str = "daily"
    at: time = time(0, 0)
    tz: str = "UTC"

    @property
    def length(self) -> timedelta:
        return {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}.get(
            self.every, timedelta(weeks=1)
        )


Transport = NotifySink | WebhookSink


@dataclass(frozen=True)
class DigestSink:
    """One message per period through ``via``: the period's stories grouped by topic."""

    name: str
    via: Transport
    schedule: DigestSchedule = DigestSchedule()
    send_empty: bool = False
    selection: AlertSelection = AlertSelection()
    kind: str = DIGEST

    def describe(self) -> str:
        return f"{self.schedule.every} digest via {self.via.describe()}"

    def secrets(self) -> tuple[str, ...]:
        return self.via.secrets()


DeliverySink = NotifySink | WebhookSink | FeedSink | DigestSink


@dataclass(frozen=True)
class SpikeSettings:
    """When a topic's matched stories surge: see ``spikes.find_spike``."""

    window: timedelta = timedelta(hours=6)
    baseline_days: int = 14
    sigmas: float = 3.0
    min_stories: int = 3
    cooldown: timedelta = timedelta(hours=24)


def all_secrets(sinks: Iterable[DeliverySink]) -> tuple[str, ...]:
    return tuple(s for sink in sinks for s in sink.secrets())
