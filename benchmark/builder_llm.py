"""The task builders' LLM steps (closed-book filter, keyword extraction, ...) on the reader backends.

`tasks` defines the `BuilderLLM` interface and must not import `benchmark`; `memalpha tasks build
--llm-model M` finds this adapter through the `memalpha.builder_llm` entry point.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .cache import CachedReader, ResponseCache
from .paths import cache_root
from .readers import make_reader
from .readers.base import Reader, ReaderRequest, SamplingParams


class ReaderLLM:
    """A reader backend seen as a `tasks.llm.BuilderLLM` (greedy, thinking off, cached)."""

    def __init__(self, reader: Reader):
        self.reader = reader

    def describe(self) -> dict[str, object]:
        return self.reader.describe()

    def generate(self, conversations: Sequence[list[dict[str, str]]], *, max_tokens: int) -> list[str]:
        params = SamplingParams(max_tokens=max_tokens)
        requests = [ReaderRequest(tuple((m["role"], m["content"]) for m in conv), params) for conv in conversations]
        return [r.text for r in self.reader.generate(requests)]


def default_cache() -> Path:
    return cache_root() / "builder-llm.sqlite"


def make(backend: str, model: str, base_url: str | None = None, cache: Path | None = None) -> ReaderLLM:
    """The entry point `tasks build` calls: a cached reader for the build's LLM steps."""
    reader = make_reader(backend, model, base_url=base_url)
    return ReaderLLM(CachedReader(reader, ResponseCache(cache or default_cache())))
