"""For the end-to-end delivery tests: feeds with watched stories (one carried by a second
source too), a config with delivery sinks, and the alerts a run committed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from articles import arms_story
from configs import rss_source, write_config
from feeds import stories_feed
from outputs import read_jsonl
from servers import LocalHttpServer, respond

HOOK_SECRET = "hook-5ecret-never-printed-7c1d"
HOOK_SECRET_ENV = "NW_TEST_HOOK_SECRET"
RSS = "application/rss+xml"

SHELLS = arms_story(0)  # two stories the bundled topic dprk-russia-arms matches
TREATY = arms_story(1)
SHELLS_COPY = {**SHELLS, "url": "https://other-wire.example/shells"}  # the same text


def serve_feeds(
    http: LocalHttpServer, main: list[dict[str, Any]], copies: list[dict[str, Any]]
) -> None:
    """``/a.xml`` (source wire-a) holds ``main``, ``/b.xml`` (wire-b) ``copies``."""
    http.routes["/a.xml"] = respond(200, stories_feed(main), Content_Type=RSS)
    http.routes["/b.xml"] = respond(200, stories_feed(copies), Content_Type=RSS)


def delivery_config(
    tmp_path: Path, http: LocalHttpServer, sinks: list[dict[str, Any]], **sections: Any
) -> Path:
    """Both feeds, the file sink and ``sinks``; output in ``tmp_path / "out"``."""
    return write_config(
        tmp_path / "newswatch.yaml",
        [rss_source("wire-a", http.url("/a.xml")), rss_source("wire-b", http.url("/b.xml"))],
        tmp_path / "out",
        [{"type": "file"}, *sinks],
        **sections,
    )


def webhook_sink(url: str, name: str = "desk-hook", **extra: Any) -> dict[str, Any]:
    return {
        "type": "webhook",
        "name": name,
        "url": url,
        "secret_env": HOOK_SECRET_ENV,
        "allow_insecure": True,  # the receiver is plain HTTP on 127.0.0.1
        **extra,
    }


def alert_log(out: Path) -> list[dict[str, Any]]:
    return read_jsonl(out, "alerts")


def alert_ids(out: Path) -> list[str]:
    return sorted(a["alert_id"] for a in alert_log(out))
