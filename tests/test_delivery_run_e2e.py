"""Alert delivery through ``newswatch run``, with real receivers: an SMTP server for
Apprise ``mailto://``, webhook endpoints that check every signature, the Atom feed read
with feedparser, digests, dead letters and ``alerts retry``, and a run killed after its
commit whose alerts the next run delivers."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from delivery_receivers import SmtpServer, WebhookReceiver
from delivery_runs import (
    HOOK_SECRET,
    HOOK_SECRET_ENV,
    SHELLS,
    SHELLS_COPY,
    TREATY,
    alert_ids,
    alert_log,
    delivery_config,
    serve_feeds,
    webhook_sink,
)
from processes import IN_PROCESS, newswatch
from servers import LocalHttpServer

from newswatch.pipelines.cli import main
from newswatch.pipelines.cli.broker import free_port
from newswatch.pipelines.control.config import load_config
from newswatch.pipelines.delivery.after_commit import deliver_committed
from newswatch.pipelines.delivery.digest import period_containing
from newswatch.pipelines.delivery.feed import entry_id
from newswatch.pipelines.delivery.sinks import DigestSink

pytestmark = [
    pytest.mark.slow,
    # Apprise 2.x still imports imghdr (deprecated in Python 3.11, removed in 3.13).
    pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning"),
]

MAIL_PASSWORD = "mail-pa55word-never-shown"


@pytest.fixture(autouse=True)
def hook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOOK_SECRET_ENV, HOOK_SECRET)


def run_cli(config: Path) -> int:
    return main(["run", *IN_PROCESS, "--config", str(config)])


def alerts_cli(*args: str) -> int:
    return main(["alerts", *args])


def test_mail_and_a_webhook_that_fails_once_get_each_alert_once(
    tmp_path: Path,
    http_server: LocalHttpServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve_feeds(http_server, [SHELLS, TREATY], [SHELLS_COPY])
    with SmtpServer("desk", MAIL_PASSWORD) as smtp, WebhookReceiver(HOOK_SECRET, [500]) as hook:
        monkeypatch.setenv(
            "NW_TEST_MAIL",
            f"mailto://desk:{MAIL_PASSWORD}@127.0.0.1:{smtp.port}"
            "?from=newswatch@example.org&to=analyst@example.org",
        )
        sinks = [
            {"type": "notify", "name": "desk-mail", "urls_env": "NW_TEST_MAIL"},
            webhook_sink(hook.url, retries=3),
        ]
        assert run_cli(delivery_config(tmp_path, http_server, sinks)) == 0
    out = tmp_path / "out"
    logged = {a["alert_id"]: a for a in alert_log(out)}
    assert len(logged) == 2
    # The webhook: the 500 was retried, every alert taken once, signed, byte for byte.
    assert hook.statuses[0] == 500 and len(hook.deliveries) == 3
    assert sorted(hook.accepted_ids()) == sorted(logged)
    assert all(d.signature_ok and d.fresh for d in hook.deliveries)
    for delivery in hook.deliveries:
        assert delivery.json == logged[delivery.headers["X-Newswatch-Id"]]
    # The mail: one per alert, with the story's copy from the second source.
    assert len(smtp.mailbox.messages) == 2
    bodies = {m["Subject"]: m.get_payload(decode=True).decode() for m in smtp.mailbox.messages}
    shells = next(body for subject, body in bodies.items() if SHELLS["title"] in subject)
    shells_alert = next(a for a in logged.values() if a["title"] == SHELLS["title"])
    for expected in (
        shells_alert["url"],
        shells_alert["evidence"][0],
        "Also reported by 1 source.",
        f"Score {shells_alert['score']:.2f}",
        f"Source: {shells_alert['source']}",
        ", ".join(shells_alert["entities"]),
    ):
        assert expected in shells
    treaty = next(body for subject, body in bodies.items() if TREATY["title"] in subject)
    assert "Also reported" not in treaty
    printed = capsys.readouterr()
    status = json.loads(_status(out, capsys))
    assert {(r["sink"], r["delivered"], r["pending"], r["dead"]) for r in status} == {
        ("desk-mail", 2, 0, 0),
        ("desk-hook", 2, 0, 0),
    }
    for text in (printed.out, printed.err, json.dumps(status), *_state_texts(out)):
        assert HOOK_SECRET not in text and MAIL_PASSWORD not in text


def _status(out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert alerts_cli("status", "--out", str(out), "--format", "json") == 0
    return capsys.readouterr().out


def _state_texts(out: Path) -> list[str]:
    return [p.read_text("utf-8") for p in (out / "_state").rglob("*.json")]


def test_a_receiver_down_for_the_run_gets_the_dead_letters_after_alerts_retry(
    tmp_path: Path, http_server: LocalHttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_feeds(http_server, [SHELLS, TREATY], [])
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    config = delivery_config(tmp_path, http_server, [webhook_sink(url, retries=1)])
    out = tmp_path / "out"
    assert run_cli(config) == 0  # delivery failures never fail the run
    [row] = json.loads(_status(out, capsys))
    assert (row["delivered"], row["pending"], row["dead"]) == (0, 0, 2)
    assert row["last_error"] and HOOK_SECRET not in row["last_error"]
    with WebhookReceiver(HOOK_SECRET, port=port) as hook:
        assert alerts_cli("retry", "--config", str(config), "--sink", "desk-hook") == 0
        assert hook.deliveries == []  # retry queues; the next run sends
        assert run_cli(config) == 0
        assert sorted(hook.accepted_ids()) == alert_ids(out)
        assert run_cli(config) == 0  # a rerun sends nothing more
        assert len(hook.deliveries) == 2
    [row] = json.loads(_status(out, capsys))
    assert (row["delivered"], row["pending"], row["dead"]) == (2, 0, 0)
    assert alerts_cli("retry", "--config", str(config), "--sink", "nobody") == 2


def test_two_runs_make_one_digest_and_a_feed_newest_first(
    tmp_path: Path, http_server: LocalHttpServer
) -> None:
    now = datetime.now(UTC)
    # The period boundary is half a day away, so both runs fall into one period.
    at = f"{(now.hour + 12) % 24:02d}:00"
    with WebhookReceiver(HOOK_SECRET) as hook:
        via = {k: v for k, v in webhook_sink(hook.url).items() if k != "name"}
        sinks = [
            {"type": "feed", "max_entries": 10},
            {"type": "digest", "name": "desk-digest", "every": "daily", "at": at, "via": via},
        ]
        serve_feeds(http_server, [SHELLS], [])
        config = delivery_config(tmp_path, http_server, sinks)
        assert run_cli(config) == 0
        serve_feeds(http_server, [SHELLS, TREATY], [])
        assert run_cli(config) == 0
        assert hook.deliveries == []  # the period has not ended
        out = tmp_path / "out"
        [digest_sink] = [s for s in load_config(str(config)).alerts if isinstance(s, DigestSink)]
        _, end = period_containing(now, digest_sink.schedule)
        # The first drain after the period's end (the next scheduled run) sends it.
        for later in (end + timedelta(minutes=1), end + timedelta(minutes=2)):
            deliver_committed(str(out), [digest_sink], now=later)
        assert run_cli(config) == 0  # a rerun adds and sends nothing
        deliver_committed(str(out), [digest_sink], now=end + timedelta(minutes=3))
    [digest] = hook.deliveries
    assert digest.signature_ok
    payload: dict[str, Any] = digest.json
    assert payload["kind"] == "digest" and payload["sink"] == "desk-digest"
    assert sorted(s["alert_id"] for s in payload["stories"]) == alert_ids(out)
    parsed = feedparser.parse((out / "feeds" / "dprk-russia-arms.atom").read_bytes())
    assert not parsed.bozo
    assert [e.link for e in parsed.entries] == [TREATY["url"], SHELLS["url"]]
    by_url = {a["url"]: a for a in alert_log(out)}
    for entry in parsed.entries:
        alert = by_url[entry.link]
        assert entry.id == entry_id(alert["alert_id"])
        assert alert["evidence"][0] in entry.summary


class KillingReceiver(WebhookReceiver):
    """Kills ``victim`` (SIGKILL) at its first request, which it answers 503: the run dies
    after its commit, in the middle of delivering."""

    victim: subprocess.Popen[str] | None = None

    def record(self, headers: dict[str, str], body: bytes) -> None:
        if self.victim is not None and self.victim.poll() is None:
            self.victim.kill()
            self.victim.wait()
        super().record(headers, body)


def test_a_run_killed_after_its_commit_is_delivered_by_the_next_run(
    tmp_path: Path, http_server: LocalHttpServer
) -> None:
    serve_feeds(http_server, [SHELLS, TREATY], [SHELLS_COPY])
    out = tmp_path / "out"
    with KillingReceiver(HOOK_SECRET, [503]) as hook:
        config = delivery_config(tmp_path, http_server, [webhook_sink(hook.url)])
        first = newswatch("run", *IN_PROCESS, "--config", str(config))
        hook.victim = first
        first.communicate(timeout=300)
        assert first.returncode == -signal.SIGKILL
        committed = alert_ids(out)
        assert len(committed) == 2 and hook.accepted_ids() == []
        assert list((out / "_state" / "outbox" / "desk-hook" / "pending").glob("*.json"))
        second = newswatch(
            "run", *IN_PROCESS, "--config", str(config)
        )  # the secret is in os.environ
        stdout, stderr = second.communicate(timeout=300)
        assert second.returncode == 0, stderr
        assert sorted(hook.accepted_ids()) == committed
    # Nothing twice in the alert log, nothing lost.
    assert alert_ids(out) == committed
    assert HOOK_SECRET not in stdout + stderr


def test_a_bad_delivery_sink_exits_2_naming_its_key(
    tmp_path: Path, http_server: LocalHttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = webhook_sink("http://hooks.example.org/newswatch")
    del sink["allow_insecure"]
    assert run_cli(delivery_config(tmp_path, http_server, [sink])) == 2
    assert "alerts[1].url" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
