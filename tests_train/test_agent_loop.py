"""The agent loop and the reward manager on CPU, in-process, with a fake LLM server manager.

The loop is built the way verl's agent-loop worker builds it: `hydra.utils.instantiate` of the entry
in config/agent_loop.yaml, inside a running event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import numpy as np
import pytest
from conftest import CHUNKS, FACTS, QUESTIONS, careful_or_lazy, instance_row
from hydra.utils import instantiate
from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import DictConfigWrap
from verl.utils import hf_tokenizer
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.workers.rollout.replica import TokenOutput

from reference_agent.toolcalls import FN_ARGS, FN_NAME, QWEN_AGENT_STOP
from reference_agent.training_data import training_row, write_parquet
from reference_agent.verl_recipe.agent_loop import MemAlphaStepOutput, PromptTooLongError
from reference_agent.verl_recipe.compose import RECIPE_CONFIG_DIR, compose_recipe
from reference_agent.verl_recipe.reward_manager import MemAlphaRewardManager, reward_result, rollout_from_rows


class FakeServer:
    """verl's `LLMServerClient.generate` contract: a scripted reply per prompt, with log-probs."""

    def __init__(self, tokenizer: Any, policy=careful_or_lazy):
        self.tokenizer, self.policy = tokenizer, policy
        self.seen: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict, **_: Any):
        prompt = self.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        self.requests.append({"prompt": prompt, "sampling_params": dict(sampling_params)})
        reply = self.policy(prompt, self.seen[prompt])
        self.seen[prompt] += 1
        ids = [*self.tokenizer.encode(reply, add_special_tokens=False), self.tokenizer.eos_token_id]
        return TokenOutput(token_ids=ids, log_probs=[-0.25] * len(ids), stop_reason="completed")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rows") / "train.parquet"
    write_parquet([training_row(instance_row(), "train", 0, "sha")], path)
    return path


def config(tiny_model, data_file, *extra: str):
    return compose_recipe(
        [
            f"actor_rollout_ref.model.path={tiny_model}",
            f"data.train_files={data_file}",
            f"data.val_files={data_file}",
            "memalpha.tokenizer=simple",
            "memalpha.reader.base_url=http://127.0.0.1:9/v1",
            *extra,
        ],
        check=False,
    )


def dataset_row(cfg, tokenizer) -> dict[str, Any]:
    """The row as verl's dataset hands it to `run(**kwargs)`."""
    return RLHFDataset([cfg.data.train_files], tokenizer, cfg.data)[0]


def run_loop(cfg, server: FakeServer, row: dict[str, Any], sampling_params: dict | None = None):
    (entry,) = OmegaConf.load(RECIPE_CONFIG_DIR / "agent_loop.yaml")

    async def main():
        loop = instantiate(
            entry,
            trainer_config=DictConfigWrap(cfg),
            server_manager=server,
            tokenizer=server.tokenizer,
            processor=None,
            dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(cfg.data),
            hf_model_type="qwen3",  # what the worker reads from the model's config
        )
        return await loop.run(sampling_params or {"temperature": 1.0}, **row)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return hf_tokenizer(str(tiny_model))


def test_tool_calls_in_memory_and_one_row_per_chunk_out(tiny_model, data_file, tokenizer):
    cfg = config(tiny_model, data_file)
    server = FakeServer(tokenizer)
    outputs = run_loop(cfg, server, dataset_row(cfg, tokenizer))
    assert len(outputs) == len(CHUNKS) and all(isinstance(o, MemAlphaStepOutput) for o in outputs)
    for step, (out, chunk, request) in enumerate(zip(outputs, CHUNKS, server.requests, strict=True)):
        # a fresh prompt per chunk: the chunk, and the memory as the earlier steps left it
        assert request["prompt"] == tokenizer.decode(out.prompt_ids, skip_special_tokens=False)
        assert f"<new_chunk>\n{chunk}\n</new_chunk>" in request["prompt"]
        assert all((f"[s{i}] {FACTS[i]}" in request["prompt"]) == (i < step) for i in range(3))
        assert "Storing it." not in request["prompt"]  # no earlier response is ever part of a prompt
        # the response is the model's tokens only, every one of them trained on
        text = tokenizer.decode(out.response_ids, skip_special_tokens=False)
        assert text.startswith("Storing it.") and text.endswith("<|im_end|>")
        assert out.response_mask == [1] * len(out.response_ids)
        assert out.response_logprobs == [-0.25] * len(out.response_ids)
        fact_call = {"memory_type": "semantic_memory", "content": FACTS[step]}
        assert out.extra_fields["step"] == step
        assert out.extra_fields["calls"] == [{"tool": "new_memory_insert", "arguments": fact_call, "status": "ok"}]
        assert ("final_memory" in out.extra_fields) == (step == len(CHUNKS) - 1)
    memory = outputs[-1].extra_fields["final_memory"]
    assert memory == {
        "core": "",
        "semantic": [{"id": f"s{i}", "content": f} for i, f in enumerate(FACTS)],
        "episodic": [],
    }
    assert server.requests[0]["sampling_params"] == {"temperature": 1.0}


