"""What the recipe relies on inside verl 0.9.1, each pinned by a test that fails if verl changes:

1. the pins: verl, tensordict and TransferQueue at the versions in requirements-train.txt;
2. V1 turns a list of agent-loop outputs into one row per element, keyed `{uid}_{session}_{index}`,
   all sharing the prompt's uid;
3. V1 broadcasts the rollout's reward to every row *before* calling `as_dict`, so each row ends with
   r1 + β·r3 + its own r2 + γ·r4 (`MemAlphaStepOutput`);
4. `grpo_vectorized` normalises every row within the uid group (Mem-α), while plain `grpo` in V1
   scores each session's last row and copies it to the others (MemAgent);
5. validation reports `acc` (= r1) as the core metric and skips the `step_rewards` string.

(2), (3) and the advantage through the trainer's own `_compute_advantage` run end to end on a local
Ray cluster with verl's workers; (4) and (5) also directly on verl's functions.
"""

from __future__ import annotations

import json
import statistics
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import FACTS, PolicyServer, careful_then_sloppy, instance_row, memory_reader
from verl import DataProto
from verl.trainer.ppo.v1.trainer_base import PPOTrainer
from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

from reference_agent.training_data import training_row, write_parquet
from reference_agent.verl_recipe.compose import RECIPE_CONFIG_DIR, compose_recipe
from reference_agent.verl_recipe.local_rollout import rollout_batch
from reference_agent.verl_recipe.openai_policy import OpenAICompletionsPolicy

REQUIREMENTS = Path(__file__).resolve().parents[1] / "reference_agent" / "requirements-train.txt"


def test_pins_match_the_environment():
    pins = dict(line.split("==") for line in REQUIREMENTS.read_text().splitlines() if "==" in line)
    for name in ("verl", "tensordict", "TransferQueue", "transformers", "ray[default]"):
        assert version(name.split("[")[0]) == pins[name], name
    assert pins["verl"] == "0.9.1"


def grpo(scores: list[float]) -> list[float]:
    """Mem-α's advantage: (R − mean) / (unbiased std + 1e-6) over the group."""
    mean, std = statistics.fmean(scores), statistics.stdev(scores)
    return [(s - mean) / (std + 1e-6) for s in scores]


def rows_of(scores: dict[str, float]) -> DataProto:
    """One row per key, a 3-token response, the reward on its last token (as V1 stores them)."""
    n = len(scores)
    rm = torch.zeros(n, 3)
    rm[:, -1] = torch.tensor(list(scores.values()))
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rm, "response_mask": torch.ones(n, 3, dtype=torch.int64)},
        non_tensors={"uid": np.array([k.split("_")[0] for k in scores], dtype=object)},
    )
    return data


@pytest.mark.parametrize("estimator", ["grpo_vectorized", "grpo"])
def test_advantage_semantics(estimator):
    scores = {"u_0_0": 2.035, "u_0_1": 2.035, "u_1_0": 0.044, "u_1_1": 1.044}  # two sessions, two steps
    data = compute_advantage_for_multi_trajectories(rows_of(scores), list(scores), estimator, num_repeat=2)
    got = data.batch["advantages"][:, 0].tolist()
    if estimator == "grpo_vectorized":  # per row, over all rows of the uid
        assert got == pytest.approx(grpo(list(scores.values())), abs=1e-5)
    else:  # each session's last row, copied to the session: the per-step difference is lost
        assert got == pytest.approx([0.7071, 0.7071, -0.7071, -0.7071], abs=1e-4)


def test_validation_reports_acc_and_skips_the_step_string():
    infos = {
        "reward": [1.8, 1.4],
        "acc": [0.75, 0.5],
        "r1": [0.75, 0.5],
        "step_rewards": [json.dumps([1.1]), json.dumps([0.7])],
    }
    metrics = PPOTrainer._val_metrics_update(SimpleNamespace(), ["squad", "squad"], ["u", "u"], infos, [2, 2])
    assert metrics["val-core/squad/acc/mean@2"] == pytest.approx(0.625)
    assert not any("step_rewards" in k for k in metrics)


