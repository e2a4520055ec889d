"""Feed validators (ETag, Last-Modified) saved by each commit, so the next read of a feed is
a conditional GET: ``<out>/_state/feeds.json``, by source name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import OutputLayout
from newswatch.connectors.rss.http_fetch import redact_url
from newswatch.connectors.rss.read import FeedReport, FeedRequest
from newswatch.pipelines.control.settings import Config

__all__ = [
    "FeedCheckpoint",
    "checkpoint_of",
    "feed_requests",
    "load_feed_state",
    "save_feed_state",
]

FEED_STATE = "feeds.json"


@dataclass(frozen=True)
class FeedCheckpoint:
    """Conditional-GET validators of one feed, saved when the run that read it commits.

    Kept by source name, with the URL they belong to (passwords masked): a source whose
    URL changed starts without validators.
    """

    source: str
    url: str
    etag: str | None
    last_modified: str | None


def load_feed_state(root: str) -> dict[str, FeedCheckpoint]:
    path = OutputLayout(root).state(FEED_STATE)
    if not filesystem.exists(path):
        return {}
    data = json.loads(filesystem.read_file(path))
    return {
        source: FeedCheckpoint(source, v["url"], v.get("etag"), v.get("last_modified"))
        for source, v in data.items()
    }


def save_feed_state(root: str, checkpoints: Iterable[FeedCheckpoint]) -> None:
    state = load_feed_state(root)
    for checkpoint in checkpoints:
        state[checkpoint.source] = checkpoint
    data = {
        source: {"url": c.url, "etag": c.etag, "last_modified": c.last_modified}
        for source, c in sorted(state.items())
    }
    path = OutputLayout(root).state(FEED_STATE)
    filesystem.replace_file(path, json.dumps(data, indent=1, sort_keys=True).encode())


def checkpoint_of(report: FeedReport) -> Iterator[FeedCheckpoint]:
    """The validators to keep from a feed report: only feeds that answered."""
    if report.status in ("ok", "not_modified"):
        yield FeedCheckpoint(report.source, report.url, report.etag, report.last_modified)


def feed_requests(config: Config) -> list[FeedRequest]:
    """Each feed with the validators its last committed read saved (none if its URL changed)."""
    validators = load_feed_state(config.output)
    feeds = []
    for source in config.rss_sources:
        known = validators.get(source.name)
        if known is not None and known.url != redact_url(source.url):
            known = None
        feeds.append(
            FeedRequest(
                source=source.name,
                url=source.url,
                etag=known.etag if known else None,
                last_modified=known.last_modified if known else None,
            )
        )
    return feeds
