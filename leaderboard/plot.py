"""Score against memory size, one scatter plot per board, as SVG coordinates computed here (no JS).

The x axis is logarithmic (memories range from hundreds to hundreds of thousands of tokens), in whole
decades around the data; the y axis is fitted to the board's overall scores with round ticks (0.02,
0.05, 0.1, ...), so a board of low scores does not sit flat on the axis. Point labels are placed so that
no two overlap and none covers a point: each label takes the first free spot around its point (entries in
rank order, so the best get theirs first); a label with no free spot is left out (its point keeps its
tooltip, and the caption says how many). Label sizes are estimated generously from the characters, so the
boxes the browser draws lie inside the ones reserved here. Numbers are rounded so output is stable.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 720, 380
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 16, 52
POINT_RADIUS = 5
LABEL_PX = 11  # font size of point labels
LABEL_CHARS = 28  # longer names are cut, with an ellipsis
GAP = 3  # pixels between a point and its label


@dataclass(frozen=True)
class Tick:
    pos: str
    label: str


@dataclass(frozen=True)
class Label:
    x: str
    y: str
    anchor: str  # SVG text-anchor
    text: str


@dataclass(frozen=True)
class Point:
    x: str
    y: str
    title: str
    href: str
    reported: bool
    label: Label | None


@dataclass(frozen=True)
class Plot:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    points: list[Point]
    unplotted: int
    unlabelled: int
    label_px: int = LABEL_PX


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def overlaps(self, other: Box) -> bool:
        across = self.left < other.right and other.left < self.right
        return across and self.top < other.bottom and other.top < self.bottom

    def inside(self, other: Box) -> bool:
        across = other.left <= self.left and self.right <= other.right
        return across and other.top <= self.top and self.bottom <= other.bottom


def tokens_label(tokens: float) -> str:
    """1234 -> '1.2K', 10_000 -> '10K', 2_000_000 -> '2M', 850 -> '850'."""
    for unit, size in (("M", 1e6), ("K", 1e3)):
        if tokens >= size:
            return f"{tokens / size:.1f}".removesuffix(".0") + unit
    return f"{tokens:.0f}"


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def nice_ticks(low: float, high: float, within: tuple[float, float] = (0.0, 1.0)) -> tuple[list[float], int]:
    """Round tick values covering [low, high] (four to six of them, a step of 1, 2, 2.5 or 5 times a power of
    ten, kept within `within`), and the decimals their labels need."""
    span = max(high - low, 0.04)
    raw = span / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999) * power
    first = max(math.floor(low / step + 1e-9), math.ceil(within[0] / step - 1e-9))
    last = min(math.ceil(high / step - 1e-9), math.floor(within[1] / step + 1e-9))
    if last == first:
        last = first + 1
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if round(step / power, 6) == 2.5 else 0)
    return [round(k * step, 10) for k in range(first, last + 1)], decimals


def label_width(text: str, px: float = LABEL_PX) -> float:
    """A generous estimate of a label's width in pixels in a sans-serif font of `px` pixels."""
    em = 0.0
    for char in text:
        if unicodedata.combining(char):
            continue
        if unicodedata.east_asian_width(char) in "WF":
            em += 1.1
        elif char in "mwMW@%":
            em += 1.0
        elif char.isspace():
            em += 0.4
        elif char.isascii() and char.islower():
            em += 0.65
        else:
            em += 0.8
    return em * px + 2


def label_box(x: float, baseline: float, anchor: str, width: float, px: float = LABEL_PX) -> Box:
    """The box a label may take: above its baseline by more than a font's ascent, below it by more than its
    descent, from its anchor."""
    left = {"start": x, "end": x - width, "middle": x - width / 2}[anchor]
    return Box(left, baseline - 1.15 * px, left + width, baseline + 0.45 * px)


def _candidates(x: float, y: float, px: float) -> list[tuple[float, float, str]]:
    """(x, baseline, anchor) spots around a point, nearest first."""
    side = POINT_RADIUS + GAP
    above, below = y - side + 0.1 * px, y + side + 1.05 * px
    level = y + 0.35 * px
    return [
        (x + side, level, "start"),
        (x - side, level, "end"),
        (x + side, above, "start"),
        (x + side, below, "start"),
        (x - side, above, "end"),
        (x - side, below, "end"),
        (x, above, "middle"),
        (x, below, "middle"),
        (x + side, above - 1.2 * px, "start"),
        (x + side, below + 1.2 * px, "start"),
        (x - side, above - 1.2 * px, "end"),
        (x - side, below + 1.2 * px, "end"),
    ]


def place_labels(
    points: Sequence[tuple[float, float, str]], area: Box, px: float = LABEL_PX
) -> list[tuple[Label, Box] | None]:
    """A label per (x, y, text) point, in order, at the first spot inside `area` that overlaps no placed label
    and no point; None where there is none."""
    taken = [
        Box(x - POINT_RADIUS - 1, y - POINT_RADIUS - 1, x + POINT_RADIUS + 1, y + POINT_RADIUS + 1)
        for x, y, _ in points
    ]
    out: list[tuple[Label, Box] | None] = []
    for x, y, text in points:
        shown = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1].rstrip() + "…"
        width = label_width(shown, px)
        placed = None
        for lx, baseline, anchor in _candidates(x, y, px):
            box = label_box(lx, baseline, anchor, width, px)
            if box.inside(area) and not any(box.overlaps(t) for t in taken):
                placed = (Label(_fmt(lx), _fmt(baseline), anchor, shown), box)
                taken.append(box)
                break
        out.append(placed)
    return out


def scatter(entries: list[dict[str, Any]], href: str = "entries/{id}.html") -> Plot | None:
    """The plot of the entries (in rank order) that have a memory size; None when none has."""
    sized = [e for e in entries if e.get("memory_tokens")]
    if not sized:
        return None
    logs = [math.log10(e["memory_tokens"]) for e in sized]
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    hi = max(hi, lo + 1)
    scores = [e["scores"]["overall"] for e in sized]
    y_values, decimals = nice_ticks(min(scores), max(scores))
    y_lo, y_hi = y_values[0], y_values[-1]
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(log: float) -> float:
        return LEFT + (log - lo) / (hi - lo) * inner_w

    def y(score: float) -> float:
        return TOP + (y_hi - score) / (y_hi - y_lo) * inner_h

    x_ticks = [Tick(_fmt(x(k)), tokens_label(10.0**k)) for k in range(lo, hi + 1)]
    y_ticks = [Tick(_fmt(y(v)), f"{v:.{decimals}f}") for v in y_values]
    coords = [(round(x(log), 1), round(y(e["scores"]["overall"]), 1)) for e, log in zip(sized, logs, strict=True)]
    area = Box(LEFT + 1, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM - 1)
    labels = place_labels([(cx, cy, e["agent"]["name"]) for (cx, cy), e in zip(coords, sized, strict=True)], area)
    points = []
    for e, (cx, cy), placed in zip(sized, coords, labels, strict=True):
        overall, agent = e["scores"]["overall"], e["agent"]
        title = f"{agent['name']} {agent['version']}: {overall:.3f} at {tokens_label(e['memory_tokens'])} tokens"
        label = placed[0] if placed else None
        points.append(Point(_fmt(cx), _fmt(cy), title, href.format(id=e["id"]), e["status"] == "reported", label))
    unlabelled = sum(p.label is None for p in points)
    return Plot(
        WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM, x_ticks, y_ticks, points, len(entries) - len(sized), unlabelled
    )
