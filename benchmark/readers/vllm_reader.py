"""The `vllm` backend: an in-process vLLM engine (`vllm.LLM`), fed in slices.

Requests are grouped by the settings `LLM.chat` takes per call (the `enable_thinking` switch and the
tool list), and each group goes to the engine `slice_size` requests at a time; every answer of a
slice is reported (and so cached) as soon as that slice returns. A crash loses at most the slice in
progress, not the run, and the engine still gets batches large enough to keep it busy.

A slice the engine raises on is split in halves until the request that fails is alone; that request
fails with the engine's message (a prompt longer than the model's context, say) and the others are
answered. A reply cut at max_tokens before any answer fails its request too (see `missing_answer`),
without a retry: under greedy decoding (the scorer's setting) the engine would give it again. Tools
are only rendered into the prompt: calls come back as raw text. For GPU machines;
`pip install memalpha-bench[vllm]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmark.readers.base import (
    FailureTally,
    OnResult,
    ReaderError,
    ReaderRequest,
    ReaderResponse,
    group_indices,
    missing_answer,
)

INSTALL_HINT = "the vllm backend needs vLLM: pip install memalpha-bench[vllm] on a GPU machine"
DEFAULT_SLICE_SIZE = 512


class VLLMReader:
    """`engine_kwargs` go to `vllm.LLM` (dtype, tensor_parallel_size, max_model_len, ...) and are part
    of `describe()`, since several of them change answers. `slice_size` requests go to the engine per
    call: a slice larger than the engine's `max_num_seqs` keeps its batch full until the slice's tail."""

    def __init__(self, model: str, *, slice_size: int = DEFAULT_SLICE_SIZE, **engine_kwargs: Any):
        try:
            import vllm
        except ImportError as exc:
            raise ReaderError(INSTALL_HINT) from exc
        if slice_size < 1:
            raise ReaderError(f"slice_size must be at least 1, got {slice_size}")
        self.model = model
        self.slice_size = slice_size
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
        tally = FailureTally(len(requests))

        def settle(i: int, output: Any) -> None:
            completion = output.outputs[0]
            problem = missing_answer(completion.text, getattr(completion, "finish_reason", None), False)
            if problem:
                tally.fail(i, problem)
                return
            response = ReaderResponse.from_raw(
                completion.text, len(output.prompt_token_ids or ()), len(completion.token_ids)
            )
            tally.answer()
            results[i] = response
            if on_result is not None:
                on_result(i, response)

        groups = group_indices(requests, lambda r: (r.params.enable_thinking, r.tools))
        for (thinking, _), indices in groups.items():
            for start in range(0, len(indices), self.slice_size):
                self._run_slice(requests, indices[start : start + self.slice_size], thinking, settle, tally)
                if tally.stop_reason is not None:
                    tally.check()
        tally.check()
        return [r for r in results if r is not None]

    def _run_slice(self, requests, indices: list[int], thinking: bool, settle, tally: FailureTally) -> None:
        """One engine call for `indices`; if the engine raises, each half again, down to the request
        that fails alone."""
        sampling = [self._vllm.SamplingParams(**requests[i].params.request_fields()) for i in indices]
        try:
            outputs = self._llm.chat(
                [requests[i].message_dicts() for i in indices],
                sampling_params=sampling,
                use_tqdm=False,  # the caller shows progress as slices come back
                chat_template_kwargs={"enable_thinking": thinking},
                tools=requests[indices[0]].tool_dicts(),
            )
        except Exception as exc:  # the engine's own errors (ValueError for a prompt too long, ...)
            if len(indices) == 1:
                tally.fail(indices[0], f"the vLLM engine raised {type(exc).__name__}: {exc}")
                return
            middle = len(indices) // 2
            for half in (indices[:middle], indices[middle:]):
                if tally.stop_reason is None:
                    self._run_slice(requests, half, thinking, settle, tally)
            return
        for i, output in zip(indices, outputs, strict=True):
            settle(i, output)
