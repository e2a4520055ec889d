"""Parsing the delivery sinks of ``alerts:`` (``notify``, ``webhook``, ``feed``, ``digest``).

Every mistake is a ``ConfigError`` naming the key path (``alerts[2].via.urls_env``), and
no message ever quotes a secret: an Apprise URL is named by its position and scheme, a
webhook URL by its scheme and host. Secrets come only from environment variables named in
the file (``urls_env``, ``secret_env``); one written into the file is refused.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.delivery.notify import check_apprise_url
from newswatch.pipelines.delivery.redact import redact_url
from newswatch.pipelines.delivery.sinks import (
    DIGEST,
    EVERY,
    FEED,
    NOTIFY,
    WEBHOOK,
    AlertSelection,
    DeliverySink,
    DigestSchedule,
    DigestSink,
    FeedSink,
    NotifySink,
    RetryPolicy,
    SpikeSettings,
    Transport,
    WebhookSink,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Apprise takes several URLs in one string; a comma may also sit inside one (?to=a,b).
_URL_SEPARATOR = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_SECRET_KEYS = ("secret", "password", "token", "api_key")
_COMMON = {"type", "name", "topics", "min_score"}
# The ``alerts[]`` types parsed here; ``file`` and ``kafka`` are parsed in ``control/config.py``.
DELIVERY_TYPES = (NOTIFY, WEBHOOK, FEED, DIGEST)
UNKNOWN_TYPE = f"must be one of file, kafka, {', '.join(DELIVERY_TYPES)}"


def parse_delivery_sink(
    raw: Mapping[str, Any],
    path: str,
    *,
    file: str = "<config>",
    environ: Mapping[str, str] | None = None,
) -> DeliverySink:
    """The sink an ``alerts[i]`` item of type notify, webhook, feed or digest describes.

    ``environ`` (default ``os.environ``) is where ``urls_env`` and ``secret_env`` are read.

    >>> parse_delivery_sink({"type": "feed", "max_entries": 20}, "alerts[1]")
    FeedSink(name='feed', max_entries=20, selection=AlertSelection(topics=None, min_score=0.0), kind='feed')
    """
    reader = _Reader(file, os.environ if environ is None else environ)
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    if kind == NOTIFY:
        return reader.notify(raw, path)
    if kind == WEBHOOK:
        return reader.webhook(raw, path)
    if kind == FEED:
        return reader.feed(raw, path)
    if kind == DIGEST:
        return reader.digest(raw, path)
    raise ConfigError(file, f"{path}.type", "must be one of notify, webhook, feed, digest")


def sink_name(raw: Mapping[str, Any]) -> str | None:
    """The name an ``alerts[]`` item's sink goes by (its type when unnamed); None for
    ``file`` and ``kafka`` items, which keep no delivery state."""
    kind = raw.get("type")
    if kind not in DELIVERY_TYPES:
        return None
    name = raw.get("name", kind)
    return name if isinstance(name, str) else None


def parse_delivery_sinks(
    items: Sequence[tuple[Mapping[str, Any], str]],
    *,
    file: str = "<config>",
    environ: Mapping[str, str] | None = None,
) -> tuple[DeliverySink, ...]:
    """Several sinks, ``(raw, path)`` each; names must be unique (they key the outbox)."""
    sinks: list[DeliverySink] = []
    for raw, path in items:
        sink = parse_delivery_sink(raw, path, file=file, environ=environ)
        if any(s.name == sink.name for s in sinks):
            raise ConfigError(
                file, f"{path}.name", f"sink name {sink.name!r} is taken: give each sink a name"
            )
        if isinstance(sink, FeedSink) and any(isinstance(s, FeedSink) for s in sinks):
            # Both would write <out>/feeds/<topic>.atom.
            raise ConfigError(file, f"{path}.type", "only one feed sink is allowed")
        sinks.append(sink)
    return tuple(sinks)


def spikes_section(top: Mapping[str, Any], file: str) -> SpikeSettings | None:
    """The config's ``spikes:`` section; None (no spike alerts) when it has none."""
    return parse_spike_settings(top["spikes"], "spikes", file=file) if "spikes" in top else None


