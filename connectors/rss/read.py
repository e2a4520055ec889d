"""Read RSS and Atom feeds into ``RawArticle`` records, one report per feed.

    import apache_beam as beam
    from newswatch.connectors.rss.read import FeedRequest, ReadFromRss

    with beam.Pipeline() as p:
        feeds = [FeedRequest("world", "package:newswatch.pipelines/defaults/samples/world.xml")]
        read = p | "ReadFeeds" >> ReadFromRss(feeds=feeds)
        read["articles"] | beam.Map(print)  # RawArticle
        read["reports"] | beam.Map(print)  # FeedReport: ok / not_modified / failed
        read["rejected"] | beam.Map(print)  # Rejection (entries with neither link nor id)

A bad feed never fails the pipeline: it becomes a ``FeedReport`` with status ``"failed"``
and a one-line error, counted in the ``feeds_failed`` metric.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from newswatch.connectors.rss.http_fetch import (
    DEFAULT_USER_AGENT,
    FetchResult,
    fetch_feed,
    redact_url,
)
from newswatch.connectors.rss.parse import ParsedFeed, parse_feed
from newswatch.connectors.split_by_type import SplitByType
from newswatch.schemas import RawArticle, Rejection

__all__ = [
    "FeedCounters",
    "FeedReport",
    "FeedRequest",
    "FetchOptions",
    "ReadFromRss",
    "feed_items",
    "read_feed",
]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedRequest:
    """One feed to read, with the conditional-GET validators from the last committed run."""

    source: str  # unique source name from config
    url: str  # http://, https://, file://, a local path, or package:<module>/<relative path>
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FeedReport:
    """What happened to one feed in this run."""

    source: str
    url: str  # the request URL, password masked
    status: str  # "ok" | "not_modified" | "failed"
    fetched_at: datetime
    http_status: int | None = None
    entries: int = 0  # entries parsed into RawArticle
    rejected: int = 0  # entries rejected
    error: str | None = None  # one line; on "ok" a parse warning such as "ill-formed XML: ..."
    etag: str | None = None  # validators for the next run (the request's kept on 304 and failure)
    last_modified: str | None = None
    retry_after_s: float | None = None  # the server's Retry-After on 429/503


def feed_report(
    feed: FeedRequest, fetched: FetchResult, parsed: ParsedFeed | None, fetched_at: datetime
) -> FeedReport:
    """The report for one feed from its fetch and (when there was a body) its parse.

    On failure the request's validators are kept, so the next run fetches in full.
    """
    common: dict[str, Any] = {
        "source": feed.source,
        "url": redact_url(feed.url),
        "fetched_at": fetched_at,
        "http_status": fetched.http_status,
    }
    if fetched.status == "ok" and parsed is not None and parsed.is_feed:
        return FeedReport(
            status="ok",
            entries=len(parsed.articles),
            rejected=len(parsed.rejections),
            error=parsed.warning,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            **common,
        )
    if fetched.status == "not_modified":
        return FeedReport(
            status="not_modified",
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            **common,
        )
    error = parsed.error if parsed is not None and parsed.error else fetched.error
    return FeedReport(
        status="failed",
        error=error or "unknown failure",
        etag=feed.etag,
        last_modified=feed.last_modified,
        retry_after_s=fetched.retry_after_s,
        **common,
    )


@dataclass(frozen=True)
class FetchOptions:
    """How feeds are fetched: ``fetch_feed``'s settings, checked once.

    ``max_bytes`` caps both the raw and the decompressed body; ``allow_file`` permits
    file://, local paths and ``package:`` URLs; a 429/503 whose Retry-After is at most
    ``max_retry_after_s`` is retried once after waiting.
    """

    timeout_s: float = 20.0
    max_bytes: int = 10 * 2**20
    user_agent: str = DEFAULT_USER_AGENT
    allow_file: bool = True
    max_redirects: int = 5
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        if (
            self.timeout_s <= 0
            or self.max_bytes <= 0
            or self.max_redirects < 0
            or self.max_retry_after_s < 0
        ):
            raise ValueError(
                "timeout_s and max_bytes must be > 0, max_redirects and max_retry_after_s >= 0"
            )
        if "\r" in self.user_agent or "\n" in self.user_agent:
            raise ValueError("user_agent must not contain line breaks")

    @classmethod
    def from_config(cls, http: Any) -> FetchOptions:
        """From the config's ``http:`` section (``HttpSettings``)."""
        return cls(
            timeout_s=http.timeout_s,
            max_bytes=http.max_bytes,
            user_agent=http.user_agent,
            allow_file=http.allow_local_files,
            max_redirects=http.max_redirects,
        )


