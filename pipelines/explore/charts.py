"""Inline SVG charts for the report page: drawn here, as text, with no script and no library.

Why SVG written by hand rather than Vega-Lite through Altair: the page must open offline,
so a Vega-Lite chart would carry vega, vega-lite and vega-embed inlined (about 1 MB of
JavaScript per page, more than the rest of the report many times over) and would draw only
once that script has run. These charts are a few kilobytes each, are drawn by the browser's
parser with JavaScript off, and cost about a millisecond each to write (figures for a whole
report in ``report.py``).

Every text that reaches a chart is escaped here; callers pass plain strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from newswatch.pipelines.explore.report_data import DayVolume

__all__ = ["bar_list_chart", "volume_chart"]

# About the page's content width, so that text in a chart shows at the page's own size.
WIDTH = 1100
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 10, 18, 28


def _nice_max(value: int) -> int:
    """An axis maximum at or above ``value``: 1, 2, 5, 10, 20, 50, ..."""
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            if multiple * magnitude >= value:
                return multiple * magnitude
        magnitude *= 10


def _tick_indexes(count: int, most: int = 7) -> list[int]:
    if count <= most:
        return list(range(count))
    step = -(-(count - 1) // (most - 1))
    return list(range(0, count, step))


def volume_chart(days: Sequence[DayVolume], label: str) -> str:
    """Daily columns: every article (light), the distinct stories (dark), spikes in red."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    top = _nice_max(max((d.articles for d in days), default=0))
    step = plot_w / max(len(days), 1)
    bar = max(step * 0.8, 1.0)

    def y(value: float) -> float:
        return _TOP + plot_h - plot_h * value / top

    parts = [
        f'<svg class="chart volume" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for value in (0, top / 2, top):
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text class="axis" x="{_LEFT - 6}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{value:g}</text>'
        )
    for i, day in enumerate(days):
        x = _LEFT + i * step + (step - bar) / 2
        tip = f"{day.day.isoformat()}: {day.stories} stories, {day.articles} articles"
        tip += " (spike)" if day.spike else ""
        parts.append(f"<g><title>{escape(tip)}</title>")
        if day.articles:
            parts.append(
                f'<rect class="articles" x="{x:.1f}" y="{y(day.articles):.1f}" '
                f'width="{bar:.1f}" height="{y(0) - y(day.articles):.1f}"/>'
            )
        if day.stories:
            kind = "stories spike" if day.spike else "stories"
            parts.append(
                f'<rect class="{kind}" x="{x:.1f}" y="{y(day.stories):.1f}" '
                f'width="{bar:.1f}" height="{y(0) - y(day.stories):.1f}"/>'
            )
        if day.spike:
            cx, cy = x + bar / 2, y(day.articles) - 4
            parts.append(
                f'<path class="spike-mark" d="M{cx - 5:.1f},{cy - 8:.1f} '
                f'L{cx + 5:.1f},{cy - 8:.1f} L{cx:.1f},{cy:.1f} Z"/>'
            )
        parts.append("</g>")
    for i in _tick_indexes(len(days)):
        x = _LEFT + i * step + step / 2
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
            f"{days[i].day.isoformat()}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_list_chart(items: Sequence[tuple[str, int]], label: str, unit: str) -> str:
    """Horizontal bars, one a row, the label left of each: e.g. entities by stories."""
    row, label_w, width = 22, 220, 460
    height = row * max(len(items), 1) + 6
    top = max((value for _, value in items), default=1) or 1
    parts = [
        f'<svg class="chart bars" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for i, (name, value) in enumerate(items):
        y = 3 + i * row
        length = (width - label_w - 40) * value / top
        shown = name if len(name) <= 32 else name[:31] + "…"
        parts.append(
            f"<g><title>{escape(f'{name}: {value} {unit}')}</title>"
            f'<text class="label" x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
            f"{escape(shown)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(length, 1):.1f}" '
            f'height="{row - 8}"/>'
            f'<text class="value" x="{label_w + length + 6:.1f}" y="{y + 15}">{value}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