def parse_spike_settings(raw: Any, path: str, *, file: str = "<config>") -> SpikeSettings:
    """``spikes: {window_hours, baseline_days, sigmas, min_stories, cooldown_hours}``."""
    r = _Reader(file, {})
    item = r.mapping(
        raw, path, {"window_hours", "baseline_days", "sigmas", "min_stories", "cooldown_hours"}
    )
    d = SpikeSettings()
    window_h = r.number(item, "window_hours", path, d.window.total_seconds() / 3600, 0.25, 24 * 7)
    baseline_days = r.number(item, "baseline_days", path, d.baseline_days, 1, 366)
    if baseline_days != int(baseline_days):
        raise ConfigError(file, f"{path}.baseline_days", "must be a whole number of days")
    if timedelta(days=baseline_days) < 2 * timedelta(hours=window_h):
        raise ConfigError(file, f"{path}.baseline_days", "must span at least two windows")
    return SpikeSettings(
        window=timedelta(hours=window_h),
        baseline_days=int(baseline_days),
        sigmas=r.number(item, "sigmas", path, d.sigmas, 0, 100),
        min_stories=int(r.number(item, "min_stories", path, d.min_stories, 1, 10**6)),
        cooldown=timedelta(
            hours=r.number(
                item, "cooldown_hours", path, d.cooldown.total_seconds() / 3600, 0, 24 * 366
            )
        ),
    )


