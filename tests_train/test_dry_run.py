"""`memalpha train dry-run` and scripts/dry_run.sh on a task built from the real raw samples."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from benchmark.cli import main
from tasks.build import build_task

REPO = Path(__file__).resolve().parents[1]
# the tiny test tokenizer spends several tokens per word: real chunks need a longer prompt limit
LONG_PROMPTS = ["data.max_prompt_length=16384", "actor_rollout_ref.rollout.max_model_len=18432"]


@pytest.fixture(scope="module")
def built(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    build_task("squad", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=1, show_progress=False)
    return out


@pytest.mark.realdata
def test_dry_run_script_from_the_checkout(built, tiny_model, policy_server, tmp_path):
    server = policy_server()
    env = {
        **os.environ,
        "READER_BASE_URL": server.base_url,
        "READER_MODEL": "scripted",
        "MODEL": str(tiny_model),
        "DATA_DIR": str(built),
        "TOKENIZER": "simple",
        "OUT": str(tmp_path / "dry"),
    }
    done = subprocess.run(
        [str(REPO / "reference_agent/scripts/dry_run.sh"), "--max-chunks", "2", *LONG_PROMPTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every key checked against verl 0.9.1" in done.stdout
    assert "adv_estimator: grpo_vectorized" in (tmp_path / "dry/config.yaml").read_text()
    rows = [json.loads(line) for line in (tmp_path / "dry/rows.jsonl").read_text().splitlines()]
    assert sorted((r["session"], r["step"]) for r in rows) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert "dry run: 4 rows from 2 rollouts" in done.stdout
    assert len(server.completions) == 4 and server.count > 0  # the policy, then the reader and judge


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["actor_rollout_ref.actor.ppo_mini_bach_size=4"], "ppo_mini_bach_size"),
        (["--weights", "beta1_gamma1"], "--weights beta1_gamma1"),
        (["--task", "ruler_qa1_197k"], "not in suite memalpha-train"),
        (["--instance", "squad-nope"], "no instance 'squad-nope'"),
        (["--model", "/no/such/model"], "actor_rollout_ref.model.path=/no/such/model"),
    ],
)
def test_fails_fast_naming_the_problem(built, tiny_model, tmp_path, capsys, extra, named):
    args = [
        "train",
        "dry-run",
        "--data",
        str(built),
        "--model",
        str(tiny_model),
        "--reader-base-url",
        "http://127.0.0.1:9/v1",
        "--tokenizer",
        "simple",
        "--out",
        str(tmp_path),
    ]
    assert main(args + extra) == 2
    assert named in capsys.readouterr().err


def test_missing_data_folder(tmp_path, capsys):
    args = ["train", "dry-run", "--data", str(tmp_path / "none"), "--reader-base-url", "http://x/v1"]
    assert main(args) == 2
    assert f"--data {tmp_path / 'none'}: no such folder" in capsys.readouterr().err
