"""ReadFromRss and parse_feed: feeds served by a real HTTP server on 127.0.0.1, XML attacks,
and the shared corpora of real and feedparser test feeds."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
import feedparser
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from servers import LocalHttpServer as FeedServer
from servers import feed_with_etag, respond

from newswatch.connectors.rss.parse import parse_feed
from newswatch.connectors.rss.read import (
    FeedReport,
    FeedRequest,
    FetchOptions,
    ReadFromRss,
    _FetchFeedFn,
)
from newswatch.schemas import RawArticle, Rejection

NOW = datetime(2024, 9, 13, 9, 0, tzinfo=UTC)
ETAG = '"v1"'
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>World desk</title><link>https://news.example/</link><language>en-gb</language>
<item>
  <title>Flood defences hold</title>
  <link>https://news.example/world/floods</link>
  <guid isPermaLink="false">urn:news:1</guid>
  <description>&lt;p&gt;Rivers peaked &lt;b&gt;overnight&lt;/b&gt;.&lt;/p&gt;</description>
  <content:encoded><![CDATA[<p>Full story: the rivers peaked overnight.</p>]]></content:encoded>
  <pubDate>Fri, 13 Sep 2024 10:30:00 +0200</pubDate>
  <dc:creator>Ana Lima</dc:creator>
</item>
<item>
  <title>Markets open</title>
  <link>/markets/open</link>
  <pubDate>sometime last week</pubDate>
</item>
<item><title>Orphan</title><description>no link, no guid</description></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de">
<title>Atom desk</title><id>urn:atom-desk</id><updated>2024-09-13T08:30:00Z</updated>
<entry>
  <title>Wahl in Sachsen</title>
  <link rel="alternate" href="https://atom.example/wahl"/>
  <id>tag:atom.example,2024:wahl</id>
  <updated>2024-09-12T22:15:00-04:00</updated>
  <author><name>Jo Weber</name></author><author><name>Kim Roth</name></author>
  <author><name>Jo Weber</name></author>
  <summary>Kurz</summary>
  <content type="html">&lt;p&gt;Lang und ausf\xc3\xbchrlich&lt;/p&gt;</content>
</entry>
</feed>"""

HTML_PAGE = b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Hi</p></body></html>"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    truncated = RSS[: RSS.index(b"<item><title>Orphan")] + b"<item><title>Cut off"
    routes = {
        "/rss.xml": feed_with_etag(RSS, ETAG, "application/rss+xml; charset=utf-8"),
        "/atom.xml": feed_with_etag(ATOM, ETAG, "application/atom+xml"),
        "/home.html": feed_with_etag(HTML_PAGE, ETAG, "text/html; charset=utf-8"),
        "/truncated.xml": feed_with_etag(truncated, ETAG, "application/rss+xml"),
        "/broken.xml": respond(500, b"oops", Content_Type="text/plain"),
    }
    with FeedServer(routes) as running:
        yield running


def run_fn(feed: FeedRequest, **options: Any) -> tuple[list[Any], list[FeedReport], list[Any]]:
    """Run the DoFn without a pipeline; split its outputs into articles, reports, rejections."""
    settings = {
        "timeout_s": 5.0,
        "max_bytes": 2**20,
        "user_agent": "newswatch-test",
        "allow_file": True,
        "max_redirects": 5,
        "max_retry_after_s": 0.0,
        **options,
    }
    fn = _FetchFeedFn(FetchOptions(**settings))
    fn.setup()
    outputs = list(fn.process(feed))
    articles = [o for o in outputs if isinstance(o, RawArticle)]
    reports = [o for o in outputs if isinstance(o, FeedReport)]
    rejected = [o for o in outputs if isinstance(o, Rejection)]
    assert len(articles) + len(reports) + len(rejected) == len(outputs)
    assert len(reports) == 1  # exactly one report per feed, whatever happened
    return articles, reports, rejected


