"""Size caps on the memories file `memalpha score` reads, checked before it is parsed.

Scoring needs memory in proportion to the memories it reads (3–9 bytes per byte of the file at its
peak, docs/performance.md), so a file far larger than expected (a run gone wrong, a file that is not
what it seems) is refused with a message naming it and the cap, instead of exhausting the machine's
memory. Like the leaderboard's caps on submissions, the caps are generous defaults that a user may
change: `--input-limit NAME=VALUE` (sizes take a K, M or G suffix, powers of 1024).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.errors import TaskError, UsageError

SCAN_BYTES = 1 << 22  # how much of the file is looked at a time when line lengths are checked
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@dataclass(frozen=True)
class InputLimits:
    """`memories_bytes`: the whole memories file; `record_bytes`: one line of it (one instance's memory)."""

    memories_bytes: int = 2 << 30
    record_bytes: int = 512 << 20

    @classmethod
    def parse(cls, settings: list[str] | None) -> InputLimits:
        """Defaults changed by `NAME=VALUE` settings (the `--input-limit` option)."""
        names = [f.name for f in dataclasses.fields(cls)]
        changes: dict[str, int] = {}
        for setting in settings or []:
            name, _, value = setting.partition("=")
            name = name.strip().replace("-", "_")
            if name not in names:
                raise UsageError(
                    f"--input-limit {setting!r}: unknown limit {name!r}; the limits are {', '.join(names)}"
                )
            size = _SIZE.match(value)
            if size is None or int(size.group(1)) < 1:
                raise UsageError(
                    f"--input-limit {setting!r}: the value must be a positive number of bytes, optionally with "
                    "a K, M or G suffix (e.g. 4G)"
                )
            changes[name] = int(size.group(1)) * _UNITS[size.group(2).lower()]
        return dataclasses.replace(cls(), **changes)


class InputTooLarge(TaskError):
    """A memories file over a size cap."""


def check_memories_file(path: Path, limits: InputLimits) -> None:
    """Refuse a memories file over `limits`, naming the file (and the line) and the option that raises the
    cap. Line lengths are read from the raw bytes a block at a time (memory use stays a few MB), and only
    for a file larger than one record may be. A missing file passes: its reader names it."""
    if not path.is_file():
        return
    size = path.stat().st_size
    if size > limits.memories_bytes:
        raise InputTooLarge(
            f"{path}: {size:,} bytes, over the limit of {limits.memories_bytes:,} for a memories file "
            f"(raise it with --input-limit memories_bytes={_suggest(size)})"
        )
    if size <= limits.record_bytes:
        return
    line, length = _longest_line(path)
    if length > limits.record_bytes:
        raise InputTooLarge(
            f"{path}, line {line}: a record of {length:,} bytes, over the limit of {limits.record_bytes:,} for one "
            f"memory (raise it with --input-limit record_bytes={_suggest(length)})"
        )


def _longest_line(path: Path) -> tuple[int, int]:
    """(line number, length in bytes without its newline) of the file's longest line (the first of equals)."""
    best_line, best_length = 1, 0
    line, length = 1, 0  # the line being read and its length so far
    with open(path, "rb") as f:
        while block := f.read(SCAN_BYTES):
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
            if ends.size == 0:
                length += len(block)
                continue
            lengths = np.diff(ends, prepend=-1) - 1
            lengths[0] += length
            longest = int(lengths.argmax())
            if lengths[longest] > best_length:
                best_line, best_length = line + longest, int(lengths[longest])
            line += ends.size
            length = len(block) - int(ends[-1]) - 1
    if length > best_length:
        best_line, best_length = line, length
    return best_line, best_length


def _suggest(size: int) -> str:
    """A cap above `size`, in whole GB or MB."""
    unit, name = (1 << 30, "G") if size >= 1 << 30 else (1 << 20, "M")
    return f"{size // unit + 1}{name}"
