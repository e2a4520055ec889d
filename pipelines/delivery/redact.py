"""Keeping secrets out of logs, reports, ``alerts status`` and error messages.

Apprise URLs and webhook URLs often carry the credential in the URL itself (a token in the
path, a password before the host), so a URL is only ever shown as its scheme and host.
Error texts from receivers and libraries are scrubbed of every known secret value before
they are stored or printed.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

MASK = "***"


def redact_url(url: str) -> str:
    """``scheme://host/...``: enough to tell sinks apart, nothing that could be a credential."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return f"{MASK}"
    if not parts.scheme:
        return MASK
    tail = "/..." if (parts.path not in ("", "/") or parts.query or parts.username) else ""
    return f"{parts.scheme}://{host}{tail}"


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, and every URL holding one, replaced by a mask."""
    # Longest first: a URL that contains a token is masked whole, not around the token.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def url_secrets(url: str) -> tuple[str, ...]:
    """The parts of a URL that may be credentials: the URL, its password, long path and query parts.

    Tokens hide in different places per service (``slack://T/B/token``, ``?key=...``); a
    part of six characters or more might be one, and masking a harmless one costs nothing.
    """
    found = [url]
    try:
        parts = urlsplit(url)
        found += [parts.password or "", parts.username or ""]  # mailto://user:pass@host
    except ValueError:
        return (url,)
    found += [p for p in parts.path.split("/") if len(p) >= 6]
    for pair in parts.query.split("&"):
        value = pair.partition("=")[2]
        if len(value) >= 6:
            found.append(value)
    # Shorter fragments would mask ordinary words in an error text.
    return (url, *(s for s in found[1:] if len(s) >= 4))
