"""Inline SVG charts for the report page: drawn here, as text, with no script and no library.

Why SVG written by hand rather than Vega-Lite through Altair, measured on this project's
2-core machine with a 60-day volume chart:

- Altair 6.3 ``to_html(inline=True)`` (which needs vl-convert-python, 84 MB installed) wrote
  881 KiB for one chart: vega, vega-lite and vega-embed inlined. It took 4.7 s the first
  time in a process (vl-convert loading its JavaScript), 37 ms after, and the browser draws
  it only once that script has run, so the page needs script.
- ``volume_chart`` writes 12.8 KiB in 1.3 ms, ``bar_list_chart`` (12 entities) 2.6 KiB in
  0.1 ms; the browser draws them while it parses, JavaScript off. A whole report over
  100,000 articles is about 108 KiB (``benchmarks/RESULTS.md``).

Every text that reaches a chart is escaped here; callers pass plain strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    """Days to label: evenly spaced, and the last one unless it would crowd its neighbour."""
    if count <= most:
        return list(range(count))
    step = -(-(count - 1) // (most - 1))
    ticks = list(range(0, count, step))
    if count - 1 - ticks[-1] >= step / 2:
        ticks.append(count - 1)
    return ticks


@dataclass(frozen=True)
class _Scale:
    """Maps a count to a y coordinate of the plot (0 at its bottom, ``top`` at its top)."""

    top: int
    height: float = HEIGHT - _TOP - _BOTTOM

    def y(self, value: float) -> float:
        return _TOP + self.height - self.height * value / self.top


def _day_column(day: DayVolume, x: float, bar: float, scale: _Scale) -> str:
    """One day: the articles column, the stories column over it, a marker above a spike."""
    tip = f"{day.day.isoformat()}: {day.stories} stories, {day.articles} articles"
    parts = [f"<g><title>{escape(tip + (' (spike)' if day.spike else ''))}</title>"]
    for count, kind in ((day.articles, "articles"), (day.stories, "stories")):
        if count:
            kind += " spike" if day.spike and kind == "stories" else ""
            parts.append(
                f'<rect class="{kind}" x="{x:.1f}" y="{scale.y(count):.1f}" '
                f'width="{bar:.1f}" height="{scale.y(0) - scale.y(count):.1f}"/>'
            )
    if day.spike:
        cx, cy = x + bar / 2, scale.y(day.articles) - 4
        parts.append(
            f'<path class="spike-mark" d="M{cx - 5:.1f},{cy - 8:.1f} '
            f'L{cx + 5:.1f},{cy - 8:.1f} L{cx:.1f},{cy:.1f} Z"/>'
        )
    return "".join(parts) + "</g>"


def volume_chart(days: Sequence[DayVolume], label: str) -> str:
    """Daily columns: every article (light), the distinct stories (dark), spikes in red."""
    scale = _Scale(_nice_max(max((d.articles for d in days), default=0)))
    step = (WIDTH - _LEFT - _RIGHT) / max(len(days), 1)
    bar = max(step * 0.8, 1.0)
    parts = [
        f'<svg class="chart volume" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for value in (0, scale.top / 2, scale.top):
        y = scale.y(value)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    for i, day in enumerate(days):
        parts.append(_day_column(day, _LEFT + i * step + (step - bar) / 2, bar, scale))
    for i in _tick_indexes(len(days)):
        parts.append(
            f'<text class="axis" x="{_LEFT + i * step + step / 2:.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="middle">{days[i].day.isoformat()}</text>'
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
