"""argparse types for every numeric option of `memalpha`: one place that turns a bad value into a usage
error naming the option (`argument --top-k: must be at least 1, got -5`) before any work starts.

The `tasks` layer holds them because every command group (tasks, benchmark, leaderboard, train) may
import from it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def integer(minimum: int) -> Callable[[str], int]:
    """A whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def positive_number(text: str) -> float:
    """A finite number above 0 (seconds, say)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


positive_int = integer(1)
"""Counts that must not be 0: instances, questions, tokens, parallel requests, retrieved entries."""
non_negative_int = integer(0)
"""Counts that may be 0: retries."""
