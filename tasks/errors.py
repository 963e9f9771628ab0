"""Errors of the task layer. Each names what a user needs to fix: the file, the line or record, the field."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

QUOTED_CHARS = 60


class TaskError(Exception):
    """Base class: anything the CLI reports as a one-line error instead of a traceback (exit code 1)."""


def _cut(text: str, limit: int, show) -> str:
    return show(text) if len(text) <= limit else f"{show(text[:limit])}… ({len(text):,} characters)"


def quoted(value: object, limit: int = QUOTED_CHARS) -> str:
    """A value from the user's input as an error message shows it: its repr (a string) or text, cut to `limit`
    characters with the full length named, so a huge id cannot blow up a message (or a log) that echoes it."""
    return _cut(value, limit, repr) if isinstance(value, str) else _cut(str(value), limit, str)


def shortened(text: str, limit: int = QUOTED_CHARS) -> str:
    """`text` as it is, or cut to `limit` characters with the full length named (see `quoted`)."""
    return _cut(text, limit, str)


class UsageError(TaskError):
    """The command line itself is wrong: an unknown name, a bad option value, a missing flag (exit code 2)."""


class UnknownNameError(UsageError, KeyError):
    """An unknown task or suite name, with the closest known names as suggestions."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.name = name
        known = list(known)
        # a name over 3x the longest known one cannot reach the 0.5 ratio; skip the costly comparison
        reachable = len(name) <= 3 * max(map(len, known), default=0)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5) if reachable else []
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown {kind} {quoted(name)}{hint} (`memalpha tasks list` shows them all)")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class RawFormatError(TaskError):
    """A raw or release file that does not have the documented shape."""

    def __init__(self, path: str | Path, where: str | None, message: str, field: str | None = None):
        self.path, self.where, self.field = str(path), where, field
        location = self.path + (f", {where}" if where else "")
        field_part = f", field {field!r}" if field else ""
        super().__init__(f"{location}{field_part}: {message}")


class MissingRawFilesError(TaskError):
    """The raw directory of a source lacks the files its builder reads."""

    def __init__(self, source: str, directory: str | Path, expected: Iterable[str]):
        self.directory = str(directory)
        self.expected = list(expected)
        listing = "\n".join(f"  {Path(directory) / e}" for e in self.expected)
        super().__init__(
            f"raw files for source {source!r} not found; expected under {directory}:\n{listing}\n"
            f"(pass --raw-dir DIR so that DIR/{source}/ holds them)"
        )


class SourceUnavailableError(TaskError):
    """A hub or release source that cannot be reached (offline machine, missing mirror)."""


class BuildError(TaskError):
    """A build that produced something the schema does not allow."""
