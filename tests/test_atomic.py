"""tasks.atomic: outputs are replaced whole or not at all, a set is never a mix of two generations, and no
temporary file outlives an exception, a full disk, SIGTERM or (swept next time) SIGKILL."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tasks.atomic import TEMP_PREFIX, OutputError, replace_file, replace_together, sweep

SET = ("predictions.jsonl", "report.md", "scores.json")


def temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{TEMP_PREFIX}*"))


def old_set(folder: Path) -> dict[str, str]:
    files = {name: f"old {name}\n" for name in SET}
    for name, text in files.items():
        (folder / name).write_text(text)
    return files


def test_a_file_is_replaced_whole_with_a_plain_files_mode(tmp_path):
    path = tmp_path / "scores.json"
    path.write_text("old")
    replace_file(path, ["one\n", "two\n"])
    assert path.read_text() == "one\ntwo\n" and temps(tmp_path) == []
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not mkstemp's private 0600


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text("old\n")

    def lines():
        yield "new 1\n"
        raise RuntimeError("the scorer broke half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        replace_file(path, lines())
    assert path.read_text() == "old\n" and temps(tmp_path) == []


def test_a_full_disk_is_an_output_error_and_changes_nothing(tmp_path, monkeypatch):
    old = old_set(tmp_path)
    real_fsync = os.fsync
    calls = []

    def full(fd):
        calls.append(fd)
        if len(calls) == 2:  # the second file of the set: the first is already written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match=r"report\.md: cannot write \(No space left on device\); older files are"):
        replace_together(tmp_path, {name: f"new {name}\n" for name in SET})
    assert {name: (tmp_path / name).read_text() for name in SET} == old and temps(tmp_path) == []


def test_a_set_is_a_leading_part_of_one_generation_at_every_step(tmp_path, monkeypatch):
    """Every file-system step of replacing a set is watched: the files present are always a prefix of the
    set, all old or all new, and the seal (the last) is there only with the whole set."""
    old = old_set(tmp_path)
    new = {name: f"new {name}\n" for name in SET}
    states = []

    def state() -> None:
        present = [name for name in SET if (tmp_path / name).exists()]
        generations = {("old" if (tmp_path / n).read_text() == old[n] else "new") for n in present}
        states.append((tuple(present), generations))

    for name in ("replace", "unlink"):
        real = getattr(os, name)

        def watched(*args, _real=real, **kwargs):
            state()
            result = _real(*args, **kwargs)
            state()
            return result

        monkeypatch.setattr(os, name, watched)
    replace_together(tmp_path, new)
    assert {name: (tmp_path / name).read_text() for name in SET} == new
    for present, generations in states:
        assert present == SET[: len(present)] and len(generations) <= 1, states
    seen = {(present, tuple(g)) for present, g in states}
    assert {(SET, ("old",)), (SET[:1], ("old",)), (SET[:1], ("new",)), (SET[:2], ("new",)), (SET, ("new",))} <= seen


def test_leftovers_of_a_dead_process_are_swept_those_of_a_live_one_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / f"{TEMP_PREFIX}{int(dead.stdout)}-abc-scores.json"
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-def-scores.json"
    other = tmp_path / f"{TEMP_PREFIX}notapid-scores.json"
    for path in (gone, mine, other):
        path.write_text("partial")
    assert sweep(tmp_path) == [gone]
    replace_file(tmp_path / "scores.json", "{}\n")  # every write sweeps its folder first
    assert temps(tmp_path) == sorted([mine, other])


SIGNALLED = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tasks.atomic import replace_file

    folder = Path(sys.argv[1])

    def lines():
        yield "first line\\n"
        (folder / "ready").write_text("writing")
        time.sleep(600)  # killed here, in the middle of the write
        yield "never\\n"

    replace_file(folder / "scores.json", lines())
    """
)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 129)])
def test_sigterm_while_writing_removes_the_temporary_and_keeps_the_old_file(tmp_path, signum, status):
    (tmp_path / "scores.json").write_text("old\n")
    process = subprocess.Popen([sys.executable, "-c", SIGNALLED, str(tmp_path)])
    try:
        wait_for(tmp_path / "ready", process)
        assert len(temps(tmp_path)) == 1  # the partial new file
        process.send_signal(signum)
        assert process.wait(timeout=60) == status
    finally:
        process.kill()
    assert (tmp_path / "scores.json").read_text() == "old\n" and temps(tmp_path) == []


def test_sigkill_leftover_is_swept_by_the_next_write(tmp_path):
    (tmp_path / "scores.json").write_text("old\n")
    process = subprocess.Popen([sys.executable, "-c", SIGNALLED, str(tmp_path)])
    try:
        wait_for(tmp_path / "ready", process)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert len(temps(tmp_path)) == 1 and (tmp_path / "scores.json").read_text() == "old\n"
    replace_file(tmp_path / "report.md", "new\n")
    assert temps(tmp_path) == []


def wait_for(marker: Path, process: subprocess.Popen, limit_s: float = 120) -> None:
    """Until the child wrote `marker` (it pauses right after), or fail if it ended first."""
    import time

    deadline = time.monotonic() + limit_s
    while not marker.exists():
        assert process.poll() is None, "the child ended before its pause"
        assert time.monotonic() < deadline, "the child never reached its pause"
        time.sleep(0.05)


def test_signals_are_held_while_a_set_is_renamed(tmp_path, monkeypatch):
    """A SIGTERM that arrives between the renames is delivered after the last one: the set is complete."""
    old_set(tmp_path)
    real_replace = os.replace
    sent = []

    def replace_and_signal(src, dst):
        if not sent:
            sent.append(dst)
            os.kill(os.getpid(), signal.SIGTERM)  # blocked now; pending until the renames are done
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_and_signal)
    with pytest.raises(SystemExit) as caught:
        replace_together(tmp_path, {name: f"new {name}\n" for name in SET})
    assert caught.value.code == 128 + signal.SIGTERM
    assert all((tmp_path / name).read_text() == f"new {name}\n" for name in SET) and temps(tmp_path) == []