def test_rss_over_http_becomes_raw_articles(server: FeedServer) -> None:
    url = server.url("/rss.xml")
    articles, [report], [rejection] = run_fn(FeedRequest("world", url))
    first, second = articles
    assert first == RawArticle(
        source="world",
        origin=url,
        fetched_at=first.fetched_at,
        url="https://news.example/world/floods",
        guid="urn:news:1",
        title="Flood defences hold",
        summary="<p>Rivers peaked <b>overnight</b>.</p>",
        content="<p>Full story: the rivers peaked overnight.</p>",
        published="2024-09-13T08:30:00+00:00",
        authors=("Ana Lima",),
        language="en-gb",
    )
    assert first.fetched_at.tzinfo is not None
    # A relative link resolves against the feed URL; an unparseable date stays as given.
    assert (second.url, second.guid, second.published) == (
        server.url("/markets/open"),
        None,
        "sometime last week",
    )
    assert (report.status, report.http_status, report.entries, report.rejected, report.error) == (
        "ok",
        200,
        2,
        1,
        None,
    )
    assert isinstance(rejection, Rejection)
    assert (rejection.source, rejection.reason, rejection.locator, rejection.raw) == (
        "world",
        "missing_url_and_id",
        {"feed_url": url, "entry_index": 2},
        None,
    )


def test_atom_over_http_becomes_raw_articles(server: FeedServer) -> None:
    [article], [report], rejected = run_fn(FeedRequest("atom", server.url("/atom.xml")))
    assert (report.status, report.entries, rejected) == ("ok", 1, [])
    assert article.url == "https://atom.example/wahl"
    assert article.guid == "tag:atom.example,2024:wahl"
    assert (article.title, article.summary) == ("Wahl in Sachsen", "Kurz")
    assert article.content == "<p>Lang und ausführlich</p>"
    assert article.published == "2024-09-13T02:15:00+00:00"
    assert article.authors == ("Jo Weber", "Kim Roth")
    assert article.language == "de"


def test_html_page_is_not_a_feed(server: FeedServer) -> None:
    articles, [report], _ = run_fn(FeedRequest("home", server.url("/home.html")))
    assert (articles, report.status, report.http_status) == ([], "failed", 200)
    assert report.error == (
        "not a feed: text/html; charset=utf-8 is not an XML media type, content-type text/html"
    )


def test_truncated_xml_keeps_the_entries_before_the_cut(server: FeedServer) -> None:
    articles, [report], _ = run_fn(FeedRequest("cut", server.url("/truncated.xml")))
    assert [a.title for a in articles][:2] == ["Flood defences hold", "Markets open"]
    assert report.status == "ok" and report.entries == len(articles)
    assert (report.error or "").startswith("ill-formed XML: ")


def test_second_run_with_the_etag_is_not_modified(server: FeedServer) -> None:
    url = server.url("/atom.xml")
    _, [first], _ = run_fn(FeedRequest("atom", url))
    assert (first.status, first.etag, first.last_modified) == ("ok", ETAG, None)
    articles, [second], _ = run_fn(FeedRequest("atom", url, etag=first.etag, last_modified="x"))
    assert (articles, second.status, second.http_status, second.entries) == (
        [],
        "not_modified",
        304,
        0,
    )
    assert (second.etag, second.last_modified) == (ETAG, "x")  # carried over for the next run
    assert server.paths() == ["/atom.xml", "/atom.xml"]


def test_server_error_and_local_file_policy(server: FeedServer, tmp_path: Path) -> None:
    _, [report], _ = run_fn(FeedRequest("down", server.url("/broken.xml"), etag='"e1"'))
    assert (report.status, report.http_status, report.error) == (
        "failed",
        500,
        "HTTP 500 Internal Server Error",
    )
    assert report.etag == '"e1"'  # validators kept, so the next run fetches in full
    feed = tmp_path / "atom.xml"
    feed.write_bytes(ATOM)
    [article], [report], _ = run_fn(FeedRequest("disk", feed.as_uri()))
    assert (report.status, article.origin, article.guid) == (
        "ok",
        feed.as_uri(),
        "tag:atom.example,2024:wahl",
    )
    _, [refused], _ = run_fn(FeedRequest("disk", str(feed)), allow_file=False)
    assert (refused.status, refused.error) == ("failed", "local files are disabled")


# --- the Beam transform -----------------------------------------------------------------------


def article_key(article: RawArticle) -> tuple[Any, ...]:
    return (article.source, article.url, article.guid, article.title, article.published)


def report_key(report: FeedReport) -> tuple[Any, ...]:
    return (report.source, report.status, report.http_status, report.entries, report.error)


