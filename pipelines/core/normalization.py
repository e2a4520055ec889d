"""Normalization: one raw feed entry or message becomes an article in the common schema."""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from newswatch.schemas import Article, RawArticle, Rejection

# Query parameters that identify a campaign or a click, never the article.
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_ga", "ref_src"}
)
_TRACKING_PREFIXES = ("utm_",)
_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "section",
        "article",
        "header",
        "footer",
        "table",
        "tr",
        "pre",
        "figure",
        "figcaption",
        "hr",
    }
)
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "iframe", "svg"})
_INLINE_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")
_PARAGRAPH_BREAK = re.compile(r"\s*\n\s*(?:\n\s*)+")

# Dates outside this range are a source's mistake, not news; such articles keep no date.
EARLIEST_PUBLISHED = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE_DAYS = 2


@dataclass(frozen=True)
class NormalizeSettings:
    max_text_chars: int = 200_000


def canonical_url(url: str) -> str:
    """The URL that names an article: lower-case scheme and host, no fragment, no tracking.

    >>> canonical_url("HTTPS://Example.ORG/a/b?utm_source=x&id=3#top")
    'https://example.org/a/b?id=3'

    Raises ValueError for a URL that cannot be split (bad port, bad IPv6 address), and for
    a web URL without a host, which names nothing ("https:////" would come back as
    "https://", and that as "https:///").
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme in ("http", "https") and not host:
        raise ValueError(f"no host in {url!r}")
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    port = parts.port
    default_port = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port is None or port == default_port else f"{host}:{port}"
    # The kept parameters stay exactly as written: decoding and re-encoding them would
    # merge distinct URLs (bytes that are not UTF-8) and turn "?123" into "?123=".
    query = "&".join(
        piece
        for piece in parts.query.split("&")
        if piece and not _is_tracking(unquote_plus(piece.partition("=")[0]).lower())
    )
    # Whitespace left at the end once the query or fragment is gone is no part of the URL.
    return urlunsplit((scheme, netloc, parts.path or "/", query, "")).rstrip()


def _is_tracking(key: str) -> bool:
    return key in _TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES)


def article_id(key: str) -> str:
    """Stable 128-bit id (hex) of an article's canonical URL, or of its guid."""
    # surrogatepass: a lone surrogate (from a JSON "\ud800" escape) must not crash the stage.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)

    def unknown_decl(self, data: str) -> None:
        # HTMLParser hands a CDATA section here and would drop its text.
        if data.startswith("CDATA[") and not self._skipping:
            self.parts.append(html_to_text(data[len("CDATA[") :]))


def html_to_text(markup: str) -> str:
    """Readable text of an HTML fragment: tags gone, entities decoded, paragraphs kept.

    >>> html_to_text("<p>North &amp; South</p><p>Two<br>lines</p>")
    'North & South\\n\\nTwo\\n\\nlines'
    """
    if "<" not in markup:
        text = html.unescape(markup)
    else:
        extractor = _TextExtractor()
        extractor.feed(markup)
        extractor.close()
        text = "".join(extractor.parts)
    lines = (_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _PARAGRAPH_BREAK.sub("\n\n", "\n".join(lines)).strip()


def parse_published(value: str | None, now: datetime) -> datetime | None:
    """A source date as UTC: ISO 8601 or RFC 822; naive times are taken as UTC.

    Dates before 1990 or more than two days ahead of ``now`` are dropped (None).
    """
    if not value or not value.strip():
        return None
    value = value.strip()
    when: datetime | None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        when = when.astimezone(UTC).replace(microsecond=0)
    except OverflowError:  # year 1 or 9999 with an offset
        return None
    if when < EARLIEST_PUBLISHED or (when - now).days >= FUTURE_TOLERANCE_DAYS:
        return None
    return when


def normalize_entry(raw: RawArticle, settings: NormalizeSettings) -> Article | Rejection:
    """One raw item as an article, or the reason it cannot be one."""
    link = (raw.url or "").strip()
    guid = (raw.guid or "").strip()
    web_url = _web_url(link)
    if web_url:
        url = web_url
        key = url
    elif guid:
        url = link or guid
        key = "guid:" + guid
    else:
        return _reject(raw, "missing_url_and_id", "the item has neither a web link nor an id")
    title = html_to_text(raw.title or "")
    body = raw.content if raw.content and len(raw.content) > len(raw.summary or "") else raw.summary
    text = html_to_text(body or "")
    if not text and not title:
        return _reject(raw, "empty_text", "the item has neither a title nor any text")
    return Article(
        article_id=article_id(key),
        source=raw.source,
        url=url,
        title=title,
        text=text[: settings.max_text_chars],
        published_at=parse_published(raw.published, raw.fetched_at),
        ingested_at=raw.fetched_at.astimezone(UTC),
        language=(raw.language or "").strip().lower() or None,
        authors=tuple(a.strip() for a in raw.authors if a.strip()),
        cluster_id=article_id(key),
    )


def _web_url(link: str) -> str | None:
    """The canonical form of an http(s) link with a host; None for anything else."""
    try:
        parts = urlsplit(link)
        if parts.scheme.lower() in ("http", "https") and parts.hostname:
            return canonical_url(link)
    except ValueError:  # a bad port or IPv6 address: not a usable web link
        pass
    return None


def _reject(raw: RawArticle, reason: str, detail: str) -> Rejection:
    return Rejection(
        source=raw.source,
        reason=reason,
        detail=detail,
        rejected_at=raw.fetched_at.astimezone(UTC),
        locator={"origin": raw.origin},
    )
