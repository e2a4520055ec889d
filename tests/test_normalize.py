"""normalize.py: canonical URLs, article ids, HTML to text, dates, and one raw item to an article."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote_plus, urlsplit

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from newswatch.pipelines.core.normalization import (
    NormalizeSettings,
    article_id,
    canonical_url,
    html_to_text,
    normalize_entry,
    parse_published,
)
from newswatch.schemas import Article, RawArticle, Rejection

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
FEED = "https://example.org/rss.xml"


def raw_item(**fields: object) -> RawArticle:
    base: dict[str, object] = {"source": "wire", "origin": FEED, "fetched_at": NOW}
    return RawArticle(**{**base, **fields})  # type: ignore[arg-type]


# --- canonical_url ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # scheme and host case; the path keeps its case
        ("HTTPS://Example.ORG/News/Story-1", "https://example.org/News/Story-1"),
        # default ports dropped, others kept (443 is not http's default)
        ("http://example.org:80/a", "http://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("http://example.org:8080/a", "http://example.org:8080/a"),
        ("http://example.org:443/a", "http://example.org:443/a"),
        ("http://example.org:/a", "http://example.org/a"),
        # fragment dropped
        ("https://example.org/a#comments", "https://example.org/a"),
        ("https://example.org/a?id=3#top", "https://example.org/a?id=3"),
        # tracking parameters removed, the others keep their order
        (
            "https://example.org/a?b=2&utm_source=rss&a=1&fbclid=XyZ&gclid=1&c=3&utm_medium=feed",
            "https://example.org/a?b=2&a=1&c=3",
        ),
        ("https://example.org/a?UTM_Campaign=x&id=1", "https://example.org/a?id=1"),
        ("https://example.org/a?utm%5Fsource=x&id=1", "https://example.org/a?id=1"),
        ("https://example.org/a?ref_src=twsrc&msclkid=2&_ga=3", "https://example.org/a"),
        ("https://example.org/a?utm_source=x", "https://example.org/a"),
        # parameters that only look like tracking stay
        (
            "https://example.org/a?utmost=1&my_utm_source=2",
            "https://example.org/a?utmost=1&my_utm_source=2",
        ),
        # kept parameters stay exactly as written
        ("https://example.org/a?123", "https://example.org/a?123"),
        ("https://example.org/a?q=a+b&r=a%20b", "https://example.org/a?q=a+b&r=a%20b"),
        ("https://example.org/a?id=%E9", "https://example.org/a?id=%E9"),
        ("https://example.org/a?a=1&&b=2&", "https://example.org/a?a=1&b=2"),
        # empty path becomes "/"
        ("https://example.org", "https://example.org/"),
        ("https://example.org?x=1", "https://example.org/?x=1"),
        # unicode path and host: the path untouched, the host only lower-cased
        ("https://example.org/新闻/статья?q=ü", "https://example.org/新闻/статья?q=ü"),
        ("https://example.org/caf%C3%A9", "https://example.org/caf%C3%A9"),
        ("https://Bücher.Example/x", "https://bücher.example/x"),
        ("https://xn--bcher-kva.example/x", "https://xn--bcher-kva.example/x"),
        # userinfo never names the article (and must not leak)
        ("https://user:secret@Example.org/a", "https://example.org/a"),
        # IPv6 hosts keep their brackets
        ("http://[2001:DB8::1]:8080/a", "http://[2001:db8::1]:8080/a"),
        ("http://[::1]:80/", "http://[::1]/"),
        # surrounding whitespace
        ("  https://example.org/a \n", "https://example.org/a"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "url", ["http://example.org:99999/a", "http://example.org:port/", "http://[::1"]
)
def test_canonical_url_rejects_unsplittable_urls(url: str) -> None:
    with pytest.raises(ValueError):
        canonical_url(url)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("https://example.org/a", "b5b10dd0429e69ac7cfaf0a20b6901c1"),
        ("guid:tag:example.org,2024:1", "ad8ff9fe9be0a6c10c52d408987ac3be"),
        ("", "e3b0c44298fc1c149afbf4c8996fb924"),
    ],
)
def test_article_id_is_stable(key: str, expected: str) -> None:
    assert article_id(key) == expected


def test_article_id_is_32_hex_chars_and_tells_keys_apart() -> None:
    keys = [
        "https://example.org/a",
        "https://example.org/b",
        "guid:https://example.org/a",
        "ü",
        "\ud800",
    ]
    ids = [article_id(k) for k in keys]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(keys)


# --- html_to_text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("", ""),
        ("   \n\t ", ""),
        ("plain text", "plain text"),
        # plain text still has its entities decoded; a bare "&" stays
        ("Fish &amp; Chips", "Fish & Chips"),
        ("AT&T &lt;b&gt;", "AT&T <b>"),
        ("&#8220;Quoted&#8221; &#x41;", "\u201cQuoted\u201d A"),
        # paragraphs from block tags and <br>
        ("<p>North &amp; South</p><p>Two<br>lines</p>", "North & South\n\nTwo\n\nlines"),
        ("x<br/>y", "x\n\ny"),
        ("<div>a<div>b</div>c</div>", "a\n\nb\n\nc"),
        ("<ul><li>one</li><li>two</li></ul>", "one\n\ntwo"),
        ("<P>Upper</P><BR>case", "Upper\n\ncase"),
        ("<p>one</p>\n\n\n<p>two</p>", "one\n\ntwo"),
        # inline tags vanish without breaking words
        ("<p>a <b>bold</b> and <i>it</i>alic word</p>", "a bold and italic word"),
        ("<p>1 &lt; 2</p>", "1 < 2"),
        ("<b>AT&T</b>", "AT&T"),
        # script, style and friends are dropped with their content
        ("<p>x</p><script>var a = '<p>no</p>';</script><style>p{}</style><p>y</p>", "x\n\ny"),
        ("<noscript>hidden</noscript>visible", "visible"),
        ("<svg><text>x</text></svg><p>y</p>", "y"),
        ("<script>never closed", ""),
        ("<!-- a comment --><p>x</p>", "x"),
        # broken markup
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("<p>a</b></i></p>b", "a\n\nb"),
        ("a < b and c > d", "a < b and c > d"),
        ("text <", "text <"),
        # CDATA text is kept, and markup inside it is read as markup
        ("<p>x <![CDATA[inside & out]]> y</p>", "x inside & out y"),
        ("<![CDATA[<p>Hi</p><p>there</p>]]>", "Hi\n\nthere"),
        ("<script><![CDATA[var x;]]></script>ok", "ok"),
        # whitespace folding: runs of spaces, tabs and nbsp; single newlines kept
        ("  lots   of\t\tspace\u00a0here  ", "lots of space here"),
        ("<p>a&nbsp;&nbsp;b</p>", "a b"),
        ("line1\r\nline2", "line1\nline2"),
        ("<p>  a  \n  b  </p>", "a\nb"),
    ],
)
def test_html_to_text(markup: str, expected: str) -> None:
    assert html_to_text(markup) == expected


# --- parse_published --------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-06T10:00:00Z", utc(2024, 5, 6, 10)),
        ("2024-05-06T10:00:00+02:00", utc(2024, 5, 6, 8)),
        ("2024-05-06T10:00:00.987654-05:30", utc(2024, 5, 6, 15, 30)),
        ("2024-05-06 10:00:00", utc(2024, 5, 6, 10)),  # naive: taken as UTC
        ("2024-05-06", utc(2024, 5, 6)),
        ("  2024-05-06T10:00:00Z \n", utc(2024, 5, 6, 10)),
        ("Mon, 06 May 2024 10:00:00 GMT", utc(2024, 5, 6, 10)),
        ("Mon, 06 May 2024 10:00:00 UT", utc(2024, 5, 6, 10)),
        ("Mon, 06 May 2024 10:00:00 EST", utc(2024, 5, 6, 15)),
        ("Mon, 06 May 2024 10:00:00 PDT", utc(2024, 5, 6, 17)),
        ("Mon, 06 May 2024 10:00:00 +0200", utc(2024, 5, 6, 8)),
        ("06 May 2024 10:00 -0000", utc(2024, 5, 6, 10)),
        # garbage
        (None, None),
        ("", None),
        ("   ", None),
        ("yesterday", None),
        ("2024-13-45T00:00:00Z", None),
        ("Mon, 32 Foo 2024 10:00:00 GMT", None),
        ("Mon, 06 May 2024 10:00:00 +9999", None),
        # out of range: year 1 and year 9999 with an offset cannot even be converted
        ("0001-01-01T00:00:00+01:00", None),
        ("9999-12-31T23:59:59-01:00", None),
        # before 1990
        ("1989-12-31T23:59:59Z", None),
        ("1990-01-01T00:30:00+01:00", None),
        ("1990-01-01T00:00:00Z", utc(1990, 1, 1)),
        # the future: a day ahead is a time zone mistake we keep, two days is not news
        ("2024-05-07T12:00:00Z", utc(2024, 5, 7, 12)),
        ("2024-05-08T11:59:59Z", utc(2024, 5, 8, 11, 59, 59)),
        ("2024-05-08T12:00:00Z", None),
        ("2030-01-01T00:00:00Z", None),
    ],
)
def test_parse_published(value: str | None, expected: datetime | None) -> None:
    got = parse_published(value, NOW)
    assert got == expected
    if got is not None:
        assert got.utcoffset() == timedelta(0)
        assert got.microsecond == 0


# --- normalize_entry --------------------------------------------------------------------------

SETTINGS = NormalizeSettings()


def normalized(**fields: object) -> Article:
    result = normalize_entry(raw_item(**fields), SETTINGS)
    assert isinstance(result, Article), result
    return result


def rejected(**fields: object) -> Rejection:
    result = normalize_entry(raw_item(**fields), SETTINGS)
    assert isinstance(result, Rejection), result
    return result


@pytest.mark.parametrize(
    ("link", "guid", "url", "key"),
    [
        # a web link wins over the guid, canonicalized
        (
            "HTTPS://Example.org/a?utm_source=rss#x",
            "tag:1",
            "https://example.org/a",
            "https://example.org/a",
        ),
        ("  https://example.org/a  ", None, "https://example.org/a", "https://example.org/a"),
        # guid-only items: the guid is the url, and the id comes from "guid:"
        (None, " tag:example.org,2024:1 ", "tag:example.org,2024:1", "guid:tag:example.org,2024:1"),
        (
            "",
            "https://example.org/p?id=7",
            "https://example.org/p?id=7",
            "guid:https://example.org/p?id=7",
        ),
        # a link that is no web link keeps its text but the guid names the article
        ("ftp://example.org/story", "g1", "ftp://example.org/story", "guid:g1"),
        ("javascript:void(0)", "g1", "javascript:void(0)", "guid:g1"),
        ("http:///no-host", "g1", "http:///no-host", "guid:g1"),
        ("https://example.org:99999/a", "g1", "https://example.org:99999/a", "guid:g1"),
        ("http://[::1", "g1", "http://[::1", "guid:g1"),
    ],
)
def test_normalize_entry_url_and_id(link: str | None, guid: str | None, url: str, key: str) -> None:
    article = normalized(url=link, guid=guid, title="A title")
    assert article.url == url
    assert article.article_id == article_id(key)


@pytest.mark.parametrize(
    ("link", "guid"),
    [
        (None, None),
        ("", "   "),
        ("ftp://example.org/x", None),
        ("mailto:desk@example.org", ""),
        ("http://[::1", None),
    ],
)
def test_normalize_entry_rejects_items_without_url_or_id(
    link: str | None, guid: str | None
) -> None:
    rejection = rejected(url=link, guid=guid, title="A title", summary="Some text")
    assert rejection.reason == "missing_url_and_id"
    assert rejection.source == "wire"
    assert rejection.locator == {"origin": FEED}
    assert rejection.rejected_at == NOW


@pytest.mark.parametrize(
    ("title", "summary", "content"),
    [
        (None, None, None),
        ("", "", ""),
        ("  ", "<p> </p>", "<script>alert(1)</script>"),
        ("<b></b>", "&nbsp;", None),
    ],
)
def test_normalize_entry_rejects_items_without_text(
    title: str | None, summary: str | None, content: str | None
) -> None:
    rejection = rejected(url="https://example.org/a", title=title, summary=summary, content=content)
    assert rejection.reason == "empty_text"
    assert rejection.locator == {"origin": FEED}


@pytest.mark.parametrize(
    ("title", "summary", "content", "expected_title", "expected_text"),
    [
        ("Fish &amp; Chips", "Short.", None, "Fish & Chips", "Short."),
        ("T", "short", "<p>The much longer content</p>", "T", "The much longer content"),
        (
            "T",
            "A summary longer than the content",
            "<p>Brief</p>",
            "T",
            "A summary longer than the content",
        ),
        ("T", None, "<p>Only content</p>", "T", "Only content"),
        ("T", "", "", "T", ""),  # a title alone makes an article
        (None, "<p>Body only</p>", None, "", "Body only"),
    ],
)
def test_normalize_entry_title_and_text(
    title: str | None,
    summary: str | None,
    content: str | None,
    expected_title: str,
    expected_text: str,
) -> None:
    article = normalized(url="https://example.org/a", title=title, summary=summary, content=content)
    assert (article.title, article.text) == (expected_title, expected_text)


def test_normalize_entry_caps_text() -> None:
    raw = raw_item(url="https://example.org/a", title="T", content="<p>" + "word " * 100 + "</p>")
    article = normalize_entry(raw, NormalizeSettings(max_text_chars=12))
    assert isinstance(article, Article)
    assert article.text == "word word wo"


@pytest.mark.parametrize(
    ("language", "expected"),
    [(" EN-GB ", "en-gb"), ("de", "de"), ("", None), ("   ", None), (None, None)],
)
def test_normalize_entry_language(language: str | None, expected: str | None) -> None:
    assert (
        normalized(url="https://example.org/a", title="T", language=language).language == expected
    )


@pytest.mark.parametrize(
    ("authors", "expected"),
    [
        ((" Jane Doe ", "", "  ", "John Roe\n"), ("Jane Doe", "John Roe")),
        ((), ()),
        (("  ",), ()),
    ],
)
def test_normalize_entry_authors(authors: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert normalized(url="https://example.org/a", title="T", authors=authors).authors == expected


def test_normalize_entry_times_are_utc() -> None:
    fetched = datetime(2024, 5, 6, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    article = normalized(
        url="https://example.org/a",
        title="T",
        published="Mon, 06 May 2024 10:00:00 +0200",
        fetched_at=fetched,
    )
    assert article.ingested_at == utc(2024, 5, 6, 12, 30)
    assert article.ingested_at.utcoffset() == timedelta(0)
    assert article.published_at == utc(2024, 5, 6, 8)
    assert article.source == "wire"


def test_normalize_entry_rejection_time_is_utc() -> None:
    fetched = datetime(2024, 5, 6, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    rejection = rejected(url=None, guid=None, fetched_at=fetched)
    assert rejection.rejected_at == utc(2024, 5, 5, 22, 30)
    assert rejection.rejected_at.utcoffset() == timedelta(0)
    assert rejection.rejected_at.strftime("%Y-%m-%d") == "2024-05-05"


def test_normalize_entry_drops_implausible_dates() -> None:
    article = normalized(url="https://example.org/a", title="T", published="1970-01-01T00:00:00Z")
    assert article.published_at is None


# --- properties -------------------------------------------------------------------------------

# Text rich in the characters that make markup and URLs interesting.
MARKUPISH = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("<>/&;#![]-='\"?:%@ \n\txpbrdivscriptCDATA")), st.characters()
    ),
    max_size=200,
)


@given(MARKUPISH)
def test_html_to_text_never_raises(markup: str) -> None:
    text = html_to_text(markup)
    assert text == text.strip()
    assert "\n\n\n" not in text


maybe_text = st.none() | MARKUPISH


@given(
    url=maybe_text | st.builds(lambda s: "http://" + s, MARKUPISH),
    guid=maybe_text,
    title=maybe_text,
    summary=maybe_text,
    content=maybe_text,
    published=maybe_text,
    language=maybe_text,
    authors=st.lists(st.text(max_size=20), max_size=3).map(tuple),
)
def test_normalize_entry_never_raises(
    url: str | None,
    guid: str | None,
    title: str | None,
    summary: str | None,
    content: str | None,
    published: str | None,
    language: str | None,
    authors: tuple[str, ...],
) -> None:
    raw = raw_item(
        url=url,
        guid=guid,
        title=title,
        summary=summary,
        content=content,
        published=published,
        language=language,
        authors=authors,
    )
    result = normalize_entry(raw, NormalizeSettings(max_text_chars=100))
    if isinstance(result, Rejection):
        assert result.reason in ("missing_url_and_id", "empty_text")
    else:
        assert len(result.text) <= 100
        assert re.fullmatch(r"[0-9a-f]{32}", result.article_id)
        assert result.title or result.text


HOSTS = st.from_regex(r"[A-Za-z0-9]{1,10}(\.[A-Za-z0-9]{1,10}){0,3}", fullmatch=True)
PARAM = st.tuples(
    st.sampled_from(["id", "utm_source", "UTM_medium", "fbclid", "gclid", "q", "a b", "é"]),
    st.text(max_size=8),
)


@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "hTtPs"]),
    host=HOSTS,
    port=st.none() | st.integers(min_value=0, max_value=65535),
    path=st.text(max_size=30).map(lambda p: "/" + p.replace("?", "").replace("#", "")),
    params=st.lists(PARAM, max_size=5),
    fragment=st.text(max_size=10),
)
def test_canonical_url_is_idempotent_on_web_urls(
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    params: list[tuple[str, str]],
    fragment: str,
) -> None:
    netloc = host if port is None else f"{host}:{port}"
    query = "&".join(f"{k}={v}" for k, v in params)
    url = f"{scheme}://{netloc}{path}?{query}#{fragment}"
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert once.startswith(("http://", "https://"))
    assert "#" not in once
    query_keys = [
        unquote_plus(p.partition("=")[0]).lower() for p in urlsplit(once).query.split("&")
    ]
    assert not any(k.startswith("utm_") or k in ("fbclid", "gclid") for k in query_keys)


@given(st.text(max_size=80))
def test_canonical_url_is_idempotent_on_arbitrary_http_text(tail: str) -> None:
    try:
        once = canonical_url("https://" + tail)
    except ValueError:
        reject()
    assert canonical_url(once) == once
