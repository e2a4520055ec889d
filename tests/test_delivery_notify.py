"""Apprise notifications against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from delivery_receivers import T0, SmtpServer, story

from newswatch.pipelines.cli.broker import free_port
from newswatch.pipelines.delivery import deliver, enqueue, parse_delivery_sink, status
from newswatch.pipelines.delivery.messages import digest_message, story_message
from newswatch.pipelines.delivery.story import Story

PASSWORD = "mail-pa55word-never-shown"
# Apprise 2.x still imports imghdr (deprecated in Python 3.11, removed in 3.13).
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")


def mail_url(port: int) -> str:
    # mailto:// (not mailtos://) is plain SMTP: no TLS, on the port given.
    return (
        f"mailto://desk:{PASSWORD}@127.0.0.1:{port}"
        "?from=newswatch@example.org&to=analyst@example.org"
    )


def no_wait(seconds: float) -> None:
    pass


def test_an_alert_arrives_by_email_with_a_plain_subject_and_body(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alert = story(1)
    with SmtpServer("desk", PASSWORD) as smtp:
        env = {"NEWSWATCH_NOTIFY_URLS": mail_url(smtp.port)}
        sink = parse_delivery_sink(
            {"type": "notify", "name": "desk-mail", "urls_env": "NEWSWATCH_NOTIFY_URLS"},
            "alerts[0]",
            environ=env,
        )
        enqueue(
            str(tmp_path), "run-1", [Story(alert, copies=2, sources=("wire", "bbc", "afp"))], [sink]
        )
        [report] = deliver(str(tmp_path), [sink], T0, sleep=no_wait)
    assert report.delivered == 1
    assert smtp.logins == [("desk", PASSWORD)]
    [mail] = smtp.mailbox.messages
    assert smtp.mailbox.envelopes == [("newswatch@example.org", ["analyst@example.org"])]
    assert mail["Subject"] == f"[newswatch] {alert.topic_title}: {alert.title}"
    body = mail.get_payload(decode=True).decode()
    assert mail.get_content_type() == "text/plain"
    for expected in (
        alert.title,
        alert.url,
        alert.evidence[0],
        "North Korea, Russia",
        "Also reported by 2 sources",
        "Score 0.88",
        "Source: wire",
    ):
        assert expected in body
    assert PASSWORD not in caplog.text
    [row] = status(str(tmp_path))
    assert (row.sink, row.delivered, row.pending, row.dead) == ("desk-mail", 1, 0, 0)


def test_a_mail_server_that_is_down_leaves_a_dead_letter_without_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = {"URLS": mail_url(free_port())}
    sink = parse_delivery_sink(
        {"type": "notify", "urls_env": "URLS", "retries": 1}, "alerts[0]", environ=env
    )
    enqueue(str(tmp_path), "run-1", [story(1)], [sink])
    [report] = deliver(str(tmp_path), [sink], T0, sleep=no_wait)
    assert report.dead == 1
    [row] = status(str(tmp_path))
    assert row.dead == 1 and row.last_error and "mailto://" in row.last_error
    state = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    for shown in (row.last_error, caplog.text, state, repr(sink)):
        assert PASSWORD not in shown


def test_chat_services_get_markdown() -> None:
    message = story_message(Story(story(1), copies=1, sources=("wire", "bbc")))
    assert message.markdown.startswith(
        "**North Korea–Russia arms cooperation**: [Pyongyang ships shells to Moscow, report 1]"
        "(https://news.example.org/1)"
    )
    assert "> Pyongyang shipped artillery shells to Moscow \\(1\\)." in message.markdown
    assert "Also reported by 1 source." in message.markdown


def test_no_copies_no_also_reported() -> None:
    message = story_message(Story(story(1), copies=0, sources=("wire",)))
    assert "Also reported" not in message.markdown + message.text


def test_a_digest_arrives_by_email_grouped_by_topic(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    stories = [
        story(1, created_at=datetime(2026, 11, 30, 8, tzinfo=UTC)),
        story(2, created_at=datetime(2026, 11, 30, 9, tzinfo=UTC), topic="iran-russia-drones"),
    ]
    with SmtpServer("desk", PASSWORD) as smtp:
        env = {"DIGEST_URLS": mail_url(smtp.port)}
        raw = {
            "type": "digest",
            "name": "morning",
            "at": "07:00",
            "tz": "Europe/Brussels",
            "via": {"type": "notify", "urls_env": "DIGEST_URLS"},
        }
        sink = parse_delivery_sink(raw, "alerts[0]", environ=env)
        enqueue(
            str(tmp_path),
            "run-1",
            [Story(stories[0], copies=3, sources=("wire", "bbc")), stories[1]],
            [sink],
        )
        deliver(str(tmp_path), [sink], datetime(2026, 12, 1, 6, 30, tzinfo=UTC), sleep=no_wait)
        deliver(str(tmp_path), [sink], datetime(2026, 12, 1, 6, 31, tzinfo=UTC), sleep=no_wait)
    [mail] = smtp.mailbox.messages
    assert mail["Subject"] == (
        "[newswatch] newswatch digest (morning): 2 stories, "
        "2026-11-30 07:00 to 2026-12-01 07:00 CET"
    )
    body = mail.get_payload(decode=True).decode()
    dprk, drones = body.index(stories[0].topic_title), body.index("Iran Russia Drones (1)")
    assert dprk < drones
    assert f"- {stories[0].title} (wire; 4 copies, 2 sources)" in body
    assert f"- {stories[1].title} (wire)" in body


def test_messages_and_digests_show_the_language() -> None:
    russian = story(2, language="ru")
    message = story_message(Story(russian, copies=0, sources=("tass",)))
    assert "Language: ru" in message.text and "Language: ru" in message.markdown
    digest = digest_message("daily", T0, T0, [Story(russian, copies=1, sources=("tass",))], {})
    assert f"({russian.source}, ru; 2 copies, 2 sources)" in digest.text
    unknown = story_message(Story(story(3), copies=0, sources=("wire",)))
    assert "Language" not in unknown.text