def rejection_key(rejection: Rejection) -> tuple[Any, ...]:
    return (rejection.source, rejection.reason, rejection.locator["entry_index"])


def test_read_from_rss_pipeline(server: FeedServer) -> None:
    feeds = [
        FeedRequest("world", server.url("/rss.xml")),
        FeedRequest("down", server.url("/broken.xml")),
    ]
    pipeline = test_pipeline.TestPipeline()
    read = pipeline | "ReadFeeds" >> ReadFromRss(feeds=feeds, options=FetchOptions(timeout_s=5))
    assert set(read) == {"articles", "reports", "rejected"}
    floods = ("https://news.example/world/floods", "urn:news:1", "Flood defences hold")
    markets = (server.url("/markets/open"), None, "Markets open")
    assert_that(
        read["articles"] | "ArticleKeys" >> beam.Map(article_key),
        equal_to(
            [
                ("world", *floods, "2024-09-13T08:30:00+00:00"),
                ("world", *markets, "sometime last week"),
            ]
        ),
        label="Articles",
    )
    assert_that(
        read["reports"] | "ReportKeys" >> beam.Map(report_key),
        equal_to(
            [
                ("world", "ok", 200, 2, None),
                ("down", "failed", 500, 0, "HTTP 500 Internal Server Error"),
            ]
        ),
        label="Reports",
    )
    assert_that(
        read["rejected"] | "RejectionKeys" >> beam.Map(rejection_key),
        equal_to([("world", "missing_url_and_id", 2)]),
        label="Rejected",
    )
    result = pipeline.run()
    result.wait_until_finish()
    assert sorted(server.paths()) == ["/broken.xml", "/rss.xml"]
    assert counters(result) == {
        "feeds_ok": 1,
        "feeds_not_modified": 0,
        "feeds_failed": 1,
        "entries_read": 2,
        "entries_rejected": 1,
    }


def counters(result: Any) -> dict[str, int]:
    names = ("feeds_ok", "feeds_not_modified", "feeds_failed", "entries_read", "entries_rejected")
    query = result.metrics().query
    return {
        name: sum(c.committed for c in query(MetricsFilter().with_name(name))["counters"])
        for name in names
    }


def test_read_from_rss_rejects_duplicate_sources() -> None:
    with pytest.raises(ValueError, match="duplicate feed sources: a"):
        ReadFromRss(
            feeds=[FeedRequest("a", "http://x.test/1"), FeedRequest("a", "http://x.test/2")]
        )


# --- XML attacks ------------------------------------------------------------------------------


def billion_laughs() -> bytes:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(levels) + "\n]>\n"
        '<rss version="2.0"><channel><item><title>&lol9;</title><link>http://x.test/1</link>'
        "</item></channel></rss>"
    ).encode()


def quadratic_blowup(value_len: int = 100_000, refs: int = 20_000) -> str:
    """One plain entity referenced many times: 160 KB that expands to 2 GB."""
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "{"A" * value_len}">\n]>\n'
        f'<rss version="2.0"><channel><item><title>{"&a;" * refs}</title>'
        "<link>http://x.test/1</link></item></channel></rss>"
    )


def external_entity(target: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{target}">\n]>\n'
        '<rss version="2.0"><channel><item><title>a&xxe;b</title><description>&xxe;</description>'
        "<link>http://x.test/1</link></item></channel></rss>"
    ).encode()


def test_feedparser_alone_expands_plain_entities_without_limit() -> None:
    # Why parse_feed refuses entity declarations: expat stops at its amplification limit,
    # then feedparser's loose parser expands the same entity with no limit at all.
    document = quadratic_blowup(value_len=10_000, refs=1_000).encode()
    parsed = feedparser.parse(io.BytesIO(document))
    assert "amplification" in str(parsed.bozo_exception)
    assert len(parsed.entries[0].title) == 10_000_000 > 500 * len(document)


