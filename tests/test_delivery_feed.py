"""Topic feeds: valid Atom that feedparser reads, newest first, rewritten whole."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import feedparser
from delivery_receivers import T0, TOPIC, TOPIC_TITLE, story

from newswatch.pipelines.delivery import deliver, enqueue, status
from newswatch.pipelines.delivery.feed import entry_id
from newswatch.pipelines.delivery.sinks import FeedSink

FEED = FeedSink(name="feed", max_entries=3)


def test_the_feed_parses_and_holds_the_newest_alerts_first(tmp_path: Path) -> None:
    root = str(tmp_path)
    first = [story(n, created_at=T0 + timedelta(minutes=n)) for n in (1, 2)]
    later = [story(n, created_at=T0 + timedelta(minutes=n)) for n in (3, 4)]
    other = story(9, topic="iran-russia-drones")
    enqueue(root, "run-1", [*first, other], [FEED])
    deliver(root, [FEED], T0)
    enqueue(root, "run-2", later, [FEED])
    deliver(root, [FEED], T0 + timedelta(hours=1))
    deliver(root, [FEED], T0 + timedelta(hours=2))  # nothing new: the feed stays as it is

    path = tmp_path / "feeds" / f"{TOPIC}.atom"
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == f"newswatch: {TOPIC_TITLE}"
    newest = [story(n, created_at=T0 + timedelta(minutes=n)) for n in (4, 3, 2)]
    assert [e.id for e in parsed.entries] == [entry_id(a.alert_id) for a in newest]
    assert [e.link for e in parsed.entries] == [a.url for a in newest]
    assert [e.summary for e in parsed.entries] == [a.evidence[0] for a in newest]
    assert [e.updated for e in parsed.entries] == [a.created_at.isoformat() for a in newest]
    assert parsed.entries[0].tags[0].term == TOPIC
    assert entry_id(newest[0].alert_id).replace("-", "").endswith(newest[0].alert_id)

    drones = feedparser.parse((tmp_path / "feeds" / "iran-russia-drones.atom").read_bytes())
    assert [e.id for e in drones.entries] == [entry_id(other.alert_id)]
    assert not list((tmp_path / "feeds").glob("*.tmp*"))
    [row] = status(root)
    assert (row.delivered, row.pending) == (5, 0)


def test_text_is_escaped_not_injected(tmp_path: Path) -> None:
    nasty = story(1, title='<script>alert(1)</script> & "quotes"', evidence=("a < b & c",))
    enqueue(str(tmp_path), "run-1", [nasty], [FEED])
    deliver(str(tmp_path), [FEED], T0)
    data = (tmp_path / "feeds" / f"{TOPIC}.atom").read_bytes()
    ET.fromstring(data)  # well-formed
    [entry] = feedparser.parse(data).entries
    assert entry.title == nasty.title and entry.summary == "a < b & c"
