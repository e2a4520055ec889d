"""Topic feeds: ``<out>/feeds/<topic>.atom``, the newest alerts of each watched topic.

Each feed is valid Atom (RFC 4287): entry id = the alert id as a ``urn:uuid:`` IRI (the
same 32 hex digits, dashed), updated = the alert's ``created_at``, link = the article,
summary = the evidence sentences. The alerts a feed shows are kept in
``_state/feeds/<topic>.json``; a delivery merges new alerts in (by alert id, so repeating
it changes nothing), keeps the newest ``max_entries`` and rewrites the feed whole under a
temporary name before renaming it into place, so feed readers never fetch half a file.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime

from newswatch.connectors import filesystem
from newswatch.pipelines.delivery import store
from newswatch.pipelines.delivery.messages import story_message
from newswatch.pipelines.delivery.sinks import FeedSink
from newswatch.pipelines.delivery.story import Story
from newswatch.schemas.alert import SPIKE

ATOM = "http://www.w3.org/2005/Atom"
FEEDS = "feeds"


def feed_path(root: str, topic: str) -> str:
    return filesystem.join(root, FEEDS, f"{store.safe_name(topic, 'topic id')}.atom")


def entry_id(alert_id: str) -> str:
    """The Atom id of an alert's entry: its id as a URN (Atom ids must be IRIs)."""
    return uuid.UUID(hex=alert_id).urn


def update_feeds(root: str, sink: FeedSink, stories: Sequence[Story], now: datetime) -> list[str]:
    """Merge ``stories`` into their topics' feeds; returns the topics rewritten."""
    by_topic: dict[str, list[Story]] = {}
    for story in stories:
        by_topic.setdefault(story.alert.topic, []).append(story)
    for topic, new in sorted(by_topic.items()):
        state = store.state_path(root, FEEDS, f"{store.safe_name(topic, 'topic id')}.json")
        kept = [Story.from_dict(s) for s in (store.read_json(state) or {}).get("entries", [])]
        merged = {s.alert.alert_id: s for s in kept}
        merged.update((s.alert.alert_id, s) for s in new)
        newest = sorted(
            merged.values(), key=lambda s: (s.alert.created_at, s.alert.alert_id), reverse=True
        )[: sink.max_entries]
        store.write_json(state, {"entries": [s.to_dict() for s in newest]})
        store.write_atomically(feed_path(root, topic), render_atom(topic, newest, now))
    return sorted(by_topic)


def render_atom(topic: str, stories: Sequence[Story], now: datetime) -> bytes:
    """An Atom document of ``stories``, in the order given (newest first)."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    title = next((s.alert.topic_title for s in stories if s.alert.topic_title), topic)
    _text(feed, "id", uuid.uuid5(uuid.NAMESPACE_URL, f"newswatch:feed:{topic}").urn)
    _text(feed, "title", f"newswatch: {title}")
    _text(feed, "updated", (stories[0].alert.created_at if stories else now).isoformat())
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "newswatch")
    _text(feed, "generator", "newswatch")
    for story in stories:
        _entry(feed, story)
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"


def _entry(feed: ET.Element, story: Story) -> None:
    alert = story.alert
    entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
    _text(entry, "id", entry_id(alert.alert_id))
    # A spike's own title names the surge; a story's is the article's headline.
    _text(entry, "title", story_message(story).title if alert.kind == SPIKE else alert.title)
    _text(entry, "updated", alert.created_at.isoformat())
    if alert.published_at is not None:
        _text(entry, "published", alert.published_at.isoformat())
    if alert.url:
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=alert.url)
    if alert.source:
        _text(ET.SubElement(entry, f"{{{ATOM}}}author"), "name", alert.source)
    ET.SubElement(
        entry, f"{{{ATOM}}}category", term=alert.topic, label=alert.topic_title or alert.topic
    )
    _text(entry, "summary", "\n".join(alert.evidence) or alert.title).set("type", "text")


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}")
    element.text = text
    return element
