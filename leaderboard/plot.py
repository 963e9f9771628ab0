"""Score against memory size, one scatter plot per board, as SVG coordinates computed here (no JS).

The x axis is logarithmic (memories range from hundreds to hundreds of thousands of tokens); the y
axis is the overall score from 0 to 1. Numbers are rounded to fixed decimals so output is stable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 720, 380
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 16, 52


@dataclass(frozen=True)
class Tick:
    pos: str
    label: str


@dataclass(frozen=True)
class Point:
    x: str
    y: str
    label: str
    title: str
    href: str
    reported: bool


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


def tokens_label(tokens: float) -> str:
    """1234 -> '1.2K', 10_000 -> '10K', 2_000_000 -> '2M', 850 -> '850'."""
    for unit, size in (("M", 1e6), ("K", 1e3)):
        if tokens >= size:
            return f"{tokens / size:.1f}".removesuffix(".0") + unit
    return f"{tokens:.0f}"


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def scatter(entries: list[dict[str, Any]], href: str = "entries/{id}.html") -> Plot | None:
    """The plot of the entries that have a memory size; None when none has."""
    sized = [e for e in entries if e.get("memory_tokens")]
    if not sized:
        return None
    logs = [math.log10(e["memory_tokens"]) for e in sized]
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    hi = max(hi, lo + 1)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(log: float) -> float:
        return LEFT + (log - lo) / (hi - lo) * inner_w

    def y(score: float) -> float:
        return TOP + (1.0 - score) * inner_h

    x_ticks = [Tick(_fmt(x(k)), tokens_label(10.0**k)) for k in range(lo, hi + 1)]
    y_ticks = [Tick(_fmt(y(s / 4)), f"{s / 4:.2f}") for s in range(5)]
    points = []
    for e, log in zip(sized, logs, strict=True):
        overall, agent = e["scores"]["overall"], e["agent"]
        size = tokens_label(e["memory_tokens"])
        title = f"{agent['name']} {agent['version']}: {overall:.3f} at {size} tokens"
        points.append(
            Point(
                _fmt(x(log)), _fmt(y(overall)), agent["name"], title, href.format(id=e["id"]), e["status"] == "reported"
            )
        )
    return Plot(WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM, x_ticks, y_ticks, points, len(entries) - len(sized))
