"""Spike alerts: raised on a burst, not on the same number of stories spread evenly."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from delivery_receivers import T0, TOPIC, story

from newswatch.pipelines.delivery import (
    SpikeSettings,
    deliver,
    enqueue,
    find_spikes,
    load_last_spikes,
    record_spikes,
)
from newswatch.pipelines.delivery.feed import entry_id
from newswatch.pipelines.delivery.messages import story_message
from newswatch.pipelines.delivery.sinks import FeedSink
from newswatch.pipelines.delivery.spikes import measure
from newswatch.pipelines.delivery.story import Story
from newswatch.schemas import Alert, alert_json_schema

SETTINGS = SpikeSettings()  # 6 h window, 14 days of baseline, mean + 3 sigma, >= 3 stories
NOW = T0 + timedelta(days=20)
VALIDATOR = jsonschema.Draft202012Validator(
    alert_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def published(n: int, at: object) -> Alert:
    return story(n, created_at=NOW, published_at=at)


def burst(count: int) -> list[Alert]:
    """``count`` stories in the last window, a quiet baseline of one a day before it."""
    recent = [published(n, NOW - timedelta(minutes=5 * n + 1)) for n in range(count)]
    quiet = [published(1000 + d, NOW - timedelta(days=d, hours=7)) for d in range(1, 14)]
    return recent + quiet


def even(count: int) -> list[Alert]:
    """The same number of stories, one every (14 days + window) / count."""
    span = timedelta(days=14) + SETTINGS.window
    return [published(n, NOW - span * (n + 0.5) / count) for n in range(count)]


def test_a_burst_raises_a_spike() -> None:
    stories = burst(12)
    [spike] = find_spikes(stories, NOW, SETTINGS)
    assert spike.kind == "spike" and spike.topic == TOPIC and spike.count == 12
    assert spike.window is not None and spike.window.end - spike.window.start == SETTINGS.window
    assert spike.baseline is not None and spike.baseline.days == 14
    assert spike.baseline.mean == pytest.approx(13 / 56, abs=1e-4)
    assert spike.title == stories[0].title  # the latest story
    assert len(spike.evidence) == 5
    VALIDATOR.validate(json.loads(spike.to_json()))


def test_the_same_number_spread_evenly_raises_nothing() -> None:
    stories = even(len(burst(12)))
    assert measure((a.published_at for a in stories if a.published_at), NOW, SETTINGS).count < 3
    assert find_spikes(stories, NOW, SETTINGS) == []


def test_fewer_than_three_stories_are_never_a_spike() -> None:
    assert find_spikes(burst(2)[:2], NOW, SETTINGS) == []


def test_one_spike_per_cool_down(tmp_path: Path) -> None:
    root = str(tmp_path)
    [spike] = find_spikes(burst(12), NOW, SETTINGS, load_last_spikes(root))
    record_spikes(root, [spike])
    later = NOW + timedelta(hours=1)
    assert find_spikes(burst(12), later, SETTINGS, load_last_spikes(root)) == []
    after = NOW + SETTINGS.cooldown + timedelta(minutes=1)
    moved = [dataclasses.replace(a, published_at=a.published_at + (after - NOW)) for a in burst(12)]
    assert len(find_spikes(moved, after, SETTINGS, load_last_spikes(root))) == 1


def test_a_spike_goes_through_the_sinks_like_an_alert(tmp_path: Path) -> None:
    [spike] = find_spikes(burst(12), NOW, SETTINGS)
    message = story_message(Story(spike))
    assert message.title.startswith(f"Spike: 12 stories on {spike.topic_title} in 6 h")
    assert "usually 0.2" in message.text
    feed = FeedSink(name="feed")
    enqueue(str(tmp_path), "spikes-1", [spike], [feed])
    deliver(str(tmp_path), [feed], NOW)
    text = (tmp_path / "feeds" / f"{TOPIC}.atom").read_text()
    assert entry_id(spike.alert_id) in text and "Spike: 12 stories" in text


def test_story_alerts_gain_only_kind_and_round_trip() -> None:
    alert = story(1)
    record = json.loads(alert.to_json())
    assert record["kind"] == "story"
    assert not {"window", "count", "baseline"} & set(record)
    VALIDATOR.validate(record)
    del record["kind"]  # written before spikes existed
    VALIDATOR.validate(record)
    assert Alert.from_dict(record) == alert
    [spike] = find_spikes(burst(12), NOW, SETTINGS)
    assert Alert.from_dict(json.loads(spike.to_json())) == spike


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({"kind": "spike"}, False),  # a spike needs window, count and baseline
        ({"count": 3}, False),  # and a story has none of them
        ({"kind": "rumour"}, False),
    ],
)
def test_the_schema_keeps_kinds_apart(change: dict[str, object], valid: bool) -> None:
    assert VALIDATOR.is_valid({**json.loads(story(1).to_json()), **change}) is valid
