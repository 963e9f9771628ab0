"""What the recipe relies on inside verl 0.9.1, each pinned by a test that fails if verl changes:

1. the pins: verl, tensordict and TransferQueue at the versions in requirements-train.txt;
2. V1 turns a list of agent-loop outputs into one row per element, keyed `{uid}_{session}_{index}`,
   all sharing the prompt's uid;
3. V1 broadcasts the rollout's reward to every row *before* calling `as_dict`, so each row ends with
   r1 + β·r3 + its own r2 + γ·r4 (`MemAlphaStepOutput`);
4. `grpo_vectorized` normalises every row within the uid group (Mem-α), while plain `grpo` in V1
   scores each session's last row and copies it to the others (MemAgent);
5. validation reports `acc` (= r1) as the core metric and skips the `step_rewards` string;
6. reward workers chosen at random per rollout still send each distinct reader prompt once (the
   reader service), and each training step's reward terms come out as metrics.

(2), (3), (6) and the advantage through the trainer's own `_compute_advantage` run end to end on a
local Ray cluster with verl's workers (the shared `rollout` fixture); (4) and (5) also directly on
verl's functions.
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
from conftest import FACTS
from verl import DataProto
from verl.trainer.ppo.v1.trainer_base import PPOTrainer
from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

from reference_agent.verl_recipe.trainer import reward_metrics

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


def careful_session(rollout) -> int:
    (session,) = {r.session for r in rollout.rows if r.step == 0 and len(r.extra_fields["calls"]) == 1}
    return session


def test_one_row_per_chunk_step_sharing_the_uid(rollout):
    rows = rollout.rows
    assert len(rows) == 3 * 3
    uids = {row.key.rsplit("_", 2)[0] for row in rows}
    assert len(uids) == 1 and "_" not in uids.pop()
    assert sorted((row.session, row.step) for row in rows) == [(s, t) for s in range(3) for t in range(3)]
    for row in rows:
        assert row.response_mask_sum == row.response_tokens == len(row.response_ids) > 0  # all trained on
        assert row.prompt_tokens == len(row.prompt_ids)
        assert ("final_memory" in row.extra_fields) == (row.step == 2)


# Hand-computed (simple counter): input 13 + 12 + 13 = 38 tokens. The careful rollout stores the three
# facts (memory 20 tokens, r1 = 3/4), every step one executed, valid insert: r2 = r4 = 1. A lazy rollout
# keeps only "placeholder" (1 token, r1 = 0); step 0: insert ok, delete fails (r2 = 1/2), the judge
# rejects the placeholder and a delete scores 0 (r4 = 0); later steps: the insert is a skipped
# duplicate, the delete fails (r2 = 0, r4 = 0).
CAREFUL = {"shared": 0.75 + 0.05 * (1 - 20 / 38), "steps": [1.1, 1.1, 1.1]}
LAZY = {"shared": 0.05 * (1 - 1 / 38), "steps": [0.5, 0.0, 0.0]}


def test_per_step_rewards_survive_the_worker(rollout):
    careful = careful_session(rollout)
    for row in rollout.rows:
        expected = CAREFUL if row.session == careful else LAZY
        assert row.score == pytest.approx(expected["shared"] + expected["steps"][row.step], abs=1e-5), row.key
        info = row.extra_fields["reward_extra_info"]  # the rollout's, broadcast to every row
        assert info["acc"] == info["r1"] == (0.75 if row.session == careful else 0.0)
        assert json.loads(info["step_rewards"]) == pytest.approx(expected["steps"], abs=1e-9)
    stored = {r.session: r.extra_fields["final_memory"]["semantic"] for r in rollout.rows if r.step == 2}
    assert [e["content"] for e in stored.pop(careful)] == list(FACTS)
    assert all(entries == [] for entries in stored.values())


def test_advantage_is_per_row_through_the_trainers_code(rollout):
    rows = rollout.rows
    scores = [row.score for row in rows]
    assert [row.advantage for row in rows] == pytest.approx(grpo(scores), abs=1e-4)
    lazy = {(r.session, r.step): r.advantage for r in rows if r.session != careful_session(rollout)}
    for session in {s for s, _ in lazy}:  # step 0 (one of two calls executed) beats the steps with none
        assert lazy[session, 0] > lazy[session, 1] == pytest.approx(lazy[session, 2])


def test_each_distinct_reader_request_is_answered_once(rollout):
    """Two lazy rollouts end with equal memories and ask the reader and the judge the same prompts,
    from two reward workers; the job's reader service sends each distinct prompt once."""
    chat = [json.dumps(body["messages"], sort_keys=True) for body in rollout.server.requests]
    assert len(chat) == len(set(chat))
    # 4 questions for the careful memory, 4 for the lazy one; the judge: 3 facts and the placeholder
    assert len(chat) == 4 + 4 + 3 + 1
    assert rollout.cache.is_file()


def test_training_metrics_of_a_step(rollout):
    rows = rollout.rows
    metrics = reward_metrics([r.key for r in rows], [r.extra_fields for r in rows])
    expected = {  # means over the 3 rollouts (CAREFUL and two LAZY ones), by hand
        "r1": 0.75 / 3,
        "r3": ((1 - 20 / 38) + 2 * (1 - 1 / 38)) / 3,
        "r2": (1.0 + 2 * (0.5 / 3)) / 3,
        "r4": 1.0 / 3,
        "memory_tokens": (20 + 2 * 1) / 3,
        "r1_failed": 0.0,
        "r4_failed": 0.0,
    }
    assert metrics == pytest.approx({f"memalpha/{k}/mean": v for k, v in expected.items()} | {"memalpha/rollouts": 3})
