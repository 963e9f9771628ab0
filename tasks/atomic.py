"""Writing outputs whole or not at all, and leaving no temporary file behind.

Every output that replaces an older one is written to a temporary file in its own folder, flushed to the
disk (fsync) and renamed over the old one (`os.replace`, atomic within a file system), so a kill or a full
disk leaves the old file or the new one, never a part of either. Files that belong together are replaced
as a set (`replace_together`): all are written first; then the old copies are removed, the seal (the last
file) first, and the new ones renamed into place in order, the seal last. So the files of a set present
at any moment are a leading part of one generation, old or new, and the seal is there only when the whole
set is.

Temporary files go on every exit path: an exception removes them; SIGTERM and SIGHUP become SystemExit
while one is open (so `finally` runs), and are held back while a set is being renamed into place. SIGKILL
leaves no chance to clean up, so every temporary name carries the id of the process that made it, and the
next write in the same folder first removes those whose process is gone.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from .errors import TaskError

TEMP_PREFIX = ".tmp-"
_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_HELD_BACK = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}

Content = str | Iterable[str] | Callable[[Path], None]
"""What a file is written from: its whole text, its text in pieces (e.g. one line each), or a writer that
takes a file name (a parquet writer, say) and is handed the temporary one."""


class OutputError(TaskError):
    """An output that could not be written; the older file, if any, is unchanged."""


def tagged(prefix: str) -> str:
    """`prefix<pid>-`: the start of a temporary name of this process, for `sweep`."""
    return f"{prefix}{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep(directory: Path, prefix: str = TEMP_PREFIX) -> list[Path]:
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


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def exits_cleanly() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise SystemExit (exit status 128 + signal) instead of ending the process
    on the spot, so cleanup code runs; the previous handlers come back on leaving. Main thread only (elsewhere
    Python cannot set handlers, and this does nothing)."""
    if not _main_thread():
        yield
        return
    previous = {s: signal.signal(s, _exit_on_signal) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Termination signals wait while a set of files is renamed into place: each is recorded, and the first is
    raised again once the renames are done (a handler, not a signal mask: a mask is per thread, and the
    kernel may hand a process signal to a reader thread). Main thread only."""
    if not _main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in _HELD_BACK}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])


@functools.cache
def _file_mode() -> int:
    """The mode a plain `open(..., "w")` gives a new file (mkstemp makes them private)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    """Make renames in `folder` durable (POSIX; elsewhere a folder cannot be opened for it)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_file(folder: Path, name: str) -> tuple[int, Path]:
    """A new temporary file in `folder` for the output `name`, open for writing: (fd, path)."""
    fd, tmp = tempfile.mkstemp(prefix=tagged(TEMP_PREFIX), suffix=f"-{name}", dir=folder)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, _file_mode())
    return fd, Path(tmp)


def write_synced(fd: int, content: str | Iterable[str]) -> None:
    """Write `content` as UTF-8 with "\\n" line ends to the open file `fd`, flush it to disk and close it."""
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        if isinstance(content, str):
            f.write(content)
        else:
            f.writelines(content)
        f.flush()
        os.fsync(f.fileno())


def _write_with(fd: int, path: Path, writer: Callable[[Path], None]) -> None:
    """Close `fd`, have `writer` write `path`, then flush what it wrote to disk."""
    os.close(fd)
    writer(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_together(folder: str | Path, outputs: Mapping[str, Content]) -> list[Path]:
    """Write the files `outputs` names (in `folder`) as one set, the last one its seal (see the module
    docstring); returns their paths. On any error or signal the temporary files are removed, and OutputError
    says what could not be written."""
    folder = Path(folder)
    names = list(outputs)
    sweep(folder)
    temps: dict[str, Path] = {}
    current, renaming = names[0], False
    with exits_cleanly():
        try:
            for current in names:
                fd, temps[current] = temporary_file(folder, current)
                content = outputs[current]
                if callable(content):
                    _write_with(fd, temps[current], content)
                else:
                    write_synced(fd, content)
            with _signals_held():
                renaming = True
                for current in reversed(names[1:]):
                    (folder / current).unlink(missing_ok=True)
                for current in names:
                    os.replace(temps[current], folder / current)
                    del temps[current]
                _sync_folder(folder)
        except OSError as exc:
            state = f"{names[-1]} is missing until it is written again" if renaming else "older files are unchanged"
            raise OutputError(f"{folder / current}: cannot write ({exc.strerror or exc}); {state}") from exc
        finally:
            for tmp in temps.values():
                tmp.unlink(missing_ok=True)
    return [folder / name for name in names]


def replace_file(path: str | Path, content: Content) -> Path:
    """Write `path` whole or not at all (a temporary file renamed over it); OutputError if it cannot be."""
    path = Path(path)
    return replace_together(path.parent, {path.name: content})[0]
