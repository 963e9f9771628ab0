"""The Mem-α agent loop for verl 0.9.1's V1 trainer: one instance's chunks in, one training row per chunk.

Each chunk step gets a fresh prompt (system: instructions and the memory as it stands; user: the
chunk), one generation, and the tool calls parsed from it run against the memory environment. The
tool results are never shown to the model (one turn per chunk, as the original), so each row's
response is the model's tokens only: `response_mask` is 1 on every response token.

`run` returns `list[MemAlphaStepOutput]`; V1 stores each element as its own row under
`{uid}_{session}_{step}`. The rewards are computed later, for the whole rollout, by the reward
manager: each row carries its step's tool calls, the last row the final memory.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopMetrics, AgentLoopOutput

from tasks.errors import TaskError
from tasks.tokenization import get_counter

from ..environment import MemoryEnvironment
from ..prompts import build_messages, chat_tools
from ..rewards import STEP_REWARDS, CallRecord
from ..toolcalls import QWEN_AGENT_STOP, parse_response
from .settings import check_estimator, settings_of


class MemAlphaStepOutput(AgentLoopOutput):
    """One chunk step. V1 broadcasts the rollout's reward (r1 + β·r3) to every row and only then calls
    `as_dict`; this override adds the row's own step term (r2 + γ·r4) on its last token."""

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        if "rm_scores" in out:
            extra = out["extra_fields"]
            steps = json.loads(extra["reward_extra_info"][STEP_REWARDS])
            out["rm_scores"][-1] += steps[extra["step"]]
        return out


class PromptTooLongError(TaskError):
    """A chunk prompt over `rollout.prompt_length`: verl would cut the memory off its left end."""


class MemAlphaAgentLoop(AgentLoopBase):
    """Registered as `memalpha_agent` (config/agent_loop.yaml); settings from the config's `memalpha:`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        check_estimator(self.config.algorithm.adv_estimator)
        self.settings = settings_of(self.config)
        self.counter = get_counter(self.settings.tokenizer)
        self.prompt_length = self.rollout_config.prompt_length
        self.response_length = self.rollout_config.response_length

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> list[MemAlphaStepOutput]:
        chunks: list[str] = json.loads(kwargs["chunks"])
        instance = kwargs.get("extra_info", {}).get("instance_id", "?")
        fmt = self.settings.tool_format
        params = dict(sampling_params)
        if fmt == "qwen-agent":  # whatever follows these markers is a tool result the model made up
            params["stop"] = list(QWEN_AGENT_STOP)
        env = MemoryEnvironment(self.counter)
        outputs: list[MemAlphaStepOutput] = []
        for step, chunk in enumerate(chunks):
            messages = build_messages(
                env, chunk, fmt=fmt, recent=self.settings.recent_entries, response_limit=self.response_length
            )
            prompt_ids = await self._prompt_ids(messages, chat_tools(fmt), instance, step)
            start = time.perf_counter()
            generated = await self.server_manager.generate(
                request_id=uuid4().hex, prompt_ids=prompt_ids, sampling_params=params
            )
            generate_s = time.perf_counter() - start
            response_ids = list(generated.token_ids[: self.response_length])
            text = self.tokenizer.decode(response_ids, skip_special_tokens=False)
            start = time.perf_counter()
            calls = parse_response(text, fmt).calls
            results = env.execute_all(calls)
            if self.settings.progress:
                print(
                    f"rollout {kwargs.get('session_id', '?')} of {instance}: chunk {step + 1}/{len(chunks)}, "
                    f"{len(response_ids)} tokens in {generate_s:.1f} s, {len(calls)} tool calls",
                    flush=True,
                )
            outputs.append(
                MemAlphaStepOutput(
                    prompt_ids=prompt_ids,
                    response_ids=response_ids,
                    response_mask=[1] * len(response_ids),
                    response_logprobs=(
                        list(generated.log_probs[: len(response_ids)]) if generated.log_probs is not None else None
                    ),
                    num_turns=2,
                    metrics=AgentLoopMetrics(generate_sequences=generate_s, tool_calls=time.perf_counter() - start),
                    extra_fields={
                        "step": step,
                        "calls": [CallRecord.of(c, r).to_json() for c, r in zip(calls, results, strict=True)],
                    },
                )
            )
        outputs[-1].extra_fields["final_memory"] = env.snapshot().to_json()
        return outputs

    async def _prompt_ids(self, messages: list[dict[str, str]], tools: Any, instance: str, step: int) -> list[int]:
        """The chat-templated prompt, checked against `rollout.prompt_length` instead of cut."""
        builder = self.continuous_token_builder
        ids = await asyncio.get_running_loop().run_in_executor(
            None, lambda: builder.build_initial_tokens(messages, tools=tools)
        )
        if len(ids) > self.prompt_length:
            raise PromptTooLongError(
                f"instance {instance}, chunk {step}: the prompt has {len(ids)} tokens, over "
                f"rollout.prompt_length={self.prompt_length} (data.max_prompt_length); raise it, or the "
                "memory shown would be cut"
            )
        return ids
