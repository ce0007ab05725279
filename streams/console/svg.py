"""Charts as inline SVG strings: no JavaScript and no CDN, so the pages render under a CSP that
allows no script at all, and every label goes through `esc` (student data is untrusted).

Each chart takes plain numbers and labels and returns one `<svg>` element; an empty input gives
a short "no data" figure rather than an empty or broken one.
"""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from streams.console.words import say

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 16, 40  # plot margins; the legend sits in the right one


def esc(value: object) -> str:
    """Text for HTML/SVG content and quoted attributes."""
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class Series:
    """One named line, area or bar stack; None values are gaps."""

    name: str
    values: Sequence[float | None]
    color: str


def _open(title: str, height: int = HEIGHT, width: int = WIDTH) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'class="chart" aria-label="{esc(title)}"><title>{esc(title)}</title>')


def empty(title: str) -> str:
    """A small figure that says there is nothing to draw."""
    return (_open(title, 60) + f'<text x="{WIDTH / 2}" y="34" text-anchor="middle" class="muted">'
            f"{esc(say('chart.no_data'))}</text></svg>")


def nice_max(value: float) -> float:
    """The axis top: `value` rounded up to 1, 2 or 5 times a power of ten (1 for nothing)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


class _Frame:
    """Maps data to pixels inside the margins and draws axes, ticks and the legend."""

    def __init__(self, n: int, y_max: float, y_min: float = 0.0, height: int = HEIGHT,
                 slots: bool = False, x_max: float | None = None) -> None:
        self.n, self.y_min, self.y_max, self.height = n, y_min, y_max, height
        self.slots, self.x_max = slots, x_max
        self.plot_w = WIDTH - LEFT - RIGHT
        self.plot_h = height - TOP - BOTTOM

    def x(self, i: float) -> float:
        """Index i's position (points from edge to edge, or the middle of slot i for bars); with
        `x_max`, value i's position on a 0..x_max axis."""
        if self.x_max is not None:
            return LEFT + self.plot_w * min(max(i, 0.0), self.x_max) / self.x_max
        if self.slots:
            return LEFT + self.plot_w / self.n * (i + 0.5)
        return LEFT + (self.plot_w * i / (self.n - 1) if self.n > 1 else self.plot_w / 2)

    def y(self, value: float) -> float:
        span = (self.y_max - self.y_min) or 1.0
        return TOP + self.plot_h * (1 - (value - self.y_min) / span)

    def axes(self, labels: Sequence[str], y_label: str, ticks: int = 4, every: int | None = None) -> str:
        parts = [f'<line x1="{LEFT}" y1="{TOP + self.plot_h}" x2="{LEFT + self.plot_w}" '
                 f'y2="{TOP + self.plot_h}" class="axis"/>',
                 f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + self.plot_h}" class="axis"/>']
        for k in range(ticks + 1):
            value = self.y_min + (self.y_max - self.y_min) * k / ticks
            text = f"{value:.2f}" if self.y_max <= 1 else f"{value:g}"
            parts.append(f'<text x="{LEFT - 6}" y="{_num(self.y(value) + 4)}" text-anchor="end" '
                         f'class="tick">{esc(text)}</text>')
        step = every or max(1, math.ceil(len(labels) / 8))
        for i, label in enumerate(labels):
            if i % step == 0:
                parts.append(f'<text x="{_num(self.x(i))}" y="{TOP + self.plot_h + 16}" text-anchor="middle" '
                             f'class="tick">{esc(label)}</text>')
        parts.append(f'<text x="12" y="{TOP + self.plot_h / 2}" transform="rotate(-90 12 {TOP + self.plot_h / 2})" '
                     f'text-anchor="middle" class="tick">{esc(y_label)}</text>')
        return "".join(parts)

    @staticmethod
    def legend(series: Sequence[Series]) -> str:
        x = WIDTH - RIGHT + 14
        return "".join(
            f'<rect x="{x}" y="{TOP + 18 * i}" width="12" height="12" fill="{esc(s.color)}"/>'
            f'<text x="{x + 18}" y="{TOP + 18 * i + 10}" class="tick">{esc(s.name)}</text>'
            for i, s in enumerate(series))


