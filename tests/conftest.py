"""Shared fixtures: the real raw samples (skipped only when $MEMALPHA_RAW_DIR is unset), offline hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["servers", "agent_eval"]  # tests/servers.py: tiny model, `transformers serve`, scripted server

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

pytest_plugins.append("qwen_bpe")  # `qwen_bpe`: the real Qwen-vocabulary BPE counter (tests/qwen_bpe.py)


@pytest.fixture(scope="session")
def raw_dir() -> Path:
    """The folder of real raw samples (`../shared/data/raw` in CI)."""
    value = os.environ.get("MEMALPHA_RAW_DIR")
    if not value:
        pytest.skip("MEMALPHA_RAW_DIR is not set")
    path = Path(value).resolve()  # tests link raw files from temporary folders
    assert path.is_dir(), f"MEMALPHA_RAW_DIR={value} is not a folder"
    return path


@pytest.fixture(scope="session")
def built_dir(tmp_path_factory) -> Path:
    """A session-wide output folder for tasks built once and read by several tests."""
    return tmp_path_factory.mktemp("built")


@pytest.fixture(scope="session")
def fidelity_file(raw_dir) -> Path:
    """What the original scorers returned on real pairs (`../shared/fidelity/original_scorers.jsonl`, beside
    the raw samples' folder; `$MEMALPHA_FIDELITY` names another copy)."""
    path = Path(os.environ.get("MEMALPHA_FIDELITY") or raw_dir.parent.parent / "fidelity" / "original_scorers.jsonl")
    assert path.is_file(), f"no fidelity vectors at {path} (set MEMALPHA_FIDELITY)"
    return path


@pytest.fixture(autouse=True)
def _tqdm_lock_of_this_process(monkeypatch):
    """tqdm's default lock is a semaphore shared by every process forked after it was made (the mutation
    tool forks a worker per mutant): one that dies holding it would stall every later one."""
    import threading

    from tqdm import std
    from tqdm.auto import tqdm

    for cls in {std.tqdm, tqdm}:
        monkeypatch.setattr(cls, "_lock", threading.RLock(), raising=False)
