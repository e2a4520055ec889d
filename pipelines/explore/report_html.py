"""The report page: one HTML file with its styles and charts inside, no script, no requests.

The page's Content-Security-Policy allows nothing to load (``default-src 'none'``): even a
bug that let a tag through could not reach another host. Every text from the dataset is
escaped, and only ``http``/``https`` URLs become links (a feed can carry ``javascript:``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any

from newswatch.pipelines.explore.charts import bar_list_chart, volume_chart
from newswatch.pipelines.explore.report_data import (
    SPIKE_BASELINE_DAYS,
    SPIKE_MIN_STORIES,
    SPIKE_SIGMAS,
    Report,
    Story,
    TopicSection,
)

__all__ = ["render_report", "safe_href"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
EVIDENCE_SENTENCES = 2
EVIDENCE_CHARS = 280

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
 margin:0 auto;max-width:1180px;padding:0 24px 48px;background:#fbfbfd}
header{border-bottom:2px solid #1f4e8c;margin-bottom:12px}
h1{margin:20px 0 4px;font-size:26px}h2{margin:28px 0 4px;font-size:20px}
h3{margin:14px 0 6px;font-size:15px;color:#3b4458}
.meta,.summary,footer{color:#5a6477}nav a{margin-right:14px}
section{background:#fff;border:1px solid #e1e4ec;border-radius:6px;padding:4px 18px 14px;
 margin:16px 0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceef3;vertical-align:top}
th{background:#f3f5f9;font-weight:600}td.n{text-align:right;white-space:nowrap}
.columns{display:flex;flex-wrap:wrap;gap:24px}.columns>div{flex:1 1 460px;min-width:0}
ul.evidence{margin:4px 0 0;padding-left:18px;color:#5a6477;font-size:12px}
.chart text{font-size:11px;fill:#5a6477}.grid{stroke:#e6e8ee}
rect.articles{fill:#b9cbe6}rect.stories{fill:#1f4e8c}rect.stories.spike{fill:#c62828}
.spike-mark{fill:#c62828}rect.bar{fill:#4b78b5}.chart text.label{fill:#1d2330}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
.when{white-space:nowrap}svg.volume{width:100%;height:auto}
.failed{color:#c62828;font-weight:600}.empty{color:#8a93a6;font-style:italic}
"""


def safe_href(url: str) -> str | None:
    """The URL for an ``href`` when it is http(s); None for anything else."""
    return url if re.match(r"(?i)^https?://", url.strip()) else None


def _link(text: str, url: str | None) -> str:
    href = safe_href(url or "")
    if href is None:
        return escape(text)
    return f'<a href="{escape(href)}" rel="noopener noreferrer">{escape(text)}</a>'


def _when(value: datetime | None) -> str:
    """A time as the page shows it; every time on the page is UTC (its header says so)."""
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _plural(count: int, noun: str, nouns: str = "") -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def _anchor(topic_id: str) -> str:
    return "topic-" + re.sub(r"[^a-z0-9_-]+", "-", topic_id.lower())


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    """Cells are HTML already (escaped by the caller); a header ending in '#' is numeric."""
    head = "".join(f"<th>{escape(h.rstrip('#'))}</th>" for h in headers)
    numeric = [h.endswith("#") for h in headers]
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if n else f"<td>{cell}</td>"
            for cell, n in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    if not body:
        return '<p class="empty">none</p>'
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _evidence(story: Story) -> str:
    # The headline is often the first evidence sentence: it is shown already.
    shown = [s for s in story.evidence if s.strip() != story.title.strip()]
    sentences = [
        s if len(s) <= EVIDENCE_CHARS else s[: EVIDENCE_CHARS - 1] + "…"
        for s in shown[:EVIDENCE_SENTENCES]
    ]
    items = "".join(f"<li>{escape(s)}</li>" for s in sentences)
    return f'<ul class="evidence">{items}</ul>' if items else ""


