"""`memalpha train step-check`: the shared rollout's rows, one update through verl's FSDP2 engine on CPU.

The command runs in its own process (it selects verl's CPU platform and starts a gloo process group,
which must not leak into the other tests). It trains on every row of the shared rollout: one GRPO
group, whose advantages sum to 0, as a training mini-batch holds whole groups. Expected values are
computed here from the rows alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference_agent.verl_recipe.step_check import load_rows
from tasks.errors import TaskError

REPO = Path(__file__).resolve().parents[1]


def write_rows(rows, path: Path) -> Path:
    """The rows as `memalpha train dry-run` writes them (rows.jsonl)."""
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.__dict__, default=str) + "\n")
    return path


@pytest.fixture(scope="module")
def rows(rollout):
    return rollout.rows


@pytest.fixture(scope="module")
def reports(rows, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("step-check")
    path = write_rows(rows, out / "rows.jsonl")
    command = ["train", "step-check", "--rows", str(path), "--model", str(tiny_model), "--also", "token-mean"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *command, "--json", str(out / "report.json")],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "rows moving the way their advantage says: 9/9" in done.stdout
    return {r["loss_agg_mode"]: r for r in json.loads((out / "report.json").read_text())}


@pytest.mark.timeout(600)  # whichever test comes first sets up the shared rollout and the step check
def test_the_recipes_update_weighs_rows_the_same_and_moves_each_with_its_advantage(rows, reports):
    report = reports["seq-mean-token-mean"]  # the recipe's
    advantages = [r.advantage for r in rows]
    assert report["lr"] == 1e-6  # the recipe's learning rate
    assert report["logprob_gap"] < 1e-3  # verl's packed forward = a plain transformers forward per row
    # first step: ratio 1, KL 0, every row weighs 1/B: the loss is minus the mean row advantage, 0 for a group
    assert report["engine_loss"] == pytest.approx(-sum(advantages) / len(advantages), abs=1e-5)
    assert report["expected_loss"] == pytest.approx(0, abs=1e-5)
    assert report["failures"] == []
    assert [r["moved_with_advantage"] for r in report["rows"]] == [True] * len(advantages)


@pytest.mark.timeout(600)
def test_token_mean_weighs_rows_by_length_and_lowers_good_rows(rows, reports):
    """The issue's finding, on these rows: with `token-mean` a row weighs its length; the long lazy rows
    have negative advantages, the per-token mean advantage is negative and the first loss positive,
    and the update lowers the log-probability of rows whose advantage is positive."""
    report = reports["token-mean"]
    lengths = [len(r.response_ids) for r in rows]
    per_token = sum(r.advantage * n for r, n in zip(rows, lengths, strict=True)) / sum(lengths)
    assert per_token < -0.1 and report["advantage_per_token"] == pytest.approx(per_token)
    assert report["engine_loss"] == pytest.approx(-per_token, abs=1e-5)
    lowered = [r for r in report["rows"] if r["advantage"] > 0 and r["new_logprob"] < r["old_logprob"]]
    assert lowered and report["failures"] == []  # its own objective still rose: the check itself passes


def test_rows_file_errors_name_the_line_and_field(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"key": "u_0_0", "prompt_ids": [1], "response_ids": [], "advantage": 0.5}) + "\n")
    with pytest.raises(TaskError, match=r"rows\.jsonl:1: field response_ids is empty"):
        load_rows(path)
    path.write_text("{}\n")
    with pytest.raises(TaskError, match=r"rows\.jsonl:1: missing field\(s\) key, prompt_ids, response_ids, advantage"):
        load_rows(path)
    with pytest.raises(TaskError, match="no such file"):
        load_rows(tmp_path / "none.jsonl")
