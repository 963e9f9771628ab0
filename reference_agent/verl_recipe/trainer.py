"""The recipe's training entry point: verl 0.9.1's V1 sync trainer, plus Mem-α's reward terms per step.

V1 logs `reward_extra_info` only at validation; during training it logs the total reward R alone. A
collapsing r1 hidden behind a rising r2, or a memory that keeps growing, would not show. So every
training step also logs, averaged over the step's rollouts:

    memalpha/r1/mean  memalpha/r3/mean  memalpha/r2/mean  memalpha/r4/mean
    memalpha/memory_tokens/mean  memalpha/r1_failed/mean  memalpha/r4_failed/mean  memalpha/rollouts

(r2 and r4 are each rollout's mean over its steps.) The trainer is `PPOTrainerSync` with one more
metrics step. It must stay registered as "sync" (V1 compares `trainer.v1.trainer_mode` with "sync"
in several places), so instead of a new trainer name this module runs verl's own `main_ppo` flow
with a task runner that uses this trainer: `python -m reference_agent.verl_recipe.trainer` takes
the same arguments as `python -m verl.trainer.main_ppo` and reads the recipe config by default.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import hydra
import ray
from omegaconf import DictConfig
from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils.config import validate_config
from verl.utils.device import auto_set_device

from .compose import RECIPE_CONFIG, RECIPE_CONFIG_DIR

PREFIX = "memalpha"
# metric name -> key of the reward manager's `reward_extra_info`
REWARD_TERMS = {
    "r1": "r1",
    "r3": "r3",
    "r2": "r2_mean",
    "r4": "r4_mean",
    "memory_tokens": "memory_tokens",
    "r1_failed": "r1_failed",
    "r4_failed": "r4_failed",
}


def reward_metrics(keys: Sequence[str], extra_fields: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Means over rollouts of the reward terms, from the rows of one step (keys `{uid}_{session}_{step}`;
    every row of a rollout carries the rollout's `reward_extra_info`, so one row per rollout counts)."""
    per_rollout: dict[str, Mapping[str, Any]] = {}
    for key, fields in zip(keys, extra_fields, strict=True):
        info = fields.get("reward_extra_info") if fields else None
        if info:
            per_rollout.setdefault(key.rsplit("_", 1)[0], info)
    if not per_rollout:
        return {}
    infos = list(per_rollout.values())
    metrics = {
        f"{PREFIX}/{name}/mean": float(statistics.fmean(float(i[key]) for i in infos))
        for name, key in REWARD_TERMS.items()
    }
    metrics[f"{PREFIX}/rollouts"] = float(len(infos))
    return metrics


class MemAlphaTrainer(PPOTrainerSync):
    """verl's sync trainer, also logging the reward terms of each training step."""

    def _compute_metrics(self, batch: Any, metrics: dict, timing_raw: dict, global_steps: int, epoch: int) -> None:
        super()._compute_metrics(batch, metrics, timing_raw, global_steps=global_steps, epoch=epoch)
        import transfer_queue as tq

        keys = [key for key, tag in zip(batch.keys, batch.tags, strict=True) if not tag.get("is_padding", False)]
        if keys:
            data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
            metrics.update(reward_metrics(keys, data["extra_fields"]))


@ray.remote
class MemAlphaTaskRunner(TaskRunnerV1.__ray_actor_class__):
    """verl's V1 task runner with `MemAlphaTrainer` as the sync trainer, in this actor's process only."""

    def run(self, config: DictConfig) -> None:
        TRAINER_REGISTRY["sync"] = MemAlphaTrainer
        super().run(config)


@hydra.main(config_path=str(RECIPE_CONFIG_DIR), config_name=RECIPE_CONFIG, version_base=None)
def main(config: DictConfig) -> None:
    """What `verl.trainer.main_ppo.main` does, with the recipe's task runner."""
    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    run_ppo(config, task_runner_class=MemAlphaTaskRunner)


if __name__ == "__main__":
    main()