def _topic(section: TopicSection) -> str:
    articles = sum(d.articles for d in section.days)
    busiest = max(section.days, key=lambda d: (d.stories, d.articles), default=None)
    peak = (
        f"busiest day {busiest.day.isoformat()} ({_plural(busiest.stories, 'story', 'stories')})"
        if busiest
        else ""
    )
    spikes = ", ".join(d.day.isoformat() for d in section.spikes) or "none"
    rows = (
        [
            _link(s.title, s.url) + _evidence(s),
            f'<span class="when">{escape(_when(s.first_seen))}</span>',
            str(s.sources),
            str(s.copies),
            f"{s.score:.2f}",
        ]
        for s in section.stories
    )
    entities = (
        bar_list_chart(section.entities, f"Entities in stories on {section.title}", "stories")
        if section.entities
        else '<p class="empty">none</p>'
    )
    return (
        f'<section class="topic" id="{_anchor(section.id)}">'
        f"<h2>{escape(section.title)} <small>({escape(section.id)})</small></h2>"
        f'<p class="summary">{_plural(articles, "article")} in the window, {peak}; '
        f"spikes: {escape(spikes)}</p>"
        + volume_chart(section.days, f"Daily volume of {section.title}")
        + '<p class="legend"><span style="background:#b9cbe6"></span>articles (every copy)'
        '<span style="background:#1f4e8c"></span>stories'
        '<span style="background:#c62828"></span>spike</p>'
        '<div class="columns"><div><h3>Top stories</h3>'
        + _table(["story", "first seen", "sources#", "copies#", "score#"], rows, "stories")
        + "</div><div><h3>Who appears with it</h3>"
        + entities
        + "</div></div></section>"
    )


def _alerts(alerts: Sequence[dict[str, Any]]) -> str:
    rows = (
        [
            escape(_when(a["created_at"])),
            escape(a["topic"] or ""),
            _link(a["title"] or "", a["url"]),
            escape(a["source"] or ""),
            escape(a.get("language") or ""),
            f"{a['score']:.2f}" if a["score"] is not None else "",
        ]
        for a in alerts
    )
    return (
        '<section id="alerts"><h2>Latest alerts</h2>'
        + _table(["raised", "topic", "story", "source", "language", "score#"], rows)
        + "</section>"
    )


def _sources(report: Report) -> str:
    health = (
        [
            escape(s["source"]),
            str(s["ok"]),
            str(s["not_modified"]),
            f'<span class="failed">{s["failed"]}</span>' if s["failed"] else "0",
            escape(s["last_status"] or ""),
            escape(s["last_error"] or ""),
        ]
        for s in report.sources
    )
    rejections = (
        [escape(r["source"] or ""), escape(r["reason"] or ""), str(r["rejected"])]
        for r in report.rejections
    )
    since = _when(report.window.runs_since)
    return (
        f'<section id="sources"><h2>Source health</h2><p class="meta">Runs since '
        f"{escape(since)}: how each feed answered.</p>"
        + _table(["source", "ok#", "not modified#", "failed#", "last status", "last error"], health)
        + "<h3>Rejected inputs by reason</h3>"
        + _table(["source", "reason", "rejected#"], rejections)
        + "</section>"
    )


def _runs(runs: Sequence[dict[str, Any]]) -> str:
    rows = (
        [
            escape(r["run_id"]),
            escape(_when(r["started_at"])),
            str(r["articles"]),
            str(r["alerts"]),
            str(r["rejected"]),
            f"{r['feeds_ok']} ok, {r['feeds_not_modified']} not modified, "
            + (
                f'<span class="failed">{r["feeds_failed"]} failed</span>'
                if r["feeds_failed"]
                else "0 failed"
            ),
        ]
        for r in runs
    )
    return (
        '<section id="runs"><h2>Run history</h2>'
        + _table(["run", "started", "articles#", "alerts#", "rejected#", "feeds"], rows)
        + "</section>"
    )


def render_report(report: Report) -> str:
    """The whole page as one string."""
    window = f"{report.window.start.isoformat()} to {report.window.end.isoformat()}"
    nav = (
        "".join(f'<a href="#{_anchor(t.id)}">{escape(t.title)}</a>' for t in report.topics)
        + '<a href="#alerts">alerts</a><a href="#sources">sources</a><a href="#runs">runs</a>'
    )
    topics = "".join(_topic(t) for t in report.topics) or (
        '<section><p class="empty">No article matched a watched topic in the window.</p></section>'
    )
    footer = (
        f"A spike is a day with at least {SPIKE_MIN_STORIES} stories and more than the mean "
        f"plus {SPIKE_SIGMAS:g} standard deviations of the {SPIKE_BASELINE_DAYS} days before it. "
        "A story is one cluster of near-duplicate articles; its copies are every article in it."
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>newswatch report, {escape(window)}</title><style>{_STYLE}</style></head><body>"
        f'<header><h1>newswatch report</h1><p class="meta">{escape(report.root)} · '
        f"{escape(window)} · {_plural(report.articles, 'article')} · generated "
        f"{escape(_when(report.generated_at))} · times in UTC</p><nav>{nav}</nav></header>"
        f"{topics}{_alerts(report.alerts)}{_sources(report)}{_runs(report.runs)}"
        f"<footer><p>{escape(footer)}</p></footer></body></html>\n"
    )
