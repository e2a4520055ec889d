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

import calendar
import io
import logging
import re
import urllib.parse
import xml.sax
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
import feedparser
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from feedparser.encodings import convert_to_utf8

from newswatch.connectors.rss.http_fetch import (
    DEFAULT_USER_AGENT,
    FetchResult,
    fetch_feed,
    redact_url,
)
from newswatch.schemas import RawArticle, Rejection

__all__ = [
    "FeedReport",
    "FeedRequest",
    "FetchResult",
    "ParsedFeed",
    "ReadFromRss",
    "parse_feed",
    "read_feed",
]

_LOG = logging.getLogger(__name__)
_REPORTS = "reports"
_REJECTED = "rejected"


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


@dataclass(frozen=True)
class ParsedFeed:
    """``parse_feed``'s result. ``is_feed`` False means the body is unusable; ``error`` says why."""

    articles: tuple[RawArticle, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    warning: str | None = None
    is_feed: bool = True
    error: str | None = None


# Entities can only be declared inside a DOCTYPE; both must be present to be a risk.
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)


def parse_feed(
    source: str,
    url: str,
    body: bytes,
    fetched_at: datetime,
    content_type: str | None = None,
    *,
    base_url: str | None = None,
) -> ParsedFeed:
    """Parse one feed document into articles and rejections.

    ``url`` is the feed's URL (it becomes each article's ``origin``); relative entry links
    resolve against ``base_url`` (the URL after redirects), defaulting to ``url``.

    >>> body = b'<rss version="2.0"><channel><item><link>http://x.test/1</link></item></channel></rss>'
    >>> parse_feed("x", "http://x.test/feed", body, datetime.now(timezone.utc)).articles[0].url
    'http://x.test/1'
    """
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be timezone-aware (UTC)")
    headers = {"content-type": content_type} if content_type else {}
    if not body or body.isspace():
        return ParsedFeed(is_feed=False, error=_not_a_feed("empty body", content_type))
    if _declares_xml_entities(body, headers):
        return ParsedFeed(is_feed=False, error="XML entity declarations are not allowed")
    # A stream, never bytes: feedparser.parse(bytes) first tries open(bytes) as a file
    # name, so a body that is a local path would be read from this machine's disk.
    parsed = feedparser.parse(
        io.BytesIO(body), response_headers=headers, sanitize_html=True, resolve_relative_uris=True
    )
    warning = _describe_bozo(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    if not parsed.entries and (warning or not parsed.get("version")):
        if parsed.get("version") and warning:
            return ParsedFeed(is_feed=False, error=f"ill-formed feed with no entries: {warning}")
        reason = warning or "no RSS or Atom elements found"
        return ParsedFeed(is_feed=False, error=_not_a_feed(reason, content_type))

    feed_language = _text(dict.get(parsed.feed, "language"))
    base = _without_userinfo(base_url or url)
    articles: list[RawArticle] = []
    rejections: list[Rejection] = []
    for index, entry in enumerate(parsed.entries):
        link = _text(dict.get(entry, "link"))
        guid = _text(dict.get(entry, "id"))
        if dict.get(entry, "guidislink") and not _is_web_url(link):
            link = None  # feedparser copies an RSS <guid> into link; here it is only an id
        if link is None and guid is None:
            rejections.append(
                Rejection(
                    source=source,
                    reason="missing_url_and_id",
                    detail="feed entry has neither a link nor an id",
                    rejected_at=fetched_at,
                    locator={"feed_url": url, "entry_index": index},
                )
            )
            continue
        articles.append(
            RawArticle(
                source=source,
                origin=url,
                fetched_at=fetched_at,
                url=_absolute(link, base),
                guid=guid,
                title=dict.get(entry, "title") or None,
                summary=dict.get(entry, "summary") or None,
                content=_longest_content(entry),
                published=_published(entry),
                authors=_authors(entry),
                language=_entry_language(entry) or feed_language,
            )
        )
    return ParsedFeed(tuple(articles), tuple(rejections), warning=warning, is_feed=True)


def _declares_xml_entities(body: bytes, headers: dict[str, str]) -> bool:
    """Whether the document, decoded exactly as feedparser will decode it, declares entities.

    feedparser drops entity declarations whose value holds ``&`` (so nested "billion
    laughs" and external entities are neutralized), but keeps plain-text ones. expat
    stops expanding those past its amplification limit, and feedparser then re-parses
    with its loose parser, which expands them with no limit: 120 KB of XML became a
    500 MB title in our measurement. Checking after feedparser's own decoding matters:
    a raw-bytes check misses ``+ADw-!ENTITY`` in a document served as UTF-7.
    """
    decoded = convert_to_utf8(headers, body, {})
    return bool(_DOCTYPE.search(decoded) and _ENTITY_DECLARATION.search(decoded))


def _describe_bozo(error: Any) -> str:
    if isinstance(error, xml.sax.SAXParseException):
        return (
            f"ill-formed XML: {error.getMessage()} "
            f"at line {error.getLineNumber()}, column {error.getColumnNumber()}"
        )
    return _one_line(str(error)) or type(error).__name__


def _not_a_feed(reason: str, content_type: str | None) -> str:
    media_type = (content_type or "").split(";", 1)[0].strip()
    return f"not a feed: {reason}" + (f", content-type {media_type}" if media_type else "")


def _published(entry: dict[str, Any]) -> str | None:
    # dict.get, not entry.get: FeedParserDict maps a missing `updated_parsed` to
    # `published_parsed` with a DeprecationWarning.
    for key in ("published_parsed", "updated_parsed"):
        parsed = dict.get(entry, key)
        if parsed:
            try:  # a UTC struct_time: feedparser has already applied the offset
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC).isoformat()
            except (OverflowError, OSError, TypeError, ValueError):  # out of range, e.g. year 0
                pass
    for key in ("published", "updated"):
        raw = _text(dict.get(entry, key))
        if raw:
            return raw
    return None