@pytest.mark.parametrize(
    ("name", "document", "content_type"),
    [
        ("billion laughs", billion_laughs(), None),
        ("quadratic blowup", quadratic_blowup().encode(), "application/rss+xml"),
        ("external entity", external_entity("file:///etc/passwd"), None),
        # UTF-7 hides "<!ENTITY" from any check on the raw bytes.
        (
            "utf-7",
            quadratic_blowup().replace("<!ENTITY", "+ADwAIQ-ENTITY").encode(),
            "application/xml; charset=utf-7",
        ),
    ],
)
def test_entity_declarations_are_refused(
    name: str, document: bytes, content_type: str | None
) -> None:
    started = time.monotonic()
    parsed = parse_feed("evil", "http://x.test/feed", document, NOW, content_type)
    assert time.monotonic() - started < 2, name
    assert (parsed.is_feed, parsed.articles, parsed.error) == (
        False,
        (),
        "XML entity declarations are not allowed",
    )


def test_external_dtd_and_local_path_bodies_read_no_local_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("CANARY-7f3a")
    document = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "{secret.as_uri()}">\n'
        '<rss version="2.0"><channel><item><title>t</title><link>http://x.test/1</link>'
        "</item></channel></rss>"
    ).encode()
    parsed = parse_feed("evil", "http://x.test/feed", document, NOW)
    assert [a.title for a in parsed.articles] == ["t"]
    assert "CANARY-7f3a" not in repr(parsed)

    # feedparser.parse(bytes) opens the bytes as a file name first; parse_feed must not.
    local_feed = tmp_path / "feed.xml"
    local_feed.write_bytes(RSS)
    assert len(feedparser.parse(str(local_feed).encode()).entries) == 3
    parsed = parse_feed("evil", "http://x.test/feed", str(local_feed).encode(), NOW)
    assert (parsed.is_feed, parsed.articles) == (False, ())


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "not a feed: empty body"),
        (b'{"items": []}', "not a feed: ill-formed XML: not well-formed (invalid token)"),
        (
            b'<html xmlns="http://www.w3.org/1999/xhtml"/>',
            "not a feed: no RSS or Atom elements found",
        ),
        (RSS[:200], "ill-formed feed with no entries: ill-formed XML: "),
    ],
)
def test_bodies_that_are_not_feeds(body: bytes, error: str) -> None:
    parsed = parse_feed("x", "http://x.test/feed", body, NOW)
    assert parsed.is_feed is False and parsed.articles == ()
    assert (parsed.error or "").startswith(error)


def test_parse_feed_field_rules() -> None:
    feed = b"""<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
    <item><guid>only-a-guid</guid><content:encoded>short</content:encoded>
      <content:encoded>the longer body</content:encoded>
      <pubDate>Sun, 31 Dec 2023 19:00:00 EST</pubDate></item>
    <item><link>http://x.test/2</link><title></title></item>
    <item><guid>https://x.test/permalink</guid></item>
    <item><link>../up</link></item>
    </channel></rss>"""
    first, second, third, fourth = parse_feed("x", "http://u:pw@x.test/a/feed", feed, NOW).articles
    # An RSS guid is a permalink by default, but only a URL can be an article's url.
    assert (first.url, first.guid, first.content) == (None, "only-a-guid", "the longer body")
    assert (third.url, third.guid) == ("https://x.test/permalink", "https://x.test/permalink")
    assert fourth.url == "http://x.test/up"  # resolved against the feed URL, without userinfo
    assert first.published == "2024-01-01T00:00:00+00:00"  # EST is UTC-5
    assert (second.title, second.summary, second.authors, second.language) == (None, None, (), None)
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_feed("x", "http://x.test/feed", feed, datetime(2024, 1, 1))  # noqa: DTZ001


# --- corpora ----------------------------------------------------------------------------------


@pytest.mark.slow  # every feed of the shared corpora
def test_corpora_parse_without_raising() -> None:
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA}")
    files = sorted(
        p for folder in ("feedparser-tests", "real-feeds") for p in (CORPORA / folder).rglob("*")
    )
    files = [p for p in files if p.is_file()]
    assert len(files) > 2000
    results = {p: parse_feed("corpus", p.as_uri(), p.read_bytes(), NOW) for p in files}

    with (CORPORA / "real-feeds" / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        manifest = list(csv.DictReader(handle))
    well_formed = [row["file"] for row in manifest if row["xml_wellformed"] == "yes"]
    assert len(well_formed) == 27
    empty = [f for f in well_formed if not results[CORPORA / "real-feeds" / f].articles]
    assert empty == []
    guardian = results[CORPORA / "real-feeds" / "rss-parser" / "guardian.rss"]
    assert len(guardian.articles) == 55 and guardian.warning is None
