"""fetch_feed against real HTTP servers on 127.0.0.1 (no mocks), and local/package reads."""

from __future__ import annotations

import gzip
import socket
import time
import zlib
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from servers import LocalHttpServer as FeedServer
from servers import Route, respond

from newswatch.connectors.rss.http_fetch import ACCEPT, DEFAULT_USER_AGENT, fetch_feed, redact_url

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Local</title>
<item><title>One</title><link>https://news.example/1</link></item>
</channel></rss>"""


@pytest.fixture
def server(http_server: FeedServer) -> FeedServer:
    return http_server


def test_sends_user_agent_accept_and_reads_body(server: FeedServer) -> None:
    server.routes["/feed"] = respond(200, FEED, Content_Type="application/rss+xml")
    result = fetch_feed(server.url("/feed"))
    assert (result.status, result.http_status, result.body) == ("ok", 200, FEED)
    assert result.content_type == "application/rss+xml"
    assert result.final_url == server.url("/feed")
    _, headers = server.requests[0]
    assert headers["user-agent"] == DEFAULT_USER_AGENT
    assert headers["accept"] == ACCEPT
    assert headers["accept-encoding"] == "gzip, deflate"


def test_conditional_get_returns_not_modified(server: FeedServer) -> None:
    etag, modified = '"v1"', "Fri, 13 Sep 2024 08:30:00 GMT"

    def conditional(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("If-None-Match") == etag:
            respond(304)(handler)
        else:
            respond(200, FEED, ETag=etag, Last_Modified=modified)(handler)

    server.routes["/feed"] = conditional
    first = fetch_feed(server.url("/feed"))
    assert (first.status, first.etag, first.last_modified) == ("ok", etag, modified)

    second = fetch_feed(server.url("/feed"), etag=first.etag, last_modified=first.last_modified)
    assert (second.status, second.http_status, second.body) == ("not_modified", 304, None)
    # The 304 carried no validators, so the request's are kept for the next run.
    assert (second.etag, second.last_modified) == (etag, modified)
    _, headers = server.requests[1]
    assert headers["if-none-match"] == etag
    assert headers["if-modified-since"] == modified


@pytest.mark.parametrize(
    ("status", "error"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error")]
)
def test_http_errors_fail_with_status(server: FeedServer, status: int, error: str) -> None:
    server.routes["/feed"] = respond(status, b"nope")
    result = fetch_feed(server.url("/feed"))
    assert (result.status, result.http_status, result.error, result.body) == (
        "failed",
        status,
        error,
        None,
    )


def test_429_with_short_retry_after_is_retried_once(server: FeedServer) -> None:
    def throttle_once(handler: BaseHTTPRequestHandler) -> None:
        first = len(server.requests) == 1
        respond(429, Retry_After="1")(handler) if first else respond(200, FEED)(handler)

    server.routes["/feed"] = throttle_once
    started = time.monotonic()
    result = fetch_feed(server.url("/feed"))
    assert (result.status, result.body) == ("ok", FEED)
    assert server.paths() == ["/feed", "/feed"]
    assert time.monotonic() - started >= 1.0


def test_429_with_long_retry_after_fails_without_sleeping(server: FeedServer) -> None:
    server.routes["/feed"] = respond(429, Retry_After="3600")
    started = time.monotonic()
    result = fetch_feed(server.url("/feed"))
    assert time.monotonic() - started < 2
    assert (result.status, result.http_status, result.retry_after_s) == ("failed", 429, 3600)
    assert result.error == "HTTP 429 Too Many Requests (retry after 3600s)"
    assert server.paths() == ["/feed"]


def test_503_retry_after_as_http_date(server: FeedServer) -> None:
    server.routes["/feed"] = respond(503, Retry_After="Fri, 01 Jan 2100 00:00:00 GMT")
    result = fetch_feed(server.url("/feed"), max_retry_after_s=5)
    assert (result.status, result.http_status) == ("failed", 503)
    assert result.retry_after_s is not None and result.retry_after_s > 365 * 86400
    assert server.paths() == ["/feed"]


def test_follows_relative_redirect(server: FeedServer) -> None:
    server.routes["/old"] = respond(301, Location="/new")
    server.routes["/new"] = respond(200, FEED)
    result = fetch_feed(server.url("/old"))
    assert (result.status, result.body, result.final_url) == ("ok", FEED, server.url("/new"))
    assert server.paths() == ["/old", "/new"]


def test_redirect_loop_fails(server: FeedServer) -> None:
    server.routes["/a"] = respond(302, Location="/b")
    server.routes["/b"] = respond(302, Location="/a")
    result = fetch_feed(server.url("/a"), max_redirects=3)
    assert (result.status, result.error) == ("failed", "too many redirects (more than 3)")
    assert server.paths() == ["/a", "/b", "/a", "/b"]


def test_redirect_to_file_url_is_refused(server: FeedServer) -> None:
    server.routes["/feed"] = respond(302, Location="file:///etc/passwd")
    result = fetch_feed(server.url("/feed"))
    assert (result.status, result.body) == ("failed", None)
    assert result.error == "redirect to disallowed scheme 'file'"


def trickle(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml")
    handler.end_headers()
    for _ in range(50):  # at most ~5 s; the client should hang up after 1 s
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.1)


def trickle_headers(handler: BaseHTTPRequestHandler) -> None:
    handler.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
    for _ in range(50):
        handler.wfile.write(b"z")
        handler.wfile.flush()
        time.sleep(0.1)


@pytest.mark.parametrize("route", [trickle, trickle_headers])
def test_trickling_server_hits_the_deadline(server: FeedServer, route: Route) -> None:
    server.routes["/slow"] = route
    started = time.monotonic()
    result = fetch_feed(server.url("/slow"), timeout_s=1)
    elapsed = time.monotonic() - started
    assert (result.status, result.error) == ("failed", "timed out after 1s")
    assert 0.9 < elapsed < 3


def test_body_over_cap_with_and_without_content_length(server: FeedServer) -> None:
    big = b"x" * 5000
    server.routes["/declared"] = respond(200, big)

    def undeclared(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(big)

    server.routes["/undeclared"] = undeclared
    for path in ("/declared", "/undeclared"):
        result = fetch_feed(server.url(path), max_bytes=1000)
        assert (result.status, result.error, result.body) == (
            "failed",
            "response over 1000 bytes",
            None,
        )


def gzip_of_zeros(total: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(2**20)
    parts = [packer.compress(block) for _ in range(total // len(block))]
    return b"".join(parts) + packer.flush()


def test_gzip_bomb_is_stopped_at_the_decompressed_cap(server: FeedServer) -> None:
    bomb = gzip_of_zeros(50 * 2**20)
    assert len(bomb) < 2**20  # small on the wire: only the decompressed cap can catch it
    server.routes["/bomb"] = respond(200, bomb, Content_Encoding="gzip")
    result = fetch_feed(server.url("/bomb"), max_bytes=2**20)
    assert (result.status, result.error) == ("failed", f"decompressed body over {2**20} bytes")


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("gzip", gzip.compress(FEED)),
        ("deflate", zlib.compress(FEED)),
        ("deflate", zlib.compress(FEED)[2:-4]),  # raw deflate, as many servers send it
        ("gzip", gzip.compress(FEED[:100]) + gzip.compress(FEED[100:])),  # two members
    ],
)
def test_compressed_bodies_are_decoded(server: FeedServer, encoding: str, payload: bytes) -> None:
    server.routes["/feed"] = respond(200, payload, Content_Encoding=encoding)
    result = fetch_feed(server.url("/feed"))
    assert (result.status, result.body) == ("ok", FEED)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"\x1f\x8b\x08\x00garbage-garbage", "corrupt gzip body"),
        (gzip.compress(FEED, mtime=0)[:40], "truncated gzip body"),
    ],
    ids=["corrupt", "truncated"],  # the same in every test process (pytest-xdist compares)
)
def test_corrupt_gzip_fails(server: FeedServer, payload: bytes, error: str) -> None:
    server.routes["/feed"] = respond(200, payload, Content_Encoding="gzip")
    result = fetch_feed(server.url("/feed"))
    assert result.status == "failed"
    assert result.error is not None and result.error.startswith(error)


def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch_feed(f"http://127.0.0.1:{port}/feed", timeout_s=2)
    assert (result.status, result.error) == ("failed", "connection refused")


def test_credentials_are_sent_to_their_origin_only_and_never_shown(server: FeedServer) -> None:
    with FeedServer() as other:
        other.routes["/moved"] = respond(200, FEED)
        server.routes["/private"] = respond(302, Location=other.url("/moved"))
        server.routes["/missing"] = respond(302, Location="ftp://s3cr3t@example/")
        url = server.url("/private").replace("http://", "http://reader:s3cr3t@")
        assert fetch_feed(url).status == "ok"
        assert server.requests[0][1]["authorization"] == "Basic cmVhZGVyOnMzY3IzdA=="
        assert "authorization" not in other.requests[0][1]

        failed = fetch_feed(url.replace("/private", "/missing"))
    assert failed.status == "failed" and "s3cr3t" not in (failed.error or "")
    assert redact_url(url) == server.url("/private").replace("http://", "http://reader:***@")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/feed.xml", "javascript:alert(1)", "data:text/xml,<rss/>", "gs://b/f"]
)
def test_unsupported_schemes(url: str) -> None:
    result = fetch_feed(url)
    assert result.status == "failed"
    assert result.error is not None and result.error.startswith("unsupported URL scheme")


def test_local_path_and_file_url(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(FEED)
    for url in (str(feed), feed.as_uri()):
        assert (fetch_feed(url).status, fetch_feed(url).body) == ("ok", FEED)
        refused = fetch_feed(url, allow_file=False)
        assert (refused.status, refused.error, refused.body) == (
            "failed",
            "local files are disabled",
            None,
        )
    over = fetch_feed(str(feed), max_bytes=10)
    assert (over.status, over.error) == ("failed", "response over 10 bytes")
    missing = fetch_feed(str(tmp_path / "absent.xml"))
    assert missing.status == "failed" and "No such file" in (missing.error or "")


def test_package_url_reads_package_data() -> None:
    schema = Path(__file__).resolve().parents[1] / "schemas" / "alert.schema.json"
    result = fetch_feed("package:newswatch.schemas/alert.schema.json")
    assert (result.status, result.body) == ("ok", schema.read_bytes())
    assert fetch_feed("package:newswatch.schemas/alert.schema.json", allow_file=False).error == (
        "local files are disabled"
    )
    for url, error in [
        ("package:newswatch.schemas/../connectors/rss.py", "invalid package URL"),
        ("package:newswatch.schemas/absent.json", "cannot read"),
        ("package:newswatch_no_such_module/x.xml", "no such package"),
    ]:
        failed = fetch_feed(url)
        assert failed.status == "failed" and (failed.error or "").startswith(error), url
