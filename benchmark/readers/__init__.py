"""Reader backends: the model that answers questions from a memory. `make_reader` picks one by name.

- `openai`: any OpenAI-compatible server (`base_url` required);
- `vllm`: an in-process vLLM engine (GPU machines);
- `hf`: transformers in-process, for small models on CPU.

The heavy backends import their libraries only when chosen.
"""

from __future__ import annotations

from benchmark.readers.base import (
    OnResult,
    Reader,
    ReaderError,
    ReaderRequest,
    ReaderResponse,
    SamplingParams,
)

BACKENDS = ("openai", "vllm", "hf")

__all__ = [
    "BACKENDS",
    "OnResult",
    "Reader",
    "ReaderError",
    "ReaderRequest",
    "ReaderResponse",
    "SamplingParams",
    "make_reader",
]


def make_reader(
    backend: str,
    model: str,
    *,
    base_url: str | None = None,
    concurrency: int = 16,
    timeout: float = 120,
    max_retries: int = 5,
    api_key: str | None = None,
) -> Reader:
    """A reader for `model` on `backend`. `concurrency` is the number of parallel requests for
    `openai` and the batch size for `hf`; `vllm` batches every call whole. `timeout`, `max_retries`
    and `api_key` apply to `openai` only."""
    if backend == "openai":
        if not base_url:
            raise ReaderError("the openai backend needs a server address (base_url, e.g. http://localhost:8000/v1)")
        from benchmark.readers.openai_reader import OpenAIReader

        return OpenAIReader(
            model,
            base_url,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            api_key=api_key,
        )
    if backend == "vllm":
        from benchmark.readers.vllm_reader import VLLMReader

        return VLLMReader(model)
    if backend == "hf":
        from benchmark.readers.hf_reader import HFReader

        return HFReader(model, batch_size=concurrency)
    raise ReaderError(f"unknown reader backend {backend!r}; choose one of {', '.join(BACKENDS)}")
