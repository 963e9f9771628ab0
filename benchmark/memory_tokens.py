"""Token counts of one memory, each text counted once per scoring run and reused: the memory's size in
scores.json and the budget fitting of every prompt built from it.

Counting a memory costs one tokenizer pass over its text (about 1.6 µs a token with a Qwen-vocabulary
BPE); before this, the scorer counted the entries its questions retrieved and then the whole memory again
for its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tasks.tokenization import TokenCounter

from .memory import Memory, MemoryEntry


@dataclass(frozen=True)
class MemoryTokens:
    """`core`: the core memory's count; `semantic`/`episodic`: each entry's count as a prompt shows it,
    estimated as its content's count plus that of its `[timestamp] ` prefix (the exact count of a prompt
    near its budget is taken on the rendered text, see `ReaderPrompt.build`); `size`: core plus every
    entry's content, the memory's size as scores.json reports it."""

    core: int
    semantic: np.ndarray
    episodic: np.ndarray
    size: int

    @classmethod
    def count(cls, memory: Memory, counter: TokenCounter) -> MemoryTokens:
        counts = np.asarray(counter.count_many(memory.texts()), dtype=np.int64)
        split = 1 + len(memory.semantic)
        return cls(
            core=int(counts[0]),
            semantic=counts[1:split] + _stamp_tokens(memory.semantic, counter),
            episodic=counts[split:] + _stamp_tokens(memory.episodic, counter),
            size=int(counts.sum()),
        )


def _stamp_tokens(entries: Sequence[MemoryEntry], counter: TokenCounter) -> np.ndarray | int:
    """Per entry, the tokens of the `[timestamp] ` a prompt shows before it (0 without a timestamp); each
    distinct timestamp counted once."""
    stamps = sorted({e.timestamp for e in entries if e.timestamp})
    if not stamps:
        return 0
    known = dict(zip(stamps, counter.count_many([f"[{s}] " for s in stamps]), strict=True))
    return np.fromiter((known.get(e.timestamp, 0) if e.timestamp else 0 for e in entries), np.int64, len(entries))
