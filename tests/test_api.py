"""The Python API (`benchmark.api`): the example script end to end, and the journey's checks from Python."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import api

pytestmark = pytest.mark.realdata
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "api" / "evaluate.py"


def test_the_example_imports_only_the_public_api():
    tree = ast.parse(EXAMPLE.read_text())
    ours = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            ours |= {f"{node.module}.{a.name}" for a in node.names if node.module.split(".")[0] in _PACKAGES}
        elif isinstance(node, ast.Import):
            ours |= {a.name for a in node.names if a.name.split(".")[0] in _PACKAGES}
    assert ours == {"benchmark.api"}


_PACKAGES = {"benchmark", "tasks", "reference_agent", "leaderboard"}


def test_the_example_runs_the_whole_job_and_resumes(raw_dir, tmp_path, scripted_server):
    server = scripted_server(lambda request: "an answer")
    command = [sys.executable, str(EXAMPLE), "--raw-dir", str(raw_dir), "--model", "scripted"]
    command += ["--base-url", server.base_url, "--limit-questions", "2"]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "memories: 3 written, 0 kept from before, 0 failed" in first.stdout
    printed = json.loads(first.stdout.strip().splitlines()[-1])
    assert set(printed["tasks"]) == {"squad", "icl_trec_coarse"}
    scores = json.loads((tmp_path / "runs" / "api-example" / "scores.json").read_text())
    assert printed["overall"] == scores["overall"] == 0.0  # "an answer" holds no gold and no label
    assert scores["run"]["agent"] == {"name": "headlines", "options": {"keep": 2}}
    assert scores["tasks"]["squad"]["questions"] == 4  # two instances, two questions each
    asked = server.count
    assert asked == 6

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "memories: 0 written, 3 kept from before, 0 failed" in again.stdout
    assert server.count == asked and server.probes == 2  # nothing asked again but the probe


def test_evaluate_by_name_with_options(raw_dir, tmp_path, scripted_server):
    api.build(["squad"], tmp_path / "data", origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=1)
    server = scripted_server(lambda request: "an answer")
    reader = api.make_reader("openai", "scripted", base_url=server.base_url)
    done = api.evaluate(
        "long-context",
        tmp_path / "run",
        reader=reader,
        tasks=["squad"],
        data=tmp_path / "data",
        options={"tokens": "500"},
        tokenizer="simple",
        limit_questions=1,
        show_progress=False,
    )
    assert (done.run.written, done.run.failed) == (1, {})
    assert done.score.scores["run"]["agent"]["options"] == {"tokenizer": "simple", "tokens": 500}
    assert done.score.scores["tasks"]["squad"]["questions"] == 1

    class Empty(api.Agent):
        def new_session(self, instance: api.InstanceInfo) -> api.Session:
            raise AssertionError("never opened: the options are refused first")

    with pytest.raises(api.UsageError, match="options go to the agent's constructor"):
        api.run(
            Empty(),
            tmp_path / "other",
            tasks=["squad"],
            data=tmp_path / "data",
            options={"a": "b"},
        )
    with pytest.raises(api.MemalphaError, match="not built in"):
        api.run("chunk-store", tmp_path / "other", tasks=["locomo"], data=tmp_path / "data")


def test_numeric_arguments_are_checked_as_the_options_are(raw_dir, tmp_path, scripted_server):
    """The API's counts get the command line's rule, a UsageError naming them, before any work (concurrency=0
    was a ValueError from the thread pool; top_k=-5 scored and was recorded)."""
    api.build(["squad"], tmp_path / "data", origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=1)
    server = scripted_server(lambda request: "an answer")
    reader = api.make_reader("openai", "scripted", base_url=server.base_url)
    common = {"tasks": ["squad"], "data": tmp_path / "data", "tokenizer": "simple", "show_progress": False}
    for bad, message in [
        ({"concurrency": 0}, "concurrency must be at least 1, got 0"),
        ({"limit": -1}, "limit must be at least 1, got -1"),
        ({"limit": 1.5}, "limit must be a whole number, got 1.5"),
    ]:
        with pytest.raises(api.UsageError, match=message):
            api.run("chunk-store", tmp_path / "run", **common, **bad)
        assert not (tmp_path / "run").exists()
    for bad, message in [
        ({"limit_questions": 0}, "limit_questions must be at least 1, got 0"),
        ({"window": 0}, "window must be at least 1, got 0"),
        ({"config": lambda: api.ScorerConfig(top_k=-5)}, "top_k must be at least 1, got -5"),
        ({"config": lambda: api.ScorerConfig(budget_tokens=0)}, "budget_tokens must be at least 1, got 0"),
    ]:
        with pytest.raises(api.UsageError, match=message):
            made = {key: value() if callable(value) else value for key, value in bad.items()}
            api.evaluate("chunk-store", tmp_path / "run", reader=reader, **common, **made)
    assert server.count == 0 and not (tmp_path / "run" / "memories.jsonl").exists()
