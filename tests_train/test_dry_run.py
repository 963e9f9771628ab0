"""`memalpha train dry-run` and scripts/dry_run.sh on a task built from the real raw samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from servers import run_in_session

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
@pytest.mark.timeout(300)  # a local Ray cluster on a loaded 2-core machine
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
    done, left = run_in_session(
        [str(REPO / "reference_agent/scripts/dry_run.sh"), "--max-chunks", "2", *LONG_PROMPTS], env=env
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not left, f"the dry run left processes behind: {left}"  # its Ray cluster included
    out = done.stdout
    # the summary table comes first; the full config goes to a file
    assert out.index("instance ") < out.index("every key checked against verl 0.9.1") < out.index("rollout 0 of")
    assert "chunks, questions        2 of " in out and ", 10 of " in out  # --max-chunks 2, the default 10 questions
    assert "adv_estimator: grpo_vectorized" in (tmp_path / "dry/config.yaml").read_text()
    assert len(out.splitlines()) < 120
    for session in (0, 1):  # a progress line per rollout step
        for chunk in (1, 2):
            assert f"rollout {session} of squad-" in out and f": chunk {chunk}/2, " in out
    rows = [json.loads(line) for line in (tmp_path / "dry/rows.jsonl").read_text().splitlines()]
    assert sorted((r["session"], r["step"]) for r in rows) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(len(r["prompt_ids"]) == r["prompt_tokens"] and r["response_ids"] for r in rows)
    assert "dry run: 4 rows from 2 rollouts" in out and "training would log: memalpha/r1/mean" in out
    # short generation caps by default: the policy, the reader's answers, the judge's verdicts
    assert [body["max_tokens"] for body in server.completions] == [256] * 4
    caps = {body["max_tokens"] for body in server.requests}
    assert caps <= {64, 128} and 64 in caps


@pytest.mark.realdata
@pytest.mark.timeout(300)
def test_gpu_smoke_script_composes_its_one_gpu_run_and_checks_what_it_printed(built, tiny_model, tmp_path):
    """On CPU only its first half can run: the data, the pre-flight check and verl's own entry point
    with `--cfg job` (which prints the job's config and exits); the check of the log must then fail."""
    env = {
        **os.environ,
        "TASKS_DIR": str(built),
        "READER_BASE_URL": "http://127.0.0.1:9/v1",  # given: no reader is started
        "MODEL": str(tiny_model),
        "TOKENIZER": "simple",
        "TRAIN_PYTHON": sys.executable,
        "OUT": str(tmp_path / "smoke"),
    }
    done = subprocess.run(
        [str(REPO / "reference_agent/scripts/gpu_smoke.sh"), "--cfg", "job"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "gpu_smoke: no metrics line for step:1" in done.stderr and "gpu_smoke: OK" not in done.stdout
    job = OmegaConf.create(done.stdout[done.stdout.index("actor_rollout_ref:") :])
    assert (job.trainer.nnodes, job.trainer.n_gpus_per_node, job.trainer.total_training_steps) == (1, 1, 2)
    assert (job.data.train_batch_size, job.actor_rollout_ref.rollout.n, job.actor_rollout_ref.rollout.name) == (
        2,
        2,
        "vllm",
    )
    assert job.data.train_files == str(tmp_path / "smoke/data/train.parquet")
    assert (tmp_path / "smoke/data/train.parquet").is_file()
    assert job.memalpha.cache == str(tmp_path / "smoke/reward_cache.sqlite")
    assert (tmp_path / "smoke/train.log").read_text().count("trainer_mode: sync") == 1


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
