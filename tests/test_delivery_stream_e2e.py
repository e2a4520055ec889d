"""Alert delivery through ``newswatch stream``: a story that appears in a polled feed
reaches a signed webhook within seconds, once, while the stream runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from configs import rss_source, write_config
from delivery_receivers import WebhookReceiver
from delivery_runs import HOOK_SECRET, HOOK_SECRET_ENV, RSS, SHELLS, alert_ids, webhook_sink
from feeds import rss_document, stories_feed
from processes import Stream, wait_for
from servers import LocalHttpServer, respond

pytestmark = pytest.mark.slow

# From the feed serving the story to the webhook taking its alert: a poll (1 s), the
# window's commit (1 s windows) and a drain (every second), with room for a busy machine.
WITHIN_S = 20.0


def test_an_alert_reaches_the_webhook_within_seconds_of_the_article(
    tmp_path: Path, http_server: LocalHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOOK_SECRET_ENV, HOOK_SECRET)  # the stream's child process inherits it
    http_server.routes["/a.xml"] = respond(200, rss_document([]), Content_Type=RSS)
    out = tmp_path / "out"
    with WebhookReceiver(HOOK_SECRET) as hook:
        config = write_config(
            tmp_path / "newswatch.yaml",
            [rss_source("wire-a", http_server.url("/a.xml"), poll_interval=1)],
            out,
            [{"type": "file"}, webhook_sink(hook.url)],
            stream={"window": 1, "status_interval": 1},
        )
        stream = Stream(config, wait_s=180)
        try:
            stream.wait_for_status(lambda status: True, "the stream running")
            http_server.routes["/a.xml"] = respond(200, stories_feed([SHELLS]), Content_Type=RSS)
            served = time.monotonic()
            wait_for(hook.accepted_ids, 120, "the alert at the webhook", stream.process)
            latency = time.monotonic() - served
            assert stream.stop() == 0
        finally:
            if stream.process.poll() is None:
                stream.process.kill()
        assert latency < WITHIN_S, f"{latency:.1f}s"
        [delivery] = hook.deliveries
    assert delivery.signature_ok and delivery.fresh
    assert hook.accepted_ids() == alert_ids(out)
    assert delivery.json["url"] == SHELLS["url"]
