"""Real receivers for the delivery tests: a webhook endpoint that checks every signature,
an SMTP server, and sample alerts."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from newswatch.pipelines.cli.broker import free_port
from newswatch.schemas import Alert

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TOPIC = "dprk-russia-arms"
TOPIC_TITLE = "North Korea\u2013Russia arms cooperation"


def hex_id(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:32]


def story(n: int, created_at: datetime = T0, topic: str = TOPIC, **changes: Any) -> Alert:
    """Story alert number ``n``: ids derived from ``n`` and the topic."""
    fields: dict[str, Any] = {
        "alert_id": hex_id("alert", topic, n),
        "topic": topic,
        "topic_title": TOPIC_TITLE if topic == TOPIC else topic.replace("-", " ").title(),
        "article_id": hex_id("article", n),
        "cluster_id": hex_id("article", n),
        "source": "wire",
        "title": f"Pyongyang ships shells to Moscow, report {n}",
        "url": f"https://news.example.org/{n}",
        "published_at": created_at - timedelta(minutes=30),
        "score": 0.875,
        "evidence": (f"Pyongyang shipped artillery shells to Moscow ({n}).",),
        "entities": ("North Korea", "Russia"),
        "created_at": created_at,
    }
    fields.update(changes)
    return Alert(**fields)


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    fresh: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """POST endpoint on 127.0.0.1 that verifies the HMAC and timestamp of every request.

    ``script``: the statuses of the next responses (then 200); ``port`` may be fixed to
    bring a receiver "back" where one was down.
    """

    secret: str
    # Each step: a status, or (status, headers) or (status, headers, body).
    script: list[Any] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    deliveries: list[Delivery] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.record(dict(self.headers.items()), body)
                status, headers, reply = receiver.next_response()
                receiver.statuses.append(status)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def next_response(self) -> tuple[int, dict[str, str], bytes]:
        if not self.script:
            return 200, {}, b""
        step = self.script.pop(0)
        if isinstance(step, int):
            return step, {}, b""
        status, headers, *reply = step
        return status, headers, reply[0] if reply else b""

    def record(self, headers: dict[str, str], body: bytes) -> None:
        timestamp = headers.get("X-Newswatch-Timestamp", "0")
        mac = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        expected = f"sha256={mac.hexdigest()}"
        self.deliveries.append(
            Delivery(
                headers=headers,
                body=body,
                signature_ok=hmac.compare_digest(
                    expected, headers.get("X-Newswatch-Signature", "")
                ),
                fresh=abs(time.time() - int(timestamp)) < 300,
            )
        )

    def accepted_ids(self) -> list[str]:
        """The X-Newswatch-Id of every request answered 2xx, in order."""
        return [
            d.headers["X-Newswatch-Id"]
            for d, status in zip(self.deliveries, self.statuses, strict=True)
            if 200 <= status < 300
        ]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1 that asks for a login (over plain SMTP) and keeps every mail."""

    user: str
    password: str
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.mailbox = _Mailbox()
        self.logins: list[tuple[str, str]] = []
        self._controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            login = (data.login.decode(), data.password.decode())
            self.logins.append(login)
            return AuthResult(success=login == (self.user, self.password))
        return AuthResult(success=False, handled=False)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
