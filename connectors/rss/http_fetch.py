"""Fetch one feed's bytes safely: HTTP(S) with limits, or a local/package file.

``fetch_feed`` never raises for a bad feed, a bad server or a bad network: every such
outcome is a ``FetchResult`` with ``status="failed"`` and a one-line ``error``.

    >>> result = fetch_feed("package:newswatch.schemas/alert.schema.json")
    >>> result.status, result.body[:1]
    ('ok', b'{')

Limits hold against hostile servers: one deadline covers connect and every read (a
server trickling bytes cannot hold a worker), bodies are capped before and after
gzip/deflate decoding, redirects are followed by hand and only to http/https, and a
password in the URL never reaches an error message.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import http.client
import importlib.resources
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from newswatch.connectors.rss.http_transport import CHUNK, DeadlineHandler, FetchFailed, read_body

__all__ = ["DEFAULT_USER_AGENT", "FetchResult", "fetch_feed", "redact_url"]

DEFAULT_USER_AGENT = "newswatch/0.1 (+https://github.com/newswatch/newswatch)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_CODES = frozenset({429, 503})


@dataclass(frozen=True)
class FetchResult:
    """What one fetch produced. ``body`` is set only when ``status == "ok"``."""

    status: str  # "ok" | "not_modified" | "failed"
    body: bytes | None = None
    http_status: int | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    retry_after_s: float | None = None
    final_url: str | None = None


def fetch_feed(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout_s: float = 20.0,
    max_bytes: int = 10 * 2**20,
    user_agent: str = DEFAULT_USER_AGENT,
    allow_file: bool = True,
    max_redirects: int = 5,
    max_retry_after_s: float = 30.0,
) -> FetchResult:
    """Fetch ``url`` (http, https, file://, a local path or ``package:<module>/<path>``).

    The deadline ``timeout_s`` covers one attempt, redirects included; a retry after a
    short Retry-After gets a fresh one.
    """
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as error:  # e.g. an unbalanced "[" in an IPv6 host
        return FetchResult("failed", error=_one_line(f"invalid URL: {error}", url))
    if scheme in ("http", "https"):
        attempt = functools.partial(
            _fetch_http, url, etag, last_modified, timeout_s, max_bytes, user_agent, max_redirects
        )
        result = attempt()
        # Only 429/503 set retry_after_s. One polite retry when the wait is short; a long
        # wait is reported instead so the next scheduled run comes back later.
        if result.retry_after_s is not None and result.retry_after_s <= max_retry_after_s:
            time.sleep(result.retry_after_s)
            result = attempt()
        return result
    if scheme not in ("", "file", "package"):
        return FetchResult("failed", error=f"unsupported URL scheme {scheme!r}")
    if not allow_file:
        return FetchResult("failed", error="local files are disabled")
    try:
        body = _read_package(url, max_bytes) if scheme == "package" else _read_local(url, max_bytes)
    except FetchFailed as failure:
        return FetchResult("failed", error=_one_line(str(failure), url))
    return FetchResult("ok", body=body, final_url=url)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log, store and report)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


# --- local files and package data -----------------------------------------------------------


def _read_local(url: str, max_bytes: int) -> bytes:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme:
        if parts.netloc not in ("", "localhost"):
            raise FetchFailed(f"file URL with a remote host {parts.netloc!r} is not supported")
        path = urllib.request.url2pathname(parts.path)
    else:
        path = url
    # Workers read files only through Beam's filesystems. UNCOMPRESSED so that
    # ``max_bytes`` caps exactly the bytes handed to the parser.
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            return _read_capped(handle, max_bytes)
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise FetchFailed(
            f"cannot read {path}: {getattr(error, 'strerror', None) or error}"
        ) from error


def _read_package(url: str, max_bytes: int) -> bytes:
    module, _, relpath = url[len("package:") :].partition("/")
    rel = PurePosixPath(relpath)
    if not module or not relpath or rel.is_absolute() or ".." in rel.parts:
        raise FetchFailed(f"invalid package URL {url!r}: expected package:<module>/<relative path>")
    try:
        resource = importlib.resources.files(module).joinpath(relpath)
        with resource.open("rb") as handle:
            return _read_capped(handle, max_bytes)
    except (ImportError, TypeError) as error:  # TypeError: a module, not a package
        raise FetchFailed(f"no such package {module!r}") from error
    except OSError as error:
        raise FetchFailed(f"cannot read {url}: {error.strerror or error}") from error


def _read_capped(handle: Any, max_bytes: int) -> bytes:
    data = bytearray()
    while len(data) <= max_bytes:
        chunk = handle.read(min(CHUNK, max_bytes + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data += chunk
    raise FetchFailed(f"response over {max_bytes} bytes")


# --- HTTP -----------------------------------------------------------------------------------


def _fetch_http(
    url: str,
    etag: str | None,
    last_modified: str | None,
    timeout_s: float,
    max_bytes: int,
    user_agent: str,
    max_redirects: int,
) -> FetchResult:
    deadline = time.monotonic() + timeout_s
    headers = {"User-Agent": user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    if any("\r" in v or "\n" in v for v in headers.values()):
        return FetchResult("failed", error="invalid request header value (line break)")
    auth_origin, authorization = _basic_auth(url)
    opener = _opener(deadline)
    current, status = url, None
    try:
        for _ in range(max_redirects + 1):
            request = urllib.request.Request(_request_url(current), headers=headers)
            # Credentials from the feed URL go to that origin only, never to a redirect target.
            if authorization and _origin(current) == auth_origin:
                request.add_unredirected_header("Authorization", authorization)
            try:
                response = opener.open(request, timeout=_remaining(deadline, timeout_s))
            except urllib.error.HTTPError as error:
                status = error.code
                with error:
                    outcome = _non_2xx(error, current, etag=etag, last_modified=last_modified)
                if isinstance(outcome, FetchResult):
                    return outcome
                current = outcome
                continue
            with response:
                status = response.status
                return FetchResult(
                    "ok",
                    body=read_body(response, max_bytes),
                    http_status=status,
                    content_type=response.headers.get("Content-Type"),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    final_url=redact_url(current),
                )
        message = f"too many redirects (more than {max_redirects})"
    except FetchFailed as failure:
        message = str(failure)
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
        message = _describe_network_error(error, timeout_s, urllib.parse.urlsplit(current).hostname)
    except UnicodeError:  # e.g. an IDNA host label that cannot be encoded
        message = "invalid URL: host name cannot be encoded"
    return FetchResult("failed", http_status=status, error=_one_line(message, url))


def _opener(deadline: float) -> urllib.request.OpenerDirector:
    """Built by hand: no redirect handler (redirects are followed by ``_fetch_http``, which
    checks each target's scheme) and no file, ftp or data handlers at all."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        DeadlineHandler(deadline),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _non_2xx(
    error: urllib.error.HTTPError, current: str, *, etag: str | None, last_modified: str | None
) -> FetchResult | str:
    """Turn a non-2xx response into a result, or into the next URL to follow (a string)."""
    code, headers = error.code, error.headers
    if code == 304:
        return FetchResult(
            "not_modified",
            http_status=304,
            etag=headers.get("ETag") or etag,
            last_modified=headers.get("Last-Modified") or last_modified,
            final_url=redact_url(current),
        )
    # The standard phrase, not the server's: a reason line is free text from the server.
    status_line = f"HTTP {code} {http.client.responses.get(code, '')}".rstrip()
    if code in _REDIRECT_CODES:
        location = headers.get("Location")
        if not location:
            raise FetchFailed(f"{status_line} without a Location header")
        target = urllib.parse.urljoin(current, location.strip())
        scheme = urllib.parse.urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchFailed(f"redirect to disallowed scheme {scheme!r}")
        return target
    retry_after = _retry_after_s(headers.get("Retry-After")) if code in _RETRYABLE_CODES else None
    suffix = f" (retry after {retry_after:g}s)" if retry_after is not None else ""
    return FetchResult(
        "failed",
        http_status=code,
        error=status_line + suffix,
        retry_after_s=retry_after,
        final_url=redact_url(current),
    )


def _retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_NETWORK_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (http.client.RemoteDisconnected, "server closed the connection without a response"),
    (ConnectionResetError, "connection reset by peer"),
    (http.client.IncompleteRead, "connection closed before the whole body arrived"),
)


