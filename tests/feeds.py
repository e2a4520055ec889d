"""RSS documents for tests, built from items; a story of ``articles.py`` as an item."""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime
from typing import Any


def rss_item(title: str, url: str, description: str, published: datetime | None = None) -> str:
    """One ``<item>``: ``description`` is the HTML of its text (escaped here), the URL is
    also its guid."""
    date = f"<pubDate>{format_datetime(published)}</pubDate>" if published else ""
    return (
        f"<item><title>{html.escape(title)}</title><link>{html.escape(url)}</link>"
        f"<guid>{html.escape(url)}</guid>{date}"
        f"<description>{html.escape(description)}</description></item>"
    )


def rss_document(items: Iterable[str], title: str = "test") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{html.escape(title)}</title><link>https://feeds.example/</link>"
        f"<description>{html.escape(title)}</description>{''.join(items)}</channel></rss>"
    ).encode()


def story_item(story: dict[str, Any]) -> str:
    """A story of ``articles.py`` (title, url, text, published) as an item."""
    return rss_item(
        story["title"], story["url"], story["text"], datetime.fromisoformat(story["published"])
    )


def stories_feed(stories: Iterable[dict[str, Any]]) -> bytes:
    return rss_document((story_item(s) for s in stories), title="World")