def read_feed(
    feed: FeedRequest, options: FetchOptions = FetchOptions()
) -> tuple[FeedReport, ParsedFeed | None]:
    """Fetch (conditionally) and parse one feed: its report, and the parse when there was a body."""
    fetched_at = datetime.now(UTC)
    fetched = fetch_feed(
        feed.url,
        etag=feed.etag,
        last_modified=feed.last_modified,
        timeout_s=options.timeout_s,
        max_bytes=options.max_bytes,
        user_agent=options.user_agent,
        allow_file=options.allow_file,
        max_redirects=options.max_redirects,
        max_retry_after_s=options.max_retry_after_s,
    )
    parsed = None
    if fetched.status == "ok" and fetched.body is not None:
        parsed = parse_feed(
            feed.source,
            redact_url(feed.url),
            fetched.body,
            fetched_at,
            fetched.content_type,
            base_url=fetched.final_url,
        )
    return feed_report(feed, fetched, parsed, fetched_at), parsed


def feed_items(
    report: FeedReport, parsed: ParsedFeed | None
) -> Iterator[RawArticle | Rejection | FeedReport]:
    """What one read of a feed yields, for a run and a stream alike: its articles and
    rejections when it answered, then its report. A failure is logged, never raised."""
    if report.status == "failed":
        _LOG.warning("feed %s (%s) failed: %s", report.source, report.url, report.error)
    if report.status == "ok" and parsed is not None:
        yield from parsed.articles
        yield from parsed.rejections
    yield report


class FeedCounters:
    """The metrics of feed reads, counted per item ``feed_items`` yields (run and stream)."""

    NAMES = ("feeds_ok", "feeds_not_modified", "feeds_failed", "entries_read", "entries_rejected")

    def __init__(self, owner: type) -> None:
        self._counters = {name: Metrics.counter(owner, name) for name in self.NAMES}

    def count(self, item: RawArticle | Rejection | FeedReport) -> None:
        if isinstance(item, FeedReport):
            self._counters[f"feeds_{item.status}"].inc()
        elif isinstance(item, Rejection):
            self._counters["entries_rejected"].inc()
        else:
            self._counters["entries_read"].inc()


class _FetchFeedFn(beam.DoFn):
    """Fetch and parse one feed: its articles, its rejections and its report."""

    def __init__(self, options: FetchOptions) -> None:
        self._options = options
        self._counters = FeedCounters(self.__class__)

    def process(self, feed: FeedRequest) -> Iterator[Any]:
        for item in feed_items(*read_feed(feed, self._options)):
            self._counters.count(item)
            yield item


class ReadFromRss(beam.PTransform):
    """Read RSS/Atom feeds. ``expand`` returns ``{"articles", "reports", "rejected"}``."""

    def __init__(
        self, *, feeds: Sequence[FeedRequest], options: FetchOptions = FetchOptions()
    ) -> None:
        super().__init__()
        sources = [feed.source for feed in feeds]
        duplicates = sorted({source for source in sources if sources.count(source) > 1})
        if duplicates:
            raise ValueError(f"duplicate feed sources: {', '.join(duplicates)}")
        self._feeds = list(feeds)
        self._options = options

    @classmethod
    def from_config(cls, feeds: Sequence[FeedRequest], http: Any) -> ReadFromRss:
        """The feeds, fetched with the config's ``http:`` settings (``HttpSettings``)."""
        return cls(feeds=feeds, options=FetchOptions.from_config(http))

    def expand(self, pbegin: pvalue.PBegin) -> dict[str, pvalue.PCollection]:
        items = (
            pbegin
            | "CreateFeedRequests" >> beam.Create(self._feeds)
            # Spread the feeds over workers: Create alone would fetch them all on one.
            | "SpreadFeeds" >> beam.Reshuffle()
            | "FetchAndParseFeeds" >> beam.ParDo(_FetchFeedFn(self._options))
        )
        return items | "ByType" >> SplitByType("articles", reports=FeedReport, rejected=Rejection)
