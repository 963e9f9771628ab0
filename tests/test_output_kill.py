"""A real `memalpha score` subprocess SIGKILLed at every step of writing its outputs: the run folder holds the
old outputs or a leading part of the new ones, never a mix, scores.json only beside the predictions and
report written with it; the next score completes the set and sweeps the killed one's temporary files."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_scoring_e2e import score_args

from benchmark.cli import main
from benchmark.memory import Memory, MemoryEntry, MemoryRecord, write_memories
from benchmark.scoring import PREDICTIONS, REPORT, SCORES
from tasks.atomic import TEMP_PREFIX
from tasks.manifest import load_built

pytestmark = pytest.mark.realdata

OUTPUTS = (PREDICTIONS, REPORT, SCORES)  # the order they are renamed into place, the seal last
HERE = Path(__file__).parent
# where a kill can land, as tests/pausing_cli.py names the step it pauses before
STEPS = [
    f"fsync:{PREDICTIONS}",  # the new predictions written to a temporary file, not yet synced
    f"fsync:{SCORES}",  # every temporary written but the last
    f"unlink:{SCORES}",  # about to remove the old seal
    f"unlink:{REPORT}",  # old seal gone, old report about to go
    f"replace:{PREDICTIONS}",  # only the old predictions left
    f"replace:{REPORT}",  # the new predictions in place
    f"replace:{SCORES}",  # new predictions and report in place, the seal not yet
]


def chunk_store_run(data: Path, tmp_path: Path) -> Path:
    """A run folder with one squad instance's memory: every chunk a semantic entry."""
    row = load_built(data, "squad")[0]["validation"][0]
    run = tmp_path / "run"
    run.mkdir()
    entries = tuple(MemoryEntry(f"s{i}", chunk) for i, chunk in enumerate(row["chunks"]))
    write_memories(run / "memories.jsonl", [MemoryRecord(row["instance_id"], "squad", Memory("", entries, ()))])
    return run


def snapshot(run: Path) -> dict[str, bytes]:
    """The outputs present, report.md without its Timings section (seconds and peak memory differ per run)."""
    files = {name: (run / name).read_bytes() for name in OUTPUTS if (run / name).exists()}
    if REPORT in files:
        files[REPORT] = re.sub(rb"## Timings\n.*?(?=## )", b"", files[REPORT], count=1, flags=re.DOTALL)
    return files


def killed_at(step: str, run: Path, command: list[str], marker: Path) -> None:
    """Run `memalpha` until it pauses before `step`, then SIGKILL it."""
    marker.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, str(HERE / "pausing_cli.py"), str(run), step, str(marker), "--", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if process.poll() is not None:
                raise AssertionError(f"memalpha ended ({process.returncode}) before {step}: {process.stderr.read()}")
            assert time.monotonic() < deadline, f"memalpha never reached {step}"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait(timeout=60)
        process.stderr.close()


def test_a_kill_at_any_step_of_the_write_never_leaves_a_mix(squad_data, scripted_server, tmp_path):
    run, cache, marker = chunk_store_run(squad_data, tmp_path), tmp_path / "responses.sqlite", tmp_path / "paused"
    server = scripted_server(lambda request: "I do not know.")

    def score(top_k: int) -> list[str]:
        again = ["--force"] if top_k == 2 else []  # the new outputs replace scores made with other settings
        options = ["--cache", str(cache), "--top-k", str(top_k), *again]
        return score_args(run, squad_data, server.base_url, "scripted", *options)

    first = subprocess.run([sys.executable, "-m", "benchmark.cli", *score(1)], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    old = snapshot(run)
    states = []
    for step in STEPS:  # the new outputs differ: two entries retrieved per question instead of one
        killed_at(step, run, score(2), marker)
        states.append((step, snapshot(run), sorted(p.name for p in run.glob(f"{TEMP_PREFIX}*"))))
    last = subprocess.run([sys.executable, "-m", "benchmark.cli", *score(2)], capture_output=True, text=True)
    assert last.returncode == 0, last.stderr
    new = snapshot(run)
    assert set(new) == set(OUTPUTS) and new[PREDICTIONS] != old[PREDICTIONS] and new[SCORES] != old[SCORES]
    assert not list(run.glob(f"{TEMP_PREFIX}*"))  # the killed runs' temporary files are swept

    for step, files, temps in states:
        present = tuple(name for name in OUTPUTS if name in files)
        assert present == OUTPUTS[: len(present)], (step, present)  # a leading part of the set
        generations = {"old" if files[n] == old[n] else "new" if files[n] == new[n] else "neither" for n in present}
        assert len(generations) == 1 and "neither" not in generations, (step, generations)
        assert temps, step  # each kill left its temporary files (swept by the next run)
    expected = [
        (OUTPUTS, "old"),
        (OUTPUTS, "old"),
        (OUTPUTS, "old"),
        (OUTPUTS[:2], "old"),
        (OUTPUTS[:1], "old"),
        (OUTPUTS[:1], "new"),
        (OUTPUTS[:2], "new"),
    ]
    seen = [
        (tuple(n for n in OUTPUTS if n in files), "old" if files[PREDICTIONS] == old[PREDICTIONS] else "new")
        for _, files, _ in states
    ]
    assert seen == expected


def test_a_full_disk_while_writing_keeps_the_old_outputs(squad_data, scripted_server, tmp_path, monkeypatch, capsys):
    """The disk fills while the new predictions are written (ENOSPC at their fsync, where a full disk shows on
    file systems that allocate late): `score` says so naming the file, and the old set stays whole."""
    run = chunk_store_run(squad_data, tmp_path)
    server = scripted_server(lambda request: "I do not know.")
    assert main(score_args(run, squad_data, server.base_url, "scripted", "--top-k", "1")) == 0
    old = snapshot(run)
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).parent == run:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    capsys.readouterr()
    assert main(score_args(run, squad_data, server.base_url, "scripted", "--top-k", "2", "--force")) == 1
    err = capsys.readouterr().err
    assert f"{run / PREDICTIONS}: cannot write (No space left on device); older files are unchanged" in err
    assert snapshot(run) == old and not list(run.glob(f"{TEMP_PREFIX}*"))
