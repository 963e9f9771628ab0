"""Temporary folders and files of the leaderboard that go on every exit path (see tasks.atomic, which holds
the rules: signals become SystemExit while one is open, and every temporary name carries the id of the
process that made it, so the next one made in the same place sweeps those a SIGKILL left behind)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks.atomic import exits_cleanly, sweep, tagged, temporary_file, write_synced

SCRATCH_PREFIX = "memalpha-leaderboard-"


@contextmanager
def scratch_dir(parent: str | Path | None = None) -> Iterator[Path]:
    """A new temporary folder under `parent` (default: the system's temp folder), removed on leaving."""
    parent = Path(parent or tempfile.gettempdir())
    sweep(parent, SCRATCH_PREFIX)
    with exits_cleanly():
        path = Path(tempfile.mkdtemp(prefix=tagged(SCRATCH_PREFIX), dir=parent))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def write_new(final: Path, text: str) -> None:
    """Write `final` atomically and never over an existing file: the text goes to a temporary file beside
    it, which is hard-linked into place (FileExistsError if the name is taken) and then removed."""
    sweep(final.parent)
    with exits_cleanly():
        fd, tmp = temporary_file(final.parent, final.name)
        try:
            write_synced(fd, text)
            os.link(tmp, final)
        finally:
            os.unlink(tmp)
