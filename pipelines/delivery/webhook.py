"""Signed webhooks: the alert JSON POSTed to a URL, with an HMAC-SHA256 signature.

The receiver checks a request like this (Python)::

    timestamp = request.headers["X-Newswatch-Timestamp"]          # Unix seconds, UTC
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, request.headers["X-Newswatch-Signature"])
    fresh = abs(time.time() - int(timestamp)) < 300               # refuses replays

where ``body`` is the raw request body, byte for byte (the alert JSON, UTF-8). The same
alert can arrive twice (delivery is at least once): ``X-Newswatch-Id`` (the alert id, or
the digest id) is stable, so the receiver can drop repeats.

Redirects are not followed: they would send a signed alert somewhere nobody configured.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ssl
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from newswatch.pipelines.delivery.redact import redact_text, redact_url
from newswatch.pipelines.delivery.retrying import Attempt
from newswatch.pipelines.delivery.sinks import WebhookSink

SIGNATURE = "X-Newswatch-Signature"
TIMESTAMP = "X-Newswatch-Timestamp"
EVENT_ID = "X-Newswatch-Id"
USER_AGENT = "newswatch-webhook/0.1"
# Statuses after which the same request may well succeed later.
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256, keyed by the secret, of ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def post(sink: WebhookSink, body: bytes, event_id: str, timeout_s: float) -> Attempt:
    """One POST; a failure is returned as data, its text free of the URL and the secret."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        TIMESTAMP: timestamp,
        EVENT_ID: event_id,
    }
    if sink.secret:
        headers[SIGNATURE] = signature(sink.secret, timestamp, body)
    parts = urlsplit(sink.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "",
            parts.port,
            timeout=timeout_s,
            context=ssl.create_default_context(),
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        detail = response.read(512).decode("utf-8", "replace").strip()
        status, retry_after = response.status, response.getheader("Retry-After")
    except (OSError, http.client.HTTPException) as err:
        return Attempt(ok=False, error=_scrub(sink, f"{type(err).__name__}: {err}"))
    finally:
        connection.close()
    if 200 <= status < 300:
        return Attempt(ok=True)
    error = _scrub(sink, f"HTTP {status} from {redact_url(sink.url)}: {detail[:200]}".strip())
    return Attempt(
        ok=False,
        error=error,
        retry_after_s=parse_retry_after(retry_after) if status in (429, 503) else None,
        permanent=status not in RETRYABLE,
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _scrub(sink: WebhookSink, text: str) -> str:
    return redact_text(text, sink.secrets())
