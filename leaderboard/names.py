"""Agent names as people see them. Two names are the same entry when they look the same: they are compared
after Unicode NFKC, case folding, removal of default-ignorable code points (soft hyphen, zero-width space,
joiners, variation selectors, ...) and the confusables skeleton of Unicode TS #39 (a Cyrillic 'а' and a
Latin 'a' have one skeleton). Default-ignorable code points render as nothing, so names may not hold them.

ICU implements both Unicode properties; it comes through PyICU (the `leaderboard` extra), which builds
against the system's ICU, so the confusables data is that ICU's (its Unicode version: `unicode_version()`).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from tasks.errors import TaskError


@lru_cache(maxsize=1)
def _icu() -> Any:
    try:
        import icu
    except ImportError as exc:
        raise TaskError(
            "comparing agent names needs PyICU: pip install 'memalpha-bench[leaderboard]' (it builds against the "
            "system's ICU; on Debian: apt-get install libicu-dev pkg-config)"
        ) from exc
    return icu


@lru_cache(maxsize=1)
def _spoof_checker() -> Any:
    return _icu().SpoofChecker()


def unicode_version() -> str:
    """The Unicode version of the confusables and property data in use."""
    return str(_icu().UNICODE_VERSION)


@lru_cache(maxsize=1)
def ignorable_ranges() -> tuple[tuple[int, int], ...]:
    """The default-ignorable code points as inclusive (first, last) ranges."""
    found = _icu().UnicodeSet("[:Default_Ignorable_Code_Point:]")
    return tuple((ord(first), ord(last)) for first, last in found.ranges())


def ignorable_class() -> str:
    """A regular-expression character class of the default-ignorable code points (Python `re` and
    Unicode-aware ECMA-262 alike: the code points themselves, no escapes)."""
    return "[" + "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ignorable_ranges()) + "]"


@lru_cache(maxsize=1)
def _ignorable() -> re.Pattern[str]:
    return re.compile(ignorable_class())


def invisible_problem(value: str) -> str | None:
    """Why `value` cannot be a name (it holds a default-ignorable code point), or None."""
    found = _ignorable().search(value)
    if found is None:
        return None
    char = found.group()
    return (
        f"has the invisible character U+{ord(char):04X} ({unicodedata.name(char, 'unassigned')}) at position "
        f"{found.start()}; names may not hold default-ignorable code points, which render as nothing"
    )


def name_key(text: str) -> str:
    """The form two names are compared in: NFKC, case-folded, without default-ignorable code points, reduced
    to its TS #39 confusables skeleton, runs of spaces as one."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    visible = _ignorable().sub("", folded)
    skeleton = _spoof_checker().getSkeleton(0, visible)
    return " ".join(skeleton.casefold().split())