def stacked_area(title: str, labels: Sequence[str], series: Sequence[Series], y_label: str) -> str:
    """Series stacked bottom-up over the x labels (students by status over time)."""
    n = len(labels)
    if n == 0 or not series:
        return empty(title)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(n)]
    frame = _Frame(n, nice_max(max(totals)))
    parts = [_open(title), frame.axes(labels, y_label)]
    below = [0.0] * n
    for s in series:
        above = [below[i] + (s.values[i] or 0) for i in range(n)]
        top = " ".join(f"{_num(frame.x(i))},{_num(frame.y(above[i]))}" for i in range(n))
        bottom = " ".join(f"{_num(frame.x(i))},{_num(frame.y(below[i]))}" for i in reversed(range(n)))
        parts.append(f'<polygon points="{top} {bottom}" fill="{esc(s.color)}" fill-opacity="0.85" '
                     f'class="area"><title>{esc(s.name)}</title></polygon>')
        below = above
    parts.append(frame.legend(series))
    return "".join(parts) + "</svg>"


def lines(title: str, labels: Sequence[str], series: Sequence[Series], y_label: str,
          y_max: float | None = None) -> str:
    """One polyline per series over the x labels; None values break the line."""
    n = len(labels)
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if n == 0 or not values:
        return empty(title)
    frame = _Frame(n, y_max if y_max is not None else nice_max(max(values)), min(0.0, min(values)))
    parts = [_open(title), frame.axes(labels, y_label)]
    for s in series:
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None or not math.isfinite(v):
                runs.append([])
                continue
            runs[-1].append(f"{_num(frame.x(i))},{_num(frame.y(v))}")
        for run in runs:
            if len(run) == 1:
                x, y = run[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{esc(s.color)}"/>')
            elif run:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{esc(s.color)}" '
                             f'stroke-width="2" class="line"><title>{esc(s.name)}</title></polyline>')
    parts.append(frame.legend(series))
    return "".join(parts) + "</svg>"


def bars(title: str, labels: Sequence[str], series: Sequence[Series], y_label: str) -> str:
    """Vertical bars, the series stacked (where students stop, by course week)."""
    n = len(labels)
    if n == 0 or not series:
        return empty(title)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(n)]
    frame = _Frame(n, nice_max(max(totals)), slots=True)
    slot = frame.plot_w / n
    parts = [_open(title), frame.axes(labels, y_label)]
    below = [0.0] * n
    for s in series:
        for i in range(n):
            value = s.values[i] or 0
            if value <= 0:
                continue
            top, bottom = frame.y(below[i] + value), frame.y(below[i])
            parts.append(f'<rect x="{_num(frame.x(i) - slot * 0.35)}" y="{_num(top)}" width="{_num(slot * 0.7)}" '
                         f'height="{_num(bottom - top)}" fill="{esc(s.color)}" class="bar">'
                         f"<title>{esc(labels[i])}: {esc(s.name)} {esc(f'{value:g}')}</title></rect>")
            below[i] += value
    parts.append(frame.legend(series))
    return "".join(parts) + "</svg>"


def hbars(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """Horizontal stacked bars with long labels on the left (where students stop, by place)."""
    n = len(labels)
    if n == 0 or not series:
        return empty(title)
    row, label_w = 22, 300
    height = TOP + row * n + 24
    total = nice_max(max(sum(s.values[i] or 0 for s in series) for i in range(n)))
    width = WIDTH - label_w - RIGHT
    parts = [_open(title, height)]
    for i, label in enumerate(labels):
        y = TOP + row * i
        short = label if len(label) <= 46 else label[:45] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" class="tick">{esc(short)}'
                     f"<title>{esc(label)}</title></text>")
        left = 0.0
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            w = width * value / total
            parts.append(f'<rect x="{_num(label_w + left)}" y="{y + 3}" width="{_num(w)}" height="{row - 6}" '
                         f'fill="{esc(s.color)}" class="bar"><title>{esc(s.name)} {esc(f"{value:g}")}</title></rect>')
            left += w
    parts.append(f'<text x="{label_w}" y="{height - 6}" class="tick">0</text>'
                 f'<text x="{label_w + width}" y="{height - 6}" text-anchor="end" class="tick">{total:g}</text>')
    parts.append(_Frame.legend(series))
    return "".join(parts) + "</svg>"


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    color: str
    label: str


