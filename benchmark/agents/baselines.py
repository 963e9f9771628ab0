"""The paper's baselines as agents: `chunk-store` (BM25 RAG over raw chunks) and `long-context`."""

from __future__ import annotations

from typing import Any

from tasks.tokenization import TokenCounter, get_counter

from ..memory import Memory, MemoryEntry
from .base import Agent, AgentOption, InstanceInfo, Session


class ChunkStoreSession(Session):
    def __init__(self) -> None:
        self.chunks: list[str] = []

    def observe(self, chunk: str) -> None:
        self.chunks.append(chunk)

    def memory(self) -> Memory:
        return Memory("", tuple(MemoryEntry(f"c{i}", c) for i, c in enumerate(self.chunks)), ())

    def stats(self) -> dict[str, Any]:
        return {"chunks_seen": len(self.chunks)}


class ChunkStoreAgent(Agent):
    """Each chunk stored verbatim as a semantic entry. Scored with `--top-k 2` it is the paper's RAG-Top2."""

    name = "chunk-store"
    option_docs = ()

    def __init__(self, **options: str):
        super().__init__(**options)
        self.resolved_options = self.option_reader().finish()

    def new_session(self, instance: InstanceInfo) -> Session:
        return ChunkStoreSession()


class LongContextSession(Session):
    def __init__(self, counter: TokenCounter, tokens: int):
        self.counter, self.tokens = counter, tokens
        self.chunks: list[str] = []

    def observe(self, chunk: str) -> None:
        self.chunks.append(chunk)

    def memory(self) -> Memory:
        """Core = the tail of the input that fits: whole chunks from the end, then the tail of one more."""
        counts = self.counter.count_many(self.chunks)
        kept: list[str] = []
        room = self.tokens
        for chunk, n in zip(reversed(self.chunks), reversed(counts), strict=True):
            if n <= room:
                kept.append(chunk)
                room -= n
                continue
            words = chunk.split(" ")
            lo, hi = 0, len(words)
            while lo < hi:  # the longest word-aligned tail of this chunk that fits the room left
                mid = (lo + hi + 1) // 2
                if self.counter.count(" ".join(words[-mid:])) <= room:
                    lo = mid
                else:
                    hi = mid - 1
            if lo:
                kept.append(" ".join(words[-lo:]))
            break
        return Memory("\n\n".join(reversed(kept)), (), ())

    def stats(self) -> dict[str, Any]:
        return {"chunks_seen": len(self.chunks)}


class LongContextAgent(Agent):
    """Core memory = the tail of the input that fits the reader budget: the long-context baseline."""

    name = "long-context"
    option_docs = (
        AgentOption(
            "tokens",
            "28000",
            "size of the core memory in tokens: the scorer's 30000-token budget less room for the prompt "
            "template and the question",
        ),
        AgentOption("tokenizer", "qwen3", "token counter for that size; --tokenizer sets it unless given"),
    )

    def __init__(self, **options: str):
        super().__init__(**options)
        opts = self.option_reader()
        self.tokens = opts.integer("tokens", low=1)
        self.tokenizer = opts.get("tokenizer") or "qwen3"
        self.resolved_options = opts.finish()
        self.counter = get_counter(self.tokenizer)

    def new_session(self, instance: InstanceInfo) -> Session:
        return LongContextSession(self.counter, self.tokens)
