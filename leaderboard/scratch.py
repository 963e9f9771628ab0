"""Temporary files of the leaderboard that go on every exit path.

An exception, Ctrl-C, SIGTERM or SIGHUP: the context managers below remove what they made (SIGTERM and
SIGHUP are turned into SystemExit while one is open, so `finally` runs). SIGKILL leaves no chance to clean
up, so every temporary name carries the id of the process that made it, and the next one made in the same
place first removes those whose process is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

SCRATCH_PREFIX = "memalpha-leaderboard-"
TEMP_FILE_PREFIX = ".tmp-"
_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _tagged(prefix: str) -> str:
    return f"{prefix}{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep(directory: Path, prefix: str) -> list[Path]:
    """Remove the temporary files and folders under `directory` named `prefix<pid>-...` whose process is
    gone; returns what was removed."""
    removed = []
    for path in sorted(directory.glob(f"{prefix}*")) if directory.is_dir() else []:
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def exits_cleanly() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise SystemExit (exit status 128 + signal) instead of ending the process
    on the spot, so cleanup code runs; the previous handlers come back on leaving. Main thread only (elsewhere
    Python cannot set handlers, and this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _exit_on_signal) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def scratch_dir(parent: str | Path | None = None) -> Iterator[Path]:
    """A new temporary folder under `parent` (default: the system's temp folder), removed on leaving."""
    parent = Path(parent or tempfile.gettempdir())
    sweep(parent, SCRATCH_PREFIX)
    with exits_cleanly():
        path = Path(tempfile.mkdtemp(prefix=_tagged(SCRATCH_PREFIX), dir=parent))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def write_new(final: Path, text: str) -> None:
    """Write `final` atomically and never over an existing file: the text goes to a temporary file beside
    it, which is hard-linked into place (FileExistsError if the name is taken) and then removed."""
    sweep(final.parent, TEMP_FILE_PREFIX)
    with exits_cleanly():
        fd, tmp = tempfile.mkstemp(prefix=_tagged(TEMP_FILE_PREFIX), suffix=final.suffix, dir=final.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, final)
        finally:
            os.unlink(tmp)
