"""The `hf` backend: transformers in-process, for small models on CPU (tests, quick local checks).

Prompts go through the model's chat template (with the Qwen3 `enable_thinking` switch, and the
request's tools, which the template describes to the model; calls come back as raw text) and are
batched with left padding; temperature 0 means greedy decoding. Token counts come from the
tokenizer: the prompt's tokens, and the generated tokens up to and including the end-of-turn token.
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

INSTALL_HINT = "the hf backend needs transformers and torch: pip install memalpha-bench[local] (torch first)"


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text before the first stop string (stop strings are not part of an answer, as in the
    OpenAI API)."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


class HFReader:
    """A causal LM from a local folder or hub id, answering `batch_size` prompts at a time."""

    def __init__(self, model: str, *, batch_size: int = 8, device: str = "cpu", dtype: str = "auto"):
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise ReaderError(INSTALL_HINT) from exc
        if batch_size < 1:
            raise ReaderError(f"batch_size must be at least 1, got {batch_size}")
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self._torch = torch
        self._transformers_version = transformers.__version__
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(model)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(device).eval()
        except OSError as exc:
            raise ReaderError(f"cannot load model {model!r} for the hf backend: {exc}") from exc
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._end_ids = self._end_token_ids()

    def _end_token_ids(self) -> set[int]:
        configured = self.model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, list) else [configured])
        ids.add(self.tokenizer.eos_token_id)
        return {i for i in ids if i is not None}

    def describe(self) -> dict:
        return {
            "backend": "hf",
            "model": self.model_name,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "device": self.device,
            "transformers_version": self._transformers_version,
        }

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        results: list[ReaderResponse | None] = [None] * len(requests)
        for params, indices in group_indices(requests, lambda r: r.params).items():
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start : start + self.batch_size]
                for i, response in zip(batch, self._generate_batch([requests[i] for i in batch], params), strict=True):
                    results[i] = response
                    if on_result is not None:
                        on_result(i, response)
        return [r for r in results if r is not None]

    def _generation_kwargs(self, params: SamplingParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.temperature > 0:
            # top_k=0 switches off the model's own top-k default: our settings are the whole sampler
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kwargs["do_sample"] = False
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        return kwargs

    def _generate_batch(self, batch: Sequence[ReaderRequest], params: SamplingParams) -> list[ReaderResponse]:
        prompts = [
            self.tokenizer.apply_chat_template(
                r.message_dicts(),
                tools=r.tool_dicts(),
                tokenize=False,
                add_generation_prompt=True,
                enable_thinking=params.enable_thinking,
            )
            for r in batch
        ]
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        with self._torch.inference_mode():
            output = self.model.generate(**encoded, **self._generation_kwargs(params))
        prompt_width = encoded["input_ids"].shape[1]
        return [
            self._response(row, int(mask.sum()), params.stop)
            for row, mask in zip(output[:, prompt_width:].tolist(), encoded["attention_mask"], strict=True)
        ]

    def _response(self, row: list[int], prompt_tokens: int, stop: Sequence[str]) -> ReaderResponse:
        """One generated row: up to the first end token (counted, not shown), else without the padding
        that follows a sequence stopped early by a stop string."""
        end = next((k for k, token in enumerate(row) if token in self._end_ids), None)
        if end is None:
            while row and row[-1] == self.tokenizer.pad_token_id:
                row = row[:-1]
            generated, shown = row, row
        else:
            generated, shown = row[: end + 1], row[:end]
        text = self.tokenizer.decode(shown, skip_special_tokens=False)
        return ReaderResponse.from_raw(cut_at_stop(text, stop), prompt_tokens, len(generated))
