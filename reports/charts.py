"""Small inline SVG charts: no script, no network, readable in print."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c")


def line_chart(title: str, x: Sequence[dt.datetime], series: dict[str, Sequence[Decimal | int | float]],
               width: int = 560, height: int = 180) -> str:
    """One SVG with a line per series over shared x values (dates)."""
    pad_left, pad_right, pad_bottom = 56, 12, 28
    pad_top = 30 + 22 * len(series)  # room for the title and one legend line per series (large on phones)
    values = [float(v) for points in series.values() for v in points]
    if not x or not values:
        return f'<svg class="chart" width="{width}" height="40" role="img"><text x="4" y="24">{escape(title)}: no history yet</text></svg>'
    top = max(values) or 1.0
    bottom = min(0.0, min(values))
    span_y = (top - bottom) or 1.0
    n = len(x)

    def px(i: int) -> float:
        return pad_left + (width - pad_left - pad_right) * (i / (n - 1) if n > 1 else 0.5)

    def py(value: float) -> float:
        return pad_top + (height - pad_top - pad_bottom) * (1 - (value - bottom) / span_y)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="{pad_left}" y="16" class="chart-title">{escape(title)}</text>',
             f'<line x1="{pad_left}" y1="{py(bottom):.1f}" x2="{width - pad_right}" y2="{py(bottom):.1f}" class="axis"/>',
             f'<text x="{pad_left - 6}" y="{py(top) + 4:.1f}" text-anchor="end" class="tick">{_short(top)}</text>',
             f'<text x="{pad_left - 6}" y="{py(bottom) + 4:.1f}" text-anchor="end" class="tick">{_short(bottom)}</text>',
             f'<text x="{pad_left}" y="{height - 8}" class="tick">{x[0]:%Y-%m-%d}</text>',
             f'<text x="{width - pad_right}" y="{height - 8}" text-anchor="end" class="tick">{x[-1]:%Y-%m-%d}</text>']
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        coords = " ".join(f"{px(i):.1f},{py(float(v)):.1f}" for i, v in enumerate(points))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        last = float(points[-1])
        parts.append(f'<circle cx="{px(n - 1):.1f}" cy="{py(last):.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{width - pad_right}" y="{44 + 22 * index}" text-anchor="end" fill="{colour}" '
                     f'class="legend">■ {escape(name)}: {_short(last)} now</text>')
    parts.append("</svg>")
    return "".join(parts)


def _short(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}"
