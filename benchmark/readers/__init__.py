"""Reader backends: the model that answers questions from a memory. `make_reader` picks one by name.

- `openai`: any OpenAI-compatible server, or several serving one model (`base_url` required);
- `vllm`: an in-process vLLM engine (GPU machines), fed in slices;
- `hf`: transformers in-process, for small models on CPU.

The heavy backends import their libraries only when chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmark.readers.base import (
    OnResult,
    Reader,
    ReaderError,
    ReaderRequest,
    ReaderResponse,
    RequestsFailed,
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
    "RequestsFailed",
    "SamplingParams",
    "make_reader",
]


def make_reader(
    backend: str,
    model: str,
    *,
    base_url: str | Sequence[str] | None = None,
    concurrency: int = 16,
    timeout: float = 120,
    max_retries: int = 5,
    api_key: str | None = None,
    template_kwargs: str = "auto",
    http_client: str = "auto",
) -> Reader:
    """A reader for `model` on `backend`. `concurrency` is the number of requests in flight for
    `openai` (over all its servers) and the batch size for `hf`; `vllm` takes its work in slices of
    its own size. The other settings apply to `openai` only (see OpenAIReader)."""
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
            template_kwargs=template_kwargs,
            http_client=http_client,
        )
    if backend == "vllm":
        from benchmark.readers.vllm_reader import VLLMReader

        return VLLMReader(model)
    if backend == "hf":
        from benchmark.readers.hf_reader import HFReader

        return HFReader(model, batch_size=concurrency)
    raise ReaderError(f"unknown reader backend {backend!r}; choose one of {', '.join(BACKENDS)}")
