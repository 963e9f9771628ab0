"""The reward manager verl's reward workers load (`reward.reward_manager.source=importlib`).

V1 calls `run_single` once per rollout with all of its rows: every dataset column repeated per row,
and `tool_extra_fields`, each row's `extra_fields` from the agent loop (its step's tool calls; the
last row also the final memory). It returns r1 + β·r3 as the rollout's score, which V1 copies to
every row, and in `reward_extra_info`:

- `acc` = r1, Mem-α's validation number: V1 reports it as `val-core/<task>/acc/mean@n`;
- r1, r3, the means of r2 and r4, token counts and failure flags, for logs;
- `step_rewards`, the per-step terms r2 + γ·r4 as a JSON string, which each row's
  `MemAlphaStepOutput.as_dict` adds to its own last token (validation metrics skip strings).

Rollouts that reach a worker together are scored in one batch (`batching.RolloutBatcher`); the reader
and judge requests of every worker go to the job's one reader service (`reader_service`), which
caches them and answers each distinct request once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from benchmark.memory import parse_record
from tasks.errors import TaskError

from ..rewards import CallRecord, Rollout, RolloutReward
from .batching import RolloutBatcher
from .reader_service import worker_readers
from .settings import check_estimator, settings_of


def rollout_from_rows(columns: Mapping[str, Any]) -> Rollout:
    """A `Rollout` from the non-tensor columns V1 passes for one session's rows."""
    fields: Sequence[Mapping[str, Any]] = sorted(columns["tool_extra_fields"], key=lambda f: f["step"])
    steps = [f["step"] for f in fields]
    if steps != list(range(len(fields))):
        raise TaskError(f"the rows of a rollout must be its steps 0..{len(fields) - 1}, got {steps}")
    info = columns["extra_info"][0]
    record, problems = parse_record(
        {"instance_id": info["instance_id"], "task": info["task"], "memory": fields[-1]["final_memory"]}
    )
    if record is None:
        raise TaskError(f"{info['task']}/{info['instance_id']}: the final memory is malformed: {problems}")
    return Rollout(
        task=record.task,
        instance_id=record.instance_id,
        questions=json.loads(str(columns["questions"][0])),
        chunks=json.loads(str(columns["chunks"][0])),
        memory=record.memory,
        steps=[[CallRecord.from_json(c) for c in f["calls"]] for f in fields],
    )


def reward_result(reward: RolloutReward) -> dict[str, Any]:
    """What `run_single` returns for one rollout."""
    return {"reward_score": reward.trajectory, "reward_extra_info": {"acc": reward.r1, **reward.info()}}


class MemAlphaRewardManager(RewardManagerBase):
    """Mem-α's reward for whole rollouts; batched per worker."""

    def __init__(self, config: DictConfig, tokenizer: Any, compute_score: Any = None, **_: Any):
        super().__init__(config, tokenizer, compute_score)
        check_estimator(config.algorithm.adv_estimator)
        settings = settings_of(config)
        self.scorer = settings.reward_scorer(worker_readers(settings))
        self.batcher = RolloutBatcher(
            self.scorer.score, window_s=settings.batch.window_s, max_rollouts=settings.batch.max_rollouts
        )

    async def run_single(self, data: DataProto) -> dict[str, Any]:
        reward = await self.batcher.submit(rollout_from_rows(data.non_tensor_batch))
        return reward_result(reward)