def scatter(title: str, points: Sequence[Point], x_label: str, y_label: str, x_max: float, y_max: float,
            x_cut: float, y_cut: float, corners: Sequence[tuple[str, str]]) -> str:
    """Points on fixed axes with the two cut lines; `corners` names the quadrants (top-left,
    top-right, bottom-left, bottom-right) with their colours."""
    if not points:
        return empty(title)
    height = HEIGHT + 60
    frame = _Frame(2, y_max, height=height, x_max=x_max)
    y_of = frame.y
    parts = [_open(title, height),
             frame.axes([], y_label),
             f'<text x="{LEFT + frame.plot_w / 2}" y="{height - 8}" text-anchor="middle" class="tick">'
             f"{esc(x_label)}</text>",
             f'<text x="{LEFT}" y="{TOP + frame.plot_h + 16}" class="tick">0</text>',
             f'<text x="{LEFT + frame.plot_w}" y="{TOP + frame.plot_h + 16}" text-anchor="end" class="tick">'
             f"{x_max:g}</text>",
             f'<line x1="{_num(frame.x(x_cut))}" y1="{TOP}" x2="{_num(frame.x(x_cut))}" '
             f'y2="{TOP + frame.plot_h}" class="cut"/>',
             f'<line x1="{LEFT}" y1="{_num(y_of(y_cut))}" x2="{LEFT + frame.plot_w}" y2="{_num(y_of(y_cut))}" '
             f'class="cut"/>']
    for p in points:
        parts.append(f'<circle cx="{_num(frame.x(p.x))}" cy="{_num(y_of(min(max(p.y, 0.0), y_max)))}" r="3" '
                     f'fill="{esc(p.color)}" fill-opacity="0.6"><title>{esc(p.label)}</title></circle>')
    spots = ((LEFT + 6, TOP + 14, "start"), (LEFT + frame.plot_w - 6, TOP + 14, "end"),
             (LEFT + 6, TOP + frame.plot_h - 6, "start"), (LEFT + frame.plot_w - 6, TOP + frame.plot_h - 6, "end"))
    for (name, color), (x, y, anchor) in zip(corners, spots):
        parts.append(f'<text x="{x}" y="{y}" text-anchor="{anchor}" class="corner" fill="{esc(color)}">'
                     f"{esc(name)}</text>")
    return "".join(parts) + "</svg>"


def strip(title: str, cells: Sequence[tuple[str, str, str, bool]], legend: Sequence[Series]) -> str:
    """A row of day cells, (label, colour, tooltip, marked) each, wrapped every 42 days (the
    timeline); a marked cell carries a dot."""
    if not cells:
        return empty(title)
    size, per_row = 11, 42  # six weeks a row, inside the plot area
    rows = math.ceil(len(cells) / per_row)
    height = TOP + max(rows * (size + 3), 18 * len(legend)) + 12
    parts = [_open(title, height)]
    for i, (label, color, tip, marked) in enumerate(cells):
        x, y = LEFT + (i % per_row) * (size + 2), TOP + (i // per_row) * (size + 3)
        parts.append(f'<rect x="{x}" y="{y}" width="{size}" height="{size}" fill="{esc(color)}" class="day">'
                     f"<title>{esc(label)}: {esc(tip)}</title></rect>")
        if marked:
            parts.append(f'<circle cx="{x + size / 2}" cy="{y + size / 2}" r="2" fill="#fff"/>')
    parts.append(_Frame.legend(legend))
    return "".join(parts) + "</svg>"
