"""argparse types for every numeric option of `memalpha`: one place that turns a bad value into a usage
error naming the option (`argument --top-k: must be at least 1, got -5`) before any work starts.

The `tasks` layer holds them because every command group (tasks, benchmark, leaderboard, train) may
import from it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .errors import UsageError, quoted
from .strict_json import JsonProblem, decode


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number of at least `minimum` (and at most `maximum`, when given)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {quoted(text)}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
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
random_seed = integer(0, 2**32 - 1)
"""Random seeds: numpy's RandomState (the train cap's draw) takes 0 to 2**32 - 1 only."""


def json_object(text: str) -> dict:
    """A JSON object given as an option value, read by the strict reader (tasks.strict_json)."""
    try:
        value = decode(text)
    except JsonProblem as problem:
        where = f" (field {problem.field!r})" if problem.field else ""
        raise argparse.ArgumentTypeError(f"{problem.message}{where}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"key\": false}}', got {quoted(text)}")
    return value


def check_count(name: str, value: object, minimum: int = 1) -> None:
    """The same rule for a Python API argument (None: not set): a UsageError naming it, as the option's
    type gives on the command line, instead of a crash deep in the work (a pool of 0 threads, say)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be a whole number, got {quoted(value)}")
    if value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")
