"""verl's own rollout path for one batch on a local Ray cluster, without GPUs.

The pieces are verl 0.9.1's, wired the way its V1 trainer wires them (`TaskRunnerV1`,
`PPOTrainer._submit_batch_to_rollout`, `_step_once`): the dataset and collate function, TransferQueue,
the `AgentLoopWorkerTQ` actor running our agent loop, the `RewardLoopWorker` actor running our
reward manager, the `ReplayBuffer` that waits for whole GRPO groups, and `PPOTrainer._compute_advantage`.
Only the LLM client differs: verl's would talk to the vLLM servers the trainer starts on its GPUs;
here it is any object with the same `generate` (the dry run's `OpenAICompletionsPolicy`, a test's
scripted policy). Log-probs, batch balancing and the update need the model on a GPU and are left out.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from tasks.errors import TaskError


@dataclass
class Row:
    """One training row as it comes out of TransferQueue after the advantage."""

    key: str  # {uid}_{session}_{step}
    session: int
    step: int
    prompt_tokens: int
    response_tokens: int
    response_mask_sum: int
    score: float  # the sum of rm_scores: the row's reward R
    advantage: float  # on the first response token (GRPO advantages are constant over a row)
    extra_fields: dict[str, Any]
    prompt_ids: list[int]  # what the update trains on (`memalpha train step-check` reads them back)
    response_ids: list[int]


def _settle(cfg: DictConfig) -> DictConfig:
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.transfer_queue.enable = True
        # one small storage unit: a handful of rows on one machine
        cfg.transfer_queue.backend.SimpleStorage.num_data_storage_units = 1
    OmegaConf.resolve(cfg)
    return cfg


def rollout_batch(cfg: DictConfig, llm_client: Any, *, num_cpus: int = 4, timeout_s: float = 600) -> list[Row]:
    """Roll out every row of `cfg.data.train_files` (`rollout.n` sessions each), score, and compute the
    advantages; the rows come back sorted by key. Starts and stops its own Ray cluster."""
    import ray
    import transfer_queue as tq
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer
    from verl.utils import hf_tokenizer
    from verl.utils import tensordict_utils as tu
    from verl.utils.dataset.rl_dataset import collate_fn

    if ray.is_initialized():
        raise TaskError("a Ray cluster is already running in this process; the local rollout starts its own")
    cfg = _settle(cfg)
    model = cfg.actor_rollout_ref.model.path
    try:
        tokenizer = hf_tokenizer(model)
    except (OSError, ValueError) as exc:
        raise TaskError(f"actor_rollout_ref.model.path={model}: cannot load its tokenizer ({exc})") from exc
    dataset = create_rl_dataset(cfg.data.train_files, cfg.data, tokenizer, None, is_train=True)
    batch_dict = collate_fn([dataset[i] for i in range(len(dataset))])
    batch_dict["uid"] = np.array([uuid.uuid4().hex for _ in range(len(dataset))], dtype=object)
    global_steps = 1

    env = get_ppo_ray_runtime_env(cfg)
    env.setdefault("env_vars", {})["TRANSFER_QUEUE_ENABLE"] = "1"
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "TOKENIZERS_PARALLELISM"):
        if name in os.environ:
            env["env_vars"][name] = os.environ[name]
    ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=env, log_to_driver=True)
    try:
        tq.init(cfg.transfer_queue)
        try:
            reward_worker = ray.remote(RewardLoopWorker).options(num_cpus=0).remote(cfg, None)
            worker = AgentLoopWorkerTQ.options(num_cpus=0).remote(cfg, llm_client, None, [reward_worker])
            batch = tu.get_tensordict(batch_dict)
            tu.assign_non_tensor_data(batch, "global_steps", global_steps)
            tags = [{"is_prompt": True, "status": "pending", "global_steps": global_steps} for _ in range(len(batch))]
            tq.kv_batch_put(keys=list(batch["uid"]), partition_id="train", tags=tags)
            ray.get(worker.generate_sequences.remote(batch), timeout=timeout_s)
            sampler = cfg.trainer.v1.sampler
            buffer = ReplayBuffer(
                trainer_mode="sync",
                trainer_config=cfg.trainer.v1.get("sync", {}),
                max_off_policy_threshold=sampler.max_off_policy_threshold,
                max_off_policy_strategy=sampler.max_off_policy_strategy,
                sampler_kwargs=sampler.sampler_kwargs,
                poll_interval=0.2,
                train_batch_size=len(batch),
                gen_batch_size=len(batch),
            )
            try:
                meta, _ = buffer.sample(global_steps=global_steps, partition_id="train", batch_size=len(batch))
            except RuntimeError as exc:  # every session of the group failed
                raise TaskError(
                    f"the rollout failed; the agent-loop worker's error is in the log above ({exc})"
                ) from exc
            meta = PPOTrainer._compute_advantage(SimpleNamespace(config=cfg), meta, {})
            fields = ["prompts", "responses", "response_mask", "rm_scores", "advantages", "extra_fields"]
            data = tq.kv_batch_get(keys=meta.keys, partition_id="train", select_fields=fields)
            return sorted((_row(key, data, i) for i, key in enumerate(meta.keys)), key=lambda r: r.key)
        finally:
            tq.close()
    finally:
        ray.shutdown()


def _row(key: str, data: Any, i: int) -> Row:
    _, session, step = key.rsplit("_", 2)
    mask = data["response_mask"][i]
    return Row(
        key=key,
        session=int(session),
        step=int(step),
        prompt_tokens=int(data["prompts"][i].numel()),
        response_tokens=int(data["responses"][i].numel()),
        response_mask_sum=int(mask.sum()),
        score=float(data["rm_scores"][i].sum()),
        advantage=float(data["advantages"][i][0]) if mask.numel() else 0.0,
        extra_fields=dict(data["extra_fields"][i]),
        prompt_ids=data["prompts"][i].tolist(),
        response_ids=data["responses"][i].tolist(),
    )