def _longest_content(entry: dict[str, Any]) -> str | None:
    values = [item.get("value") or "" for item in dict.get(entry, "content") or ()]
    longest = max(values, key=len, default="")
    return longest or None


def _authors(entry: dict[str, Any]) -> tuple[str, ...]:
    names = [_text(author.get("name")) for author in dict.get(entry, "authors") or ()]
    if not any(names):
        names = [_text(dict.get(entry, "author"))]
    return tuple(dict.fromkeys(name for name in names if name))


def _entry_language(entry: dict[str, Any]) -> str | None:
    if language := _text(dict.get(entry, "language")):
        return language
    detail = dict.get(entry, "title_detail") or dict.get(entry, "summary_detail") or {}
    return _text(detail.get("language"))


def _absolute(link: str | None, base: str) -> str | None:
    if link is None or urllib.parse.urlsplit(link).scheme or not _is_web_url(base):
        return link
    return urllib.parse.urljoin(base, link)


def _is_web_url(url: str | None) -> bool:
    return url is not None and urllib.parse.urlsplit(url).scheme.lower() in ("http", "https")


def _without_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


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


def read_feed(feed: FeedRequest, **fetch_options: Any) -> tuple[FeedReport, ParsedFeed | None]:
    """Fetch (conditionally) and parse one feed: its report, and the parse when there was a body.

    ``fetch_options`` are ``fetch_feed``'s keyword arguments (timeout_s, max_bytes, ...).
    """
    fetched_at = datetime.now(UTC)
    fetched = fetch_feed(
        feed.url, etag=feed.etag, last_modified=feed.last_modified, **fetch_options
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


class _FetchFeedFn(beam.DoFn):
    """Fetch and parse one feed: articles on the main output, plus reports and rejections."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_bytes: int,
        user_agent: str,
        allow_file: bool,
        max_redirects: int,
        max_retry_after_s: float,
    ) -> None:
        self._fetch_options: dict[str, Any] = {
            "timeout_s": timeout_s,
            "max_bytes": max_bytes,
            "user_agent": user_agent,
            "allow_file": allow_file,
            "max_redirects": max_redirects,
            "max_retry_after_s": max_retry_after_s,
        }
        self._counters = {
            name: Metrics.counter(self.__class__, name)
            for name in (
                "feeds_ok",
                "feeds_not_modified",
                "feeds_failed",
                "entries_read",
                "entries_rejected",
            )
        }

    def process(self, feed: FeedRequest) -> Iterator[Any]:
        report, parsed = read_feed(feed, **self._fetch_options)
        self._counters[f"feeds_{report.status}"].inc()
        if report.status == "failed":
            _LOG.warning("feed %s (%s) failed: %s", report.source, report.url, report.error)
        if report.status == "ok" and parsed is not None:
            self._counters["entries_read"].inc(len(parsed.articles))
            self._counters["entries_rejected"].inc(len(parsed.rejections))
            yield from parsed.articles
            for rejection in parsed.rejections:
                yield pvalue.TaggedOutput(_REJECTED, rejection)
        yield pvalue.TaggedOutput(_REPORTS, report)


class ReadFromRss(beam.PTransform):
    """Read RSS/Atom feeds. ``expand`` returns ``{"articles", "reports", "rejected"}``.

    ``max_bytes`` caps both the raw and the decompressed body; ``allow_file`` permits
    file://, local paths and ``package:`` URLs; a 429/503 whose Retry-After is at most
    ``max_retry_after_s`` is retried once after waiting.
    """

    def __init__(
        self,
        *,
        feeds: Sequence[FeedRequest],
        timeout_s: float = 20.0,
        max_bytes: int = 10 * 2**20,
        user_agent: str = DEFAULT_USER_AGENT,
        allow_file: bool = True,
        max_redirects: int = 5,
        max_retry_after_s: float = 30.0,
    ) -> None:
        super().__init__()
        sources = [feed.source for feed in feeds]
        duplicates = sorted({source for source in sources if sources.count(source) > 1})
        if duplicates:
            raise ValueError(f"duplicate feed sources: {', '.join(duplicates)}")
        if timeout_s <= 0 or max_bytes <= 0 or max_redirects < 0 or max_retry_after_s < 0:
            raise ValueError(
                "timeout_s and max_bytes must be > 0, max_redirects and max_retry_after_s >= 0"
            )
        if "\r" in user_agent or "\n" in user_agent:
            raise ValueError("user_agent must not contain line breaks")
        self._feeds = list(feeds)
        self._fn_options: dict[str, Any] = {
            "timeout_s": timeout_s,
            "max_bytes": max_bytes,
            "user_agent": user_agent,
            "allow_file": allow_file,
            "max_redirects": max_redirects,
            "max_retry_after_s": max_retry_after_s,
        }

    def expand(self, pbegin: pvalue.PBegin) -> dict[str, pvalue.PCollection]:
        outputs = (
            pbegin
            | "CreateFeedRequests" >> beam.Create(self._feeds)
            # Spread the feeds over workers: Create alone would fetch them all on one.
            | "SpreadFeeds" >> beam.Reshuffle()
            | "FetchAndParseFeeds"
            >> beam.ParDo(_FetchFeedFn(**self._fn_options)).with_outputs(
                _REPORTS, _REJECTED, main="articles"
            )
        )
        return {
            "articles": outputs.articles,
            "reports": outputs[_REPORTS],
            "rejected": outputs[_REJECTED],
        }