class _Reader:
    def __init__(self, file: str, environ: Mapping[str, str]) -> None:
        self.file = file
        self.environ = environ

    def error(self, path: str, message: str) -> ConfigError:
        return ConfigError(self.file, path, message)

    def mapping(self, raw: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise self.error(path, "must be a mapping")
        for key in raw:
            if str(key).lower() in _SECRET_KEYS or str(key).lower().endswith("_password"):
                raise self.error(
                    f"{path}.{key}",
                    "secrets never go in the config file: name an environment variable "
                    "that holds it (secret_env, urls_env)",
                )
            if key not in allowed:
                raise self.error(
                    f"{path}.{key}", f"unknown key (expected one of {', '.join(sorted(allowed))})"
                )
        return raw

    def number(
        self, item: Mapping[str, Any], key: str, path: str, default: float, lo: float, hi: float
    ) -> float:
        value = item.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not lo <= value <= hi
        ):
            raise self.error(f"{path}.{key}", f"must be a number from {lo:g} to {hi:g}")
        return float(value)

    def boolean(self, item: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = item.get(key, default)
        if not isinstance(value, bool):
            raise self.error(f"{path}.{key}", "must be true or false")
        return value

    def env(self, item: Mapping[str, Any], key: str, path: str) -> str:
        name = item.get(key)
        if not isinstance(name, str) or not _ENV.fullmatch(name):
            raise self.error(f"{path}.{key}", "must name an environment variable")
        value = self.environ.get(name, "")
        if not value.strip():
            raise self.error(f"{path}.{key}", f"environment variable {name} is not set")
        return value.strip()

    def name(self, item: Mapping[str, Any], path: str, default: str) -> str:
        name = item.get("name", default)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self.error(
                f"{path}.name", "must be a name of letters, digits, '.', '_' or '-' (max 64)"
            )
        return name

    def selection(self, item: Mapping[str, Any], path: str) -> AlertSelection:
        topics = item.get("topics")
        if topics is not None and (
            not isinstance(topics, list)
            or not topics
            or not all(isinstance(t, str) and t for t in topics)
        ):
            raise self.error(f"{path}.topics", "must be a non-empty list of topic ids")
        return AlertSelection(
            topics=frozenset(topics) if topics is not None else None,
            min_score=self.number(item, "min_score", path, 0.0, 0.0, 1.0),
        )

    def retry(self, item: Mapping[str, Any], path: str) -> RetryPolicy:
        retries = self.number(item, "retries", path, RetryPolicy().retries, 0, 20)
        if retries != int(retries):
            raise self.error(f"{path}.retries", "must be a whole number from 0 to 20")
        return RetryPolicy(retries=int(retries))

    def notify(self, raw: Any, path: str, default_name: str = NOTIFY) -> NotifySink:
        item = self.mapping(raw, path, _COMMON | {"urls", "urls_env", "retries"})
        if ("urls" in item) == ("urls_env" in item):
            raise self.error(f"{path}.urls_env", "give exactly one of urls_env and urls")
        if "urls_env" in item:
            key, text = "urls_env", self.env(item, "urls_env", path)
        else:
            key, value = "urls", item["urls"]
            if isinstance(value, list) and all(isinstance(u, str) for u in value):
                value = " ".join(value)
            if not isinstance(value, str):
                raise self.error(f"{path}.urls", "must be a list of Apprise URLs")
            text = value
        urls = tuple(u for u in _URL_SEPARATOR.split(text) if u)
        if not urls:
            raise self.error(f"{path}.{key}", "holds no Apprise URL")
        for i, url in enumerate(urls, 1):
            problem = check_apprise_url(url, secrets_allowed=key == "urls_env")
            if problem:
                raise self.error(f"{path}.{key}", f"URL {i}: {problem}")
        return NotifySink(
            name=self.name(item, path, default_name),
            urls=urls,
            urls_env=item.get("urls_env"),
            selection=self.selection(item, path),
            retry=self.retry(item, path),
        )

    def webhook(self, raw: Any, path: str, default_name: str = WEBHOOK) -> WebhookSink:
        item = self.mapping(raw, path, _COMMON | {"url", "secret_env", "retries", "allow_insecure"})
        url = item.get("url")
        if not isinstance(url, str) or not url.strip():
            raise self.error(f"{path}.url", "must be an https:// URL")
        url = url.strip()
        insecure = self.boolean(item, "allow_insecure", path, False)
        try:
            parts = urlsplit(url)
            _ = parts.port
        except ValueError:
            raise self.error(f"{path}.url", f"{redact_url(url)} is not a valid URL") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise self.error(f"{path}.url", f"{redact_url(url)} is not an https:// URL")
        if parts.scheme == "http" and not insecure:
            raise self.error(
                f"{path}.url",
                f"{redact_url(url)} is not https (set allow_insecure: true to send in the clear)",
            )
        if parts.password:
            raise self.error(
                f"{path}.url",
                "holds a password: sign with secret_env instead of credentials in the URL",
            )
        return WebhookSink(
            name=self.name(item, path, default_name),
            url=url,
            secret=self.env(item, "secret_env", path) if "secret_env" in item else None,
            secret_env=item.get("secret_env"),
            allow_insecure=insecure,
            selection=self.selection(item, path),
            retry=self.retry(item, path),
        )

    def feed(self, raw: Any, path: str) -> FeedSink:
        item = self.mapping(raw, path, _COMMON | {"max_entries"})
        max_entries = self.number(item, "max_entries", path, 100, 1, 10_000)
        if max_entries != int(max_entries):
            raise self.error(f"{path}.max_entries", "must be a whole number from 1 to 10000")
        return FeedSink(
            name=self.name(item, path, FEED),
            max_entries=int(max_entries),
            selection=self.selection(item, path),
        )

    def digest(self, raw: Any, path: str) -> DigestSink:
        item = self.mapping(raw, path, _COMMON | {"every", "at", "tz", "via", "send_empty"})
        name = self.name(item, path, DIGEST)
        return DigestSink(
            name=name,
            via=self.via(item.get("via"), f"{path}.via", name),
            schedule=self.schedule(item, path),
            send_empty=self.boolean(item, "send_empty", path, False),
            selection=self.selection(item, path),
        )

    def via(self, raw: Any, path: str, name: str) -> Transport:
        kind = raw.get("type") if isinstance(raw, Mapping) else None
        if kind == NOTIFY:
            return self.notify(raw, path, default_name=name)
        if kind == WEBHOOK:
            return self.webhook(raw, path, default_name=name)
        raise self.error(f"{path}.type", "must be notify or webhook")

    def schedule(self, item: Mapping[str, Any], path: str) -> DigestSchedule:
        every = item.get("every", "daily")
        if every not in EVERY:
            raise self.error(f"{path}.every", f"must be one of {', '.join(EVERY)}")
        at = item.get("at", "00:00")
        if isinstance(at, int) and not isinstance(at, bool) and 0 <= at < 24 * 60:
            # YAML 1.1 reads an unquoted 07:00 as the base-60 number 420.
            at = f"{at // 60:02d}:{at % 60:02d}"
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", at) if isinstance(at, str) else None
        if match is None:
            raise self.error(f"{path}.at", 'must be a time of day "HH:MM" (quote it in YAML)')
        tz = item.get("tz", "UTC")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise self.error(f"{path}.tz", f"{tz!r} is not an IANA time zone") from None
        return DigestSchedule(every=every, at=time(int(match[1]), int(match[2])), tz=tz)