def test_long_responses_are_cut_to_the_response_length(tiny_model, data_file, tokenizer):
    cfg = config(tiny_model, data_file, "data.max_response_length=12")
    outputs = run_loop(cfg, FakeServer(tokenizer), dataset_row(cfg, tokenizer))
    assert all(len(o.response_ids) == len(o.response_mask) == 12 for o in outputs)
    assert all(c["status"] == "error" for o in outputs for c in o.extra_fields["calls"])  # a cut-off call


def test_a_prompt_over_the_limit_fails_instead_of_losing_memory(tiny_model, data_file, tokenizer):
    cfg = config(tiny_model, data_file, "data.max_prompt_length=200")
    with pytest.raises(PromptTooLongError, match=r"instance squad-x1, chunk 0: the prompt has \d+ tokens"):
        run_loop(cfg, FakeServer(tokenizer), dataset_row(cfg, tokenizer))


def test_qwen_agent_format(tiny_model, data_file, tokenizer):
    def markers(prompt: str, seen: int) -> str:
        fact = FACTS[[f in prompt.split("<new_chunk>")[1] for f in FACTS].index(True)]
        args = json.dumps({"memory_type": "semantic_memory", "content": fact})
        return f"{FN_NAME}: new_memory_insert\n{FN_ARGS}: {args}"

    cfg = config(tiny_model, data_file, "memalpha.tool_format=qwen-agent")
    server = FakeServer(tokenizer, markers)
    outputs = run_loop(cfg, server, dataset_row(cfg, tokenizer))
    assert server.requests[0]["sampling_params"]["stop"] == list(QWEN_AGENT_STOP)
    assert FN_NAME in server.requests[0]["prompt"] and "<tools>" not in server.requests[0]["prompt"]
    assert [s["content"] for s in outputs[-1].extra_fields["final_memory"]["semantic"]] == list(FACTS)


def test_plain_grpo_is_refused(tiny_model, data_file, tokenizer):
    cfg = config(tiny_model, data_file, "algorithm.adv_estimator=grpo")
    with pytest.raises(Exception, match="drops the per-step rewards"):  # hydra wraps our TaskError
        run_loop(cfg, FakeServer(tokenizer), dataset_row(cfg, tokenizer))


def test_as_dict_adds_each_rows_step_term_after_the_broadcast(tiny_model, data_file, tokenizer):
    cfg = config(tiny_model, data_file)
    outputs = run_loop(cfg, FakeServer(tokenizer), dataset_row(cfg, tokenizer))
    info = {"acc": 0.75, "step_rewards": json.dumps([0.7, 1.1, 0.2])}
    for out in outputs:  # what V1's _agent_loop_postprocess does before calling as_dict
        out.reward_score = 0.77
        out.extra_fields["reward_extra_info"] = info
    for step, out in enumerate(outputs):
        rm = out.as_dict()["rm_scores"]
        assert rm[-1].item() == pytest.approx(0.77 + [0.7, 1.1, 0.2][step]) and rm[:-1].abs().sum() == 0
        assert len(rm) == len(out.response_ids)


def verl_columns(outputs, row) -> dict[str, Any]:
    """The non-tensor columns V1's `_compute_score` sends the reward worker for one session."""
    n = len(outputs)
    columns = {k: np.array([v] * n) for k, v in row.items() if not hasattr(v, "shape")}
    columns["tool_extra_fields"] = np.array([o.extra_fields for o in outputs], dtype=object)
    return columns


def test_reward_manager_rebuilds_the_rollout_and_survives_a_dead_reader(tiny_model, data_file, tokenizer, caplog):
    cfg = config(tiny_model, data_file, "memalpha.reader.max_retries=0", "memalpha.cache=null")
    row = dataset_row(cfg, tokenizer)
    outputs = run_loop(cfg, FakeServer(tokenizer), row)
    rollout = rollout_from_rows(verl_columns(list(reversed(outputs)), row))  # row order does not matter
    assert (rollout.task, rollout.instance_id) == ("squad", "squad-x1")
    assert list(rollout.questions) == QUESTIONS and list(rollout.chunks) == CHUNKS
    assert [e.content for e in rollout.memory.semantic] == list(FACTS)
    assert [[c.tool for c in step] for step in rollout.steps] == [["new_memory_insert"]] * 3

    from verl import DataProto

    async def score():  # nothing listens on 127.0.0.1:9: the reader and the judge fail
        manager = MemAlphaRewardManager(cfg, tokenizer, None)
        return await manager.run_single(DataProto.from_dict(non_tensors=verl_columns(outputs, row)))

    result = asyncio.run(score())
    info = result["reward_extra_info"]
    assert (info["r1"], info["acc"], info["r1_failed"], info["r4_failed"]) == (0.0, 0.0, 1.0, 1.0)
    assert result["reward_score"] == pytest.approx(0.05 * (1 - 20 / 38))  # r1 = 0, r3 still counts
    assert json.loads(info["step_rewards"]) == [1.0, 1.0, 1.0]  # r2 = 1, r4 = 0 (unjudged)
    assert any("scores 0" in r.getMessage() for r in caplog.records)


def test_reward_result_keys():
    from reference_agent.rewards import RolloutReward

    reward = RolloutReward(0.5, 0.25, (1.0,), (0.5,), 0.5125, (1.05,), 3, 4)
    result = reward_result(reward)
    assert result["reward_score"] == 0.5125 and result["reward_extra_info"]["acc"] == 0.5
    assert json.loads(result["reward_extra_info"]["step_rewards"]) == [1.05]
