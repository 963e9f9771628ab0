"""The `vllm` backend: an in-process vLLM engine (`vllm.LLM`) that answers all prompts of a call in
one batched `LLM.chat` call (one per distinct `enable_thinking` value and tool list, since the
chat-template switch and `tools=` are per call). Tools are only rendered into the prompt: calls come
back as raw text. For GPU machines; `pip install memalpha-bench[vllm]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmark.readers.base import (
    OnResult,
    ReaderError,
    ReaderRequest,
    ReaderResponse,
    SamplingParams,
    group_indices,
)

INSTALL_HINT = "the vllm backend needs vLLM: pip install memalpha-bench[vllm] on a GPU machine"


def vllm_sampling_kwargs(params: SamplingParams) -> dict[str, Any]:
    """Keyword arguments of `vllm.SamplingParams` for our settings. vLLM leaves stop strings out of
    the output, as the OpenAI API does."""
    kwargs: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.stop:
        kwargs["stop"] = list(params.stop)
    return kwargs


class VLLMReader:
    """`engine_kwargs` go to `vllm.LLM` (dtype, tensor_parallel_size, max_model_len, ...) and are part
    of `describe()`, since several of them change answers."""

    def __init__(self, model: str, **engine_kwargs: Any):
        try:
            import vllm
        except ImportError as exc:
            raise ReaderError(INSTALL_HINT) from exc
        self.model = model
        self.engine_kwargs = engine_kwargs
        self._vllm = vllm
        self._llm = vllm.LLM(model=model, **engine_kwargs)

    def describe(self) -> dict:
        return {
            "backend": "vllm",
            "model": self.model,
            "vllm_version": self._vllm.__version__,
            "engine": dict(sorted(self.engine_kwargs.items())),
        }

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        results: list[ReaderResponse | None] = [None] * len(requests)
        groups = group_indices(requests, lambda r: (r.params.enable_thinking, r.tools))
        for (thinking, _), indices in groups.items():
            outputs = self._llm.chat(
                [requests[i].message_dicts() for i in indices],
                sampling_params=[
                    self._vllm.SamplingParams(**vllm_sampling_kwargs(requests[i].params)) for i in indices
                ],
                use_tqdm=True,  # one call can run for a long time: show its progress
                chat_template_kwargs={"enable_thinking": thinking},
                tools=requests[indices[0]].tool_dicts(),
            )
            for i, output in zip(indices, outputs, strict=True):
                completion = output.outputs[0]
                response = ReaderResponse.from_raw(
                    completion.text, len(output.prompt_token_ids or ()), len(completion.token_ids)
                )
                results[i] = response
                if on_result is not None:
                    on_result(i, response)
        return [r for r in results if r is not None]
