"""Sending a message through Apprise, one URL at a time, with errors as data.

Each URL is sent on its own so that a retry goes only to the services that failed: a chat
room that already got the alert does not get it again because the mail server was down.
Email services get a plain subject and body; every other service gets Markdown (Apprise
converts it for services that want HTML or text).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import apprise

from newswatch.pipelines.delivery.messages import Message
from newswatch.pipelines.delivery.redact import redact_text, url_secrets

# Apprise's email plugins; everything else is a chat or push service.
EMAIL_SCHEMES = frozenset({"mailto", "mailtos"})


def check_apprise_url(url: str, *, secrets_allowed: bool) -> str | None:
    """What is wrong with an Apprise URL, in words that never quote it; None when nothing."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if not scheme or scheme not in apprise.NotificationManager():
        shown = f"{scheme!r}" if scheme.isalnum() else "(none)"
        return f"unknown Apprise scheme {shown}"
    with _apprise_quiet():
        plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return f"not a valid {scheme}:// URL"
    if not secrets_allowed and plugin.url(privacy=True) != plugin.url(privacy=False):
        # Apprise knows which parts of each service's URL are credentials and masks them.
        return f"holds a credential: put {scheme}:// URLs with secrets in urls_env"
    return None


@dataclass(frozen=True)
class SendResult:
    """Which of a sink's URLs took the message; the last error, secrets scrubbed."""

    sent: frozenset[int]
    error: str | None


def send_message(urls: tuple[str, ...], message: Message, skip: frozenset[int]) -> SendResult:
    """``message`` to every URL whose index is not in ``skip``."""
    sent = set(skip)
    error = None
    for i, url in enumerate(urls):
        if i in skip:
            continue
        failure = _send_one(url, message)
        if failure is None:
            sent.add(i)
        else:
            scheme = url.partition("://")[0]
            error = redact_text(f"URL {i + 1} ({scheme}://): {failure}", url_secrets(url))
    return SendResult(frozenset(sent), error)


def _send_one(url: str, message: Message) -> str | None:
    with _apprise_quiet():
        plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return "not a valid Apprise URL"
    email = url.partition("://")[0].lower() in EMAIL_SCHEMES
    if email:
        plugin.notify_format = apprise.NotifyFormat.TEXT
    with _apprise_private(), apprise.LogCapture(level=logging.WARNING) as logs:
        ok = plugin.notify(
            title=message.subject if email else message.title,
            body=message.text if email else message.markdown,
            body_format=apprise.NotifyFormat.TEXT if email else apprise.NotifyFormat.MARKDOWN,
        )
        captured = logs.getvalue()
    if ok:
        return None
    lines = [line.split(" - ", 2)[-1] for line in captured.splitlines() if line.strip()]
    return lines[-1] if lines else "the service refused the message"


@contextmanager
def _apprise_quiet() -> Iterator[None]:
    # Apprise logs a URL it cannot load, and URLs hold credentials.
    logger = logging.getLogger(apprise.LOGGER_NAME)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def _apprise_private() -> Iterator[None]:
    # What Apprise says while sending is kept (scrubbed) as the sink's last error, not
    # passed on to the application's log handlers.
    logger = logging.getLogger(apprise.LOGGER_NAME)
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = True
