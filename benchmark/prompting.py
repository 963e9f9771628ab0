"""The reader prompt: a versioned jinja2 template over core memory and the retrieved entries.

The template's sha256 goes into every result, so a score always says which prompt produced it. The
budget rule: when the prompt exceeds the reader budget, k (entries per memory type) shrinks one step
at a time until it fits; if even k = 0 does not fit, the core memory is cut to fit and the prediction
is marked `core_truncated`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tasks.tokenization import TokenCounter

from .memory import Memory, MemoryEntry
from .templating import TemplateSet

TEMPLATE_VERSION = "v1"
TEMPLATES = Path(__file__).parent / "templates"
# A prompt whose estimated size is under this share of the budget is not re-counted exactly: token
# counts of joined texts stay within a few percent of the sum of their parts.
SAFE_SHARE = 0.9


@dataclass(frozen=True)
class BuiltPrompt:
    messages: tuple[tuple[str, str], ...]
    semantic: tuple[int, ...]  # indices of the entries shown, in rank order
    episodic: tuple[int, ...]
    k: int
    tokens: int  # estimated from the parts when far inside the budget, else counted exactly
    core_truncated: bool


class ReaderPrompt:
    """Renders and sizes reader prompts for one template version."""

    def __init__(self, version: str = TEMPLATE_VERSION):
        self.version = version
        self._templates = TemplateSet(TEMPLATES, "reader", version)
        self._base: dict[tuple[int, str], int] = {}

    def _base_tokens(self, core: str, counter: TokenCounter) -> int:
        """Tokens of the prompt with no entries and an empty question (cached per core memory)."""
        key = (id(counter), core)
        if key not in self._base:
            self._base[key] = _count(counter, self.render(core, (), (), "", None))
        return self._base[key]

    @cached_property
    def sha256(self) -> str:
        return self._templates.digest()

    def render(
        self,
        core: str,
        semantic: Sequence[MemoryEntry],
        episodic: Sequence[MemoryEntry],
        question: str,
        query_prompt: str | None,
    ) -> tuple[tuple[str, str], ...]:
        system = self._templates.render("system", core=core, semantic=semantic, episodic=episodic)
        user = self._templates.render("user", query_prompt=query_prompt, question=question)
        return (("system", system), ("user", user))

    def build(
        self,
        memory: Memory,
        semantic_rank: Sequence[int],
        episodic_rank: Sequence[int],
        question: str,
        query_prompt: str | None,
        *,
        counter: TokenCounter,
        budget: int,
        entry_tokens: tuple[Mapping[int, int] | Sequence[int], Mapping[int, int] | Sequence[int]],
    ) -> BuiltPrompt:
        """The prompt with the largest k (≤ the ranks given) that fits `budget` tokens.

        `entry_tokens` holds the token count of each ranked semantic/episodic entry (by index), counted
        once per instance, so shrinking k costs no re-rendering until the final exact check.
        """
        sem_tokens, epi_tokens = entry_tokens
        k_max = max(len(semantic_rank), len(episodic_rank))
        base = (
            self._base_tokens(memory.core, counter)
            + counter.count(question)
            + (counter.count(query_prompt) if query_prompt else 0)
        )

        def estimate(k: int) -> int:
            return (
                base
                + sum(sem_tokens[i] + 2 for i in semantic_rank[:k])
                + sum(epi_tokens[i] + 2 for i in episodic_rank[:k])
            )

        def exact(k: int, core: str) -> tuple[tuple[tuple[str, str], ...], int]:
            shown_epi = [memory.episodic[i] for i in sorted(episodic_rank[:k])]  # chronological: memory order
            messages = self.render(
                core, [memory.semantic[i] for i in semantic_rank[:k]], shown_epi, question, query_prompt
            )
            return messages, _count(counter, messages)

        if estimate(k_max) <= SAFE_SHARE * budget:  # far inside the budget: no exact count needed
            shown_epi = [memory.episodic[i] for i in sorted(episodic_rank)]
            messages = self.render(
                memory.core, [memory.semantic[i] for i in semantic_rank], shown_epi, question, query_prompt
            )
            return BuiltPrompt(messages, tuple(semantic_rank), tuple(episodic_rank), k_max, estimate(k_max), False)
        k = k_max
        while k > 0 and estimate(k) > budget:
            k -= 1
        messages, tokens = exact(k, memory.core)
        while tokens > budget and k > 0:  # the estimate was low: step down
            k -= 1
            messages, tokens = exact(k, memory.core)
        while tokens <= budget and k < k_max:  # the estimate was high: step up while it still fits
            bigger, bigger_tokens = exact(k + 1, memory.core)
            if bigger_tokens > budget:
                break
            k, messages, tokens = k + 1, bigger, bigger_tokens
        core, truncated = memory.core, False
        while tokens > budget:  # even k = 0 does not fit: cut the core
            if not core:
                raise ValueError(f"the question alone exceeds the reader budget of {budget} tokens")
            core, truncated = _cut(core, counter, max(0, counter.count(core) - (tokens - budget) - 16)), True
            messages, tokens = exact(0, core)
        return BuiltPrompt(messages, tuple(semantic_rank[:k]), tuple(episodic_rank[:k]), k, tokens, truncated)


def _count(counter: TokenCounter, messages: Sequence[tuple[str, str]]) -> int:
    return sum(counter.count_many([content for _, content in messages])) + 4 * len(messages)


def _cut(text: str, counter: TokenCounter, tokens: int) -> str:
    """The longest prefix of `text` (at a word boundary) with at most `tokens` tokens."""
    words = text.split(" ")
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter.count(" ".join(words[:mid])) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])
