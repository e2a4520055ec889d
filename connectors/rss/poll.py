"""Polling RSS/Atom feeds on their own interval, in the background of a stream.

    poller = FeedPoller([FeedPolling(FeedRequest("world", url), poll_interval_s=300)],
                        FetchOptions(timeout_s=20.0))
    poller.open()
    for item in poller.poll(datetime.now(UTC)):   # RawArticle, Rejection, FeedReport
        ...

A feed is fetched when it is due (at start, then ``poll_interval_s`` after each answer, or
after the server's Retry-After when longer), with conditional GET: the validators start
from ``<out>/_state/feeds.json`` and follow each answer. Fetches run on a few threads, so a
slow feed never holds up the stream; ``poll`` hands out the feeds that finished since the
last tick. The validators are saved to ``feeds.json`` only when the window holding the
feed's articles commits (``FeedReport`` → commit manifest), so after a crash the feed is
fetched in full again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from newswatch.connectors.rss.parse import ParsedFeed
from newswatch.connectors.rss.read import (
    FeedReport,
    FeedRequest,
    FetchOptions,
    feed_items,
    read_feed,
)
from newswatch.schemas import RawArticle, Rejection

__all__ = ["FeedPoller", "FeedPolling"]

MAX_FETCH_THREADS = 4


@dataclass(frozen=True)
class FeedPolling:
    """One feed and how often to fetch it."""

    feed: FeedRequest
    poll_interval_s: float = 300.0


class FeedPoller:
    """Fetches due feeds on background threads; ``poll`` returns what finished."""

    def __init__(self, feeds: Sequence[FeedPolling], options: FetchOptions) -> None:
        self._feeds = {f.feed.source: f for f in feeds}
        self._options = options
        self._requests = {f.feed.source: f.feed for f in feeds}
        self._due: dict[str, float] = {}
        self._running: dict[str, Future[tuple[FeedReport, ParsedFeed | None]]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def open(self) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(MAX_FETCH_THREADS, len(self._feeds))),
            thread_name_prefix="newswatch-feed",
        )
        self._due = dict.fromkeys(self._feeds, 0.0)

    def poll(self, now: datetime) -> Iterator[RawArticle | Rejection | FeedReport]:
        assert self._pool is not None, "open() first"
        clock = now.timestamp()
        for source, future in list(self._running.items()):
            if not future.done():
                continue
            del self._running[source]
            report, parsed = future.result()
            interval = self._feeds[source].poll_interval_s
            self._due[source] = clock + max(interval, report.retry_after_s or 0.0)
            # The next request carries the validators of this answer (kept on failure).
            self._requests[source] = dataclasses.replace(
                self._requests[source], etag=report.etag, last_modified=report.last_modified
            )
            yield from feed_items(report, parsed)
        for source, due in self._due.items():
            if due <= clock and source not in self._running:
                self._running[source] = self._pool.submit(
                    read_feed, self._requests[source], self._options
                )

    def close(self) -> None:
        # Fetches still running are abandoned: their feeds were not committed, and are
        # fetched again by the next start.
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