def _describe_network_error(error: BaseException, timeout_s: float, host: str | None) -> str:
    reason: Any = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout_s:g}s"
    for kind, message in _NETWORK_ERRORS:
        if isinstance(reason, kind):
            return message
    if isinstance(reason, socket.gaierror):
        return f"DNS lookup failed for {host}: {reason.strerror}"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {reason.verify_message}"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error: {reason.reason or reason}"
    if isinstance(reason, http.client.InvalidURL):
        return f"invalid URL: {reason}"
    if isinstance(reason, http.client.HTTPException):
        return f"bad HTTP response ({type(reason).__name__}: {reason})"
    return f"network error: {getattr(reason, 'strerror', None) or reason}"


def _remaining(deadline: float, timeout_s: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchFailed(f"timed out after {timeout_s:g}s")
    return remaining


def _basic_auth(url: str) -> tuple[str | None, str | None]:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return None, None
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return _origin(url), f"Basic {token}"


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port}"


_UNSAFE_URL_CHARS = re.compile(r"[^\x21-\x7e]")


def _request_url(url: str) -> str:
    """``url`` without userinfo and fragment, non-ASCII and spaces percent-encoded."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]

    def quote(text: str) -> str:
        return _UNSAFE_URL_CHARS.sub(lambda m: urllib.parse.quote(m.group()), text)

    return urllib.parse.urlunsplit(
        (parts.scheme, netloc, quote(parts.path) or "/", quote(parts.query), "")
    )


def _one_line(message: str, url: str) -> str:
    password = urllib.parse.urlsplit(url).password if "@" in url else None
    if password:
        message = message.replace(password, "***")
    return " ".join(message.split())[:500]