@pytest.fixture(scope="module")
def rollout(tmp_path_factory, tiny_model):
    """One instance, two rollouts, through verl's workers on a local Ray cluster."""
    out = tmp_path_factory.mktemp("rollout")
    write_parquet([training_row(instance_row(), "train", 0, "sha")], out / "train.parquet")
    server = PolicyServer(lambda body: memory_reader(body["messages"]), careful_then_sloppy).start()
    try:
        cfg = compose_recipe(
            [
                f"data.train_files={out}/train.parquet",
                f"data.val_files={out}/train.parquet",
                "data.train_batch_size=1",
                "data.dataloader_num_workers=0",
                "actor_rollout_ref.rollout.n=2",
                f"actor_rollout_ref.model.path={tiny_model}",
                f"actor_rollout_ref.rollout.agent.agent_loop_config_path={RECIPE_CONFIG_DIR}/agent_loop.yaml",
                "actor_rollout_ref.rollout.agent.num_workers=1",
                "reward.num_workers=1",
                f"memalpha.reader.base_url={server.base_url}",
                "memalpha.reader.model=scripted",
                "memalpha.tokenizer=simple",
                "memalpha.cache=null",
                "memalpha.batch.window_s=0.5",
            ],
            check=False,
        )
        policy = OpenAICompletionsPolicy(server.base_url, "scripted", str(tiny_model), max_tokens=2048)
        yield rollout_batch(cfg, policy)
    finally:
        server.stop()


def test_one_row_per_chunk_step_sharing_the_uid(rollout):
    assert len(rollout) == 2 * 3
    uids = {row.key.rsplit("_", 2)[0] for row in rollout}
    assert len(uids) == 1 and "_" not in uids.pop()
    assert sorted((row.session, row.step) for row in rollout) == [(s, t) for s in range(2) for t in range(3)]
    for row in rollout:
        assert row.response_mask_sum == row.response_tokens > 0  # model tokens only, all trained on
        assert ("final_memory" in row.extra_fields) == (row.step == 2)


def test_per_step_rewards_survive_the_worker(rollout):
    """Hand-computed (simple counter): input 13 + 12 + 13 = 38 tokens; r1 = 3/4 for both rollouts.
    careful: memory 20 tokens, every step r2 = 1, r4 = 1; sloppy: a placeholder episodic entry too
    (21 tokens), and at step 0 three calls (ok, ok, bad delete): r2 = 2/3, r4 = (1 + 0 + 0)/3."""
    sloppy = {r.session for r in rollout if len(r.extra_fields["calls"]) == 3}
    assert len(sloppy) == 1
    shared = {s: 0.75 + 0.05 * (1 - (21 if s in sloppy else 20) / 38) for s in range(2)}
    steps = {s: [2 / 3 + 0.1 / 3, 1.1, 1.1] if s in sloppy else [1.1, 1.1, 1.1] for s in range(2)}
    for row in rollout:
        step_term = steps[row.session][row.step]
        assert row.score == pytest.approx(shared[row.session] + step_term, abs=1e-5), row.key
        info = row.extra_fields["reward_extra_info"]  # the rollout's, broadcast to every row
        assert info["acc"] == info["r1"] == 0.75
        assert json.loads(info["step_rewards"]) == pytest.approx(steps[row.session], abs=1e-9)
    stored = [row.extra_fields["final_memory"]["semantic"] for row in rollout if row.step == 2]
    assert all([e["content"] for e in entries] == list(FACTS) for entries in stored)


def test_advantage_is_per_row_through_the_trainers_code(rollout):
    scores = [row.score for row in rollout]
    assert [row.advantage for row in rollout] == pytest.approx(grpo(scores), abs=1e-4)
    step0 = {row.session: row.advantage for row in rollout if row.step == 0}
    later = {row.session: row.advantage for row in rollout if row.step == 1}
    sloppy = next(r.session for r in rollout if len(r.extra_fields["calls"]) == 3)
    assert step0[sloppy] < later[sloppy]  # the sloppy step is penalised on its own row
