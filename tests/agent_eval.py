"""Fixtures and helpers for the agent tests (a pytest plugin, see conftest.py): the squad sample, and
`memalpha eval` then `leaderboard init` + `init-board` + `add` for one agent, all through the CLI, against a
scripted OpenAI-compatible server that answers both the agent and the reader: the path a user takes to put a
baseline on the board."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmark.cli import main
from benchmark.memory import MemoryRecord, read_memories
from leaderboard.store import ResultsStore
from tasks.build import build_task
from tasks.manifest import load_built

READER_MARK = "You answer a user's questions from the memory"  # the reader's system prompt (v1 profiles)


@pytest.fixture(scope="session")
def squad_data(raw_dir, tmp_path_factory) -> Path:
    """squad built from the real raw sample (two instances per split)."""
    out = tmp_path_factory.mktemp("squad-sample")
    build_task("squad", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=2, show_progress=False)
    return out


@pytest.fixture(scope="session")
def squad_chunks(squad_data) -> dict[str, list[str]]:
    """The validation instances' chunks, by instance id."""
    dataset, _ = load_built(squad_data, "squad")
    return {row["instance_id"]: row["chunks"] for row in dataset["validation"]}


def is_reader(body: dict[str, Any]) -> bool:
    return any(READER_MARK in (m.get("content") or "") for m in body["messages"])


def eval_and_add(
    agent: str, options: dict[str, str], data: Path, server_url: str, tmp_path: Path
) -> tuple[list[MemoryRecord], dict[str, Any], dict[str, Any]]:
    """Run `memalpha eval` on squad's validation split, then put the run on the squad board.
    Returns the memories, the run's config.json and the board's record."""
    run, sub, results = tmp_path / "run", tmp_path / "submission", tmp_path / "results"
    reader = ["--reader", "openai", "--model", "scripted", "--base-url", server_url, "--tokenizer", "simple"]
    reader += ["--cache", str(tmp_path / "reader.sqlite"), "--quiet"]
    agent_opts = [arg for key, value in options.items() for arg in ("--agent-opt", f"{key}={value}")]
    code = main(
        ["eval", "--agent", agent, *agent_opts, "--tasks", "squad", "--data", str(data), "--out", str(run), *reader]
    )
    assert code == 0
    assert main(["leaderboard", "init", str(run), "--out", str(sub)]) == 0
    doc = json.loads((sub / "submission.json").read_text())
    doc.update(
        agent={"name": agent, "version": "test"},
        parameters="tiny",
        link="https://example.org",
        contact="me@example.org",
        license="MIT",
        trained_on=[],
    )
    (sub / "submission.json").write_text(json.dumps(doc))
    pin = ["--reader", "openai", "--model", "scripted", "--tokenizer", "simple"]  # the board's scorer
    assert main(["leaderboard", "init-board", "--task", "squad", "--results", str(results), *pin]) == 0
    assert main(["leaderboard", "add", str(sub), "--data", str(data), "--results", str(results), *reader]) == 0
    (record,) = ResultsStore(results).records()
    config = json.loads((run / "config.json").read_text())
    return read_memories(run / "memories.jsonl"), config, record
