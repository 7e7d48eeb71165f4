"""Small SVG charts rendered on the server: sparklines, step lines, stock strips, a heat-map.

Each chart is one ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in words
what it shows (screen readers read those; the pages add a table beside the bigger charts).
Colours come from classes styled in ``style.css`` (no inline styles, so the CSP stays
``style-src 'self'``); sizes are a ``viewBox``, so a chart shrinks to a 390 px phone.

A library (pygal, matplotlib) would bring far more than four shapes need and inline styles
or raster output; these are a hundred lines of arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

SERIES_CLASSES = 6  # .s0 ... .s5 in style.css


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[datetime, float]]  # (from, value), ascending; holds until the next


def _n(value: float) -> str:
    """A coordinate: one decimal is plenty."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _label(value: float) -> str:
    """An axis value: four significant digits (an hourly price of $0.007 stays readable)."""
    return f"{value:.4g}"


def _svg(
    width: int,
    height: int,
    title: str,
    desc: str,
    body: str,
    cls: str,
    *,
    stretch: bool = False,
    natural: bool = False,
) -> Markup:
    # A strip stretches to its box; the other charts keep their proportions. A natural-size
    # chart (the heat-map) is drawn at its own size, shrunk only to fit a narrow screen.
    aspect = "none" if stretch else "xMinYMin meet"
    size = f' width="{width}" height="{height}"' if natural else ""
    return Markup(
        f'<svg class="chart {cls}" viewBox="0 0 {width} {height}"{size} role="img" '
        f'preserveAspectRatio="{aspect}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{body}</svg>"
    )


def sparkline(values: Sequence[float], *, title: str, desc: str = "") -> Markup:
    """A tiny line of ``values`` (equally spaced), for a number over time beside its text."""
    width, height, pad = 120, 24, 2
    if not values:
        return _svg(width, height, title, desc or "no data", "", "spark")
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = " ".join(
        f"{_n(pad + i * step)},{_n(height - pad - (v - low) / span * (height - 2 * pad))}"
        for i, v in enumerate(values)
    )
    described = desc or f"{len(values)} values from {_n(low)} to {_n(high)}, last {_n(values[-1])}"
    body = f'<polyline class="s0" fill="none" points="{points}"/>'
    return _svg(width, height, title, described, body, "spark")


def step_chart(
    series: Sequence[Series],
    since: datetime,
    until: datetime,
    *,
    title: str,
    desc: str,
    unit: str = "",
) -> Markup:
    """Step lines over ``[since, until)``: each value holds until the series' next point."""
    width, height = 480, 200
    left, right, top, bottom = 56, 8, 10, 28
    values = [v for s in series for _, v in s.points]
    total = (until - since).total_seconds() or 1.0
    if not values:
        return _svg(width, height, title, desc, "", "steps")
    low, high = min(values), max(values)
    if high == low:
        low, high = low * 0.9, high * 1.1 or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(at: datetime) -> float:
        return left + max(0.0, min(1.0, (at - since).total_seconds() / total)) * plot_w

    def y(value: float) -> float:
        return top + (1 - (value - low) / (high - low)) * plot_h

    parts = [
        f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>',
        f'<text class="axis" x="{left - 4}" y="{top + 10}" text-anchor="end">'
        f"{escape(_label(high))}{escape(unit)}</text>",
        f'<text class="axis" x="{left - 4}" y="{top + plot_h}" text-anchor="end">'
        f"{escape(_label(low))}{escape(unit)}</text>",
        f'<text class="axis" x="{left}" y="{height - 8}">{since:%Y-%m-%d}</text>',
        f'<text class="axis" x="{width - right}" y="{height - 8}" text-anchor="end">'
        f"{until:%Y-%m-%d}</text>",
    ]
    for index, item in enumerate(series):
        coords: list[str] = []
        ordered = sorted(item.points)
        for position, (at, value) in enumerate(ordered):
            start = max(at, since)
            end = ordered[position + 1][0] if position + 1 < len(ordered) else until
            if end <= since or start >= until:
                continue
            coords.append(f"{_n(x(start))},{_n(y(value))}")
            coords.append(f"{_n(x(min(end, until)))},{_n(y(value))}")
        if coords:
            parts.append(
                f'<polyline class="s{index % SERIES_CLASSES}" fill="none" '
                f'points="{" ".join(coords)}"><title>{escape(item.name)}</title></polyline>'
            )
    return _svg(width, height, title, desc, "".join(parts), "steps")


def stock_strip(
    spans: Sequence[tuple[datetime, datetime]],
    since: datetime,
    until: datetime,
    *,
    title: str,
    desc: str,
) -> Markup:
    """One bar over ``[since, until)``: filled where in stock (``spans``, clipped)."""
    width, height = 600, 14
    total = (until - since).total_seconds() or 1.0
    parts = [f'<rect class="out" x="0" y="0" width="{width}" height="{height}"/>']
    for start, end in spans:
        low = max(start, since)
        high = min(end, until)
        if high <= low:
            continue
        x0 = (low - since).total_seconds() / total * width
        w = max((high - low).total_seconds() / total * width, 0.5)
        parts.append(f'<rect class="in" x="{_n(x0)}" y="0" width="{_n(w)}" height="{height}"/>')
    return _svg(width, height, title, desc, "".join(parts), "strip", stretch=True)


def heatmap(
    rows: Sequence[tuple[str, Sequence[float | None]]],
    columns: Sequence[str],
    *,
    title: str,
    desc: str,
) -> Markup:
    """Rows (e.g. plans) x columns (e.g. days), each cell shaded by a share 0..1 (None:
    unknown). Row labels are drawn at the left; each cell has its own ``<title>``."""
    cell, label_w, gap = 16, 150, 1
    width = label_w + len(columns) * (cell + gap)
    height = max(len(rows), 1) * (cell + gap)
    parts: list[str] = []
    for r, (label, shares) in enumerate(rows):
        y = r * (cell + gap)
        parts.append(
            f'<text class="axis" x="{label_w - 4}" y="{y + cell - 2}" text-anchor="end">'
            f"{escape(label[:24])}</text>"
        )
        for c, share in enumerate(shares):
            level = "na" if share is None else str(min(4, int(share * 4.999)))
            shown = "unknown" if share is None else f"{share * 100:.0f} % in stock"
            column = columns[c] if c < len(columns) else ""
            parts.append(
                f'<rect class="h{level}" x="{label_w + c * (cell + gap)}" y="{y}" '
                f'width="{cell}" height="{cell}"><title>{escape(label)} {escape(column)}: '
                f"{shown}</title></rect>"
            )
    return _svg(width, height, title, desc, "".join(parts), "heat", natural=True)
