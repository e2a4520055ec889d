"""Delivery sinks in ``alerts:``: every mistake names its key path and never shows a secret."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest

from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.delivery import parse_delivery_sink, parse_delivery_sinks
from newswatch.pipelines.delivery.redact import redact_text, redact_url, url_secrets
from newswatch.pipelines.delivery.sink_config import parse_spike_settings
from newswatch.pipelines.delivery.sinks import (
    DigestSchedule,
    DigestSink,
    FeedSink,
    NotifySink,
    SpikeSettings,
    WebhookSink,
)

SECRET = "TOPSECRET4f9a2cQwErTyUiO"  # the shape of a Slack token
ENV = {
    "NOTIFY_URLS": f"slack://T1JJ3T3L2/A1BRTD4JD/{SECRET} ntfy://desk-alerts",
    "HOOK_SECRET": SECRET,
    "BAD_SCHEME": f"nosuch://user:{SECRET}@example.org",
    "BAD_URL": "mailto://",
    "EMPTY": "  ",
}
HOOK = "https://hooks.example.org/newswatch"


def parse(raw: dict[str, Any]) -> Any:
    return parse_delivery_sink(raw, "alerts[2]", file="cfg.yaml", environ=ENV)


def test_valid_sinks() -> None:
    notify = parse(
        {
            "type": "notify",
            "name": "desk",
            "urls_env": "NOTIFY_URLS",
            "topics": ["dprk-russia-arms"],
            "min_score": 0.5,
        }
    )
    assert isinstance(notify, NotifySink)
    assert notify.urls == (f"slack://T1JJ3T3L2/A1BRTD4JD/{SECRET}", "ntfy://desk-alerts")
    assert notify.selection.topics == frozenset({"dprk-russia-arms"})
    hook = parse({"type": "webhook", "url": HOOK, "secret_env": "HOOK_SECRET", "retries": 2})
    assert isinstance(hook, WebhookSink) and hook.secret == SECRET and hook.retry.retries == 2
    assert parse({"type": "feed"}) == FeedSink(name="feed", max_entries=100)
    digest = parse(
        {
            "type": "digest",
            "every": "daily",
            "at": "07:00",
            "tz": "Europe/Brussels",
            "via": {"type": "notify", "urls": ["ntfy://desk-digest"]},
        }
    )
    assert isinstance(digest, DigestSink) and isinstance(digest.via, NotifySink)
    assert digest.schedule == DigestSchedule("daily", time(7, 0), "Europe/Brussels")
    assert not digest.send_empty
    for sink in (notify, hook, digest):
        assert SECRET not in repr(sink) and SECRET not in sink.describe()


def test_an_unquoted_yaml_time_is_read_as_the_time() -> None:
    # PyYAML reads `at: 07:00` as the base-60 integer 420.
    digest = parse({"type": "digest", "at": 420, "via": {"type": "notify", "urls": ["ntfy://d"]}})
    assert digest.schedule.at == time(7, 0)


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        (
            {"type": "notify", "urls": ["ntfy://x"], "colour": "red"},
            "alerts[2].colour",
            "unknown key",
        ),
        ({"type": "pager"}, "alerts[2].type", "must be one of"),
        (
            {"type": "notify", "urls": ["nosuch://x"]},
            "alerts[2].urls",
            "unknown Apprise scheme 'nosuch'",
        ),
        (
            {"type": "notify", "urls_env": "BAD_SCHEME"},
            "alerts[2].urls_env",
            "URL 1: unknown Apprise scheme",
        ),
        (
            {"type": "notify", "urls_env": "BAD_URL"},
            "alerts[2].urls_env",
            "not a valid mailto:// URL",
        ),
        ({"type": "notify", "urls_env": "MISSING"}, "alerts[2].urls_env", "MISSING is not set"),
        ({"type": "notify", "urls_env": "EMPTY"}, "alerts[2].urls_env", "EMPTY is not set"),
        ({"type": "notify"}, "alerts[2].urls_env", "exactly one of"),
        (
            {"type": "notify", "urls": [f"mailto://me:{SECRET}@example.org"]},
            "alerts[2].urls",
            "holds a credential",
        ),
        (
            {"type": "notify", "urls": [f"slack://T1JJ3T3L2/A1BRTD4JD/{SECRET}"]},
            "alerts[2].urls",
            "urls_env",
        ),
        (
            {"type": "webhook", "url": f"http://hooks.example.org/{SECRET}"},
            "alerts[2].url",
            "not https",
        ),
        (
            {"type": "webhook", "url": f"ftp://hooks.example.org/{SECRET}"},
            "alerts[2].url",
            "https://",
        ),
        (
            {"type": "webhook", "url": f"https://u:{SECRET}@hooks.example.org/"},
            "alerts[2].url",
            "password",
        ),
        (
            {"type": "webhook", "url": HOOK, "secret": SECRET},
            "alerts[2].secret",
            "never go in the config",
        ),
        (
            {"type": "webhook", "url": HOOK, "secret_env": "MISSING"},
            "alerts[2].secret_env",
            "not set",
        ),
        ({"type": "webhook", "url": HOOK, "retries": 2.5}, "alerts[2].retries", "whole number"),
        ({"type": "feed", "max_entries": 0}, "alerts[2].max_entries", "from 1"),
        ({"type": "feed", "topics": "dprk"}, "alerts[2].topics", "list of topic ids"),
        ({"type": "feed", "min_score": 2}, "alerts[2].min_score", "from 0 to 1"),
        ({"type": "feed", "name": "../etc"}, "alerts[2].name", "letters, digits"),
        (
            {"type": "digest", "every": "monthly", "via": {"type": "notify", "urls": ["ntfy://d"]}},
            "alerts[2].every",
            "hourly",
        ),
        (
            {"type": "digest", "at": "7am", "via": {"type": "notify", "urls": ["ntfy://d"]}},
            "alerts[2].at",
            "HH:MM",
        ),
        (
            {
                "type": "digest",
                "tz": "Mars/Olympus",
                "via": {"type": "notify", "urls": ["ntfy://d"]},
            },
            "alerts[2].tz",
            "IANA",
        ),
        ({"type": "digest", "via": {"type": "feed"}}, "alerts[2].via.type", "notify or webhook"),
        (
            {"type": "digest", "via": {"type": "webhook", "url": HOOK, "token": SECRET}},
            "alerts[2].via.token",
            "never go in the config",
        ),
        (
            {"type": "digest", "via": {"type": "notify", "urls_env": "NOPE"}},
            "alerts[2].via.urls_env",
            "NOPE is not set",
        ),
    ],
)
def test_config_errors_name_the_key_path_and_never_the_secret(
    raw: dict[str, Any], path: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert caught.value.file == "cfg.yaml"
    assert caught.value.path == path
    assert words in caught.value.message
    assert SECRET not in str(caught.value)


def test_an_insecure_webhook_must_be_asked_for() -> None:
    hook = parse({"type": "webhook", "url": "http://127.0.0.1:8080/in", "allow_insecure": True})
    assert isinstance(hook, WebhookSink) and hook.secret is None


def test_sink_names_are_unique_and_there_is_one_feed() -> None:
    items = [
        ({"type": "webhook", "url": HOOK}, "alerts[0]"),
        ({"type": "webhook", "url": HOOK}, "alerts[1]"),
    ]
    with pytest.raises(ConfigError, match="give each sink a name") as caught:
        parse_delivery_sinks(items, environ=ENV)
    assert caught.value.path == "alerts[1].name"
    named = [items[0], ({"type": "webhook", "name": "other", "url": HOOK}, "alerts[1]")]
    assert [s.name for s in parse_delivery_sinks(named, environ=ENV)] == ["webhook", "other"]
    feeds = [({"type": "feed"}, "alerts[0]"), ({"type": "feed", "name": "f2"}, "alerts[1]")]
    with pytest.raises(ConfigError, match="only one feed"):
        parse_delivery_sinks(feeds, environ=ENV)


def test_spike_settings() -> None:
    assert parse_spike_settings(None, "spikes") == SpikeSettings()
    settings = parse_spike_settings({"window_hours": 3, "cooldown_hours": 12}, "spikes")
    assert settings.window == timedelta(hours=3) and settings.cooldown == timedelta(hours=12)
    with pytest.raises(ConfigError) as caught:
        parse_spike_settings({"baseline_days": 0.2}, "spikes", file="cfg.yaml")
    assert caught.value.path == "spikes.baseline_days"
    with pytest.raises(ConfigError) as caught:
        parse_spike_settings({"sigma": 3}, "spikes")
    assert caught.value.path == "spikes.sigma"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://hooks.example.org/services/{SECRET}", "https://hooks.example.org/..."),
        ("https://hooks.example.org", "https://hooks.example.org"),
        (f"mailto://me:{SECRET}@mail.example.org", "mailto://mail.example.org/..."),
        ("not a url", "***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_masks_every_part_of_a_secret_url() -> None:
    url = f"slack://T1JJ3T3L2/A1BRTD4JD/{SECRET}?key={SECRET}x"
    text = f"failed {url} with token {SECRET} and key {SECRET}x"
    cleaned = redact_text(text, url_secrets(url))
    assert SECRET not in cleaned and "failed" in cleaned
