"""Parsing one feed body into ``RawArticle`` records: a pure function over bytes.

``parse_feed`` refuses XML entity declarations (see its docstring) and turns what feedparser
could not use into a ``ParsedFeed`` whose ``error`` says why, never an exception.
"""

from __future__ import annotations

import calendar
import io
import re
import urllib.parse
import xml.sax
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
from feedparser.encodings import convert_to_utf8

from newswatch.schemas import RawArticle, Rejection

__all__ = ["ParsedFeed", "parse_feed"]


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
    >>> parse_feed("x", "http://x.test/feed", body, datetime.now(UTC)).articles[0].url
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
    records = [
        _entry_record(entry, index, source, url, base, fetched_at, feed_language)
        for index, entry in enumerate(parsed.entries)
    ]
    return ParsedFeed(
        tuple(r for r in records if isinstance(r, RawArticle)),
        tuple(r for r in records if isinstance(r, Rejection)),
        warning=warning,
        is_feed=True,
    )


def _entry_record(
    entry: dict[str, Any],
    index: int,
    source: str,
    url: str,
    base: str,
    fetched_at: datetime,
    feed_language: str | None,
) -> RawArticle | Rejection:
    """One feed entry as a RawArticle, or a Rejection when it has neither link nor id."""
    link = _text(dict.get(entry, "link"))
    guid = _text(dict.get(entry, "id"))
    if dict.get(entry, "guidislink") and not _is_web_url(link):
        link = None  # feedparser copies an RSS <guid> into link; here it is only an id
    if link is None and guid is None:
        return Rejection(
            source=source,
            reason="missing_url_and_id",
            detail="feed entry has neither a link nor an id",
            rejected_at=fetched_at,
            locator={"feed_url": url, "entry_index": index},
        )
    return RawArticle(
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
