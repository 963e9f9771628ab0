"""The reader prompt: a versioned jinja2 template over core memory and the retrieved entries.

The template's sha256 goes into every result, so a score always says which prompt produced it. A
profile picks the template, the order of the episodic entries and what the budget counts; a user may
give a template file of their own (`FileTemplateSet`). The budget rule: when the prompt (or, as the
original counted, its system message) exceeds the reader budget, k (entries per memory type) shrinks
one step at a time until it fits; if even k = 0 does not fit, the core memory is cut to fit and the
prediction is marked `core_truncated`.

Template variables: `core` (str), `semantic` and `episodic` (entries with `id`, `content`, `timestamp`),
`question`, `query_prompt` (str or None) and `task` (the task name). The user message must not depend on
the memory: the paper's retrieval query is the rendered user message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tasks.tokenization import TokenCounter

from .memory import Memory, MemoryEntry
from .profiles import Budget, Profile
from .templating import FileTemplateSet, TemplateSet

TEMPLATE_VERSION = "v2"  # the default profile's (v1@2)
DEFAULT_BUDGET = Budget("prompt", 0)
TEMPLATES = Path(__file__).parent / "templates"
# A prompt whose estimated size is under this share of the budget is not re-counted exactly: token
# counts of joined texts stay within a few percent of the sum of their parts.
SAFE_SHARE = 0.9
BASE_CACHE = 8  # core memories whose bare prompt size is kept


@dataclass(frozen=True)
class BuiltPrompt:
    messages: tuple[tuple[str, str], ...]
    semantic: tuple[int, ...]  # indices of the entries shown, in rank order
    episodic: tuple[int, ...]
    k: int
    tokens: int  # estimated from the parts when far inside the budget, else counted exactly
    core_truncated: bool
    over_floor: bool = False  # k went below the budget rule's min_k (the original raised there)


class ReaderPrompt:
    """Renders and sizes reader prompts for one template version (or a user's template file)."""

    def __init__(
        self,
        version: str = TEMPLATE_VERSION,
        *,
        template_file: str | Path | None = None,
        episodic_order: str = "memory",
        budget: Budget = DEFAULT_BUDGET,
    ):
        self._templates = FileTemplateSet(template_file) if template_file else TemplateSet(TEMPLATES, "reader", version)
        self.version = self._templates.version
        self.template_file = Path(template_file) if template_file else None
        self.episodic_order, self.rule = episodic_order, budget
        self._base: dict[tuple[int, str], int] = {}  # the latest cores only: questions come instance by instance
        self._query_prompts: dict[tuple[int, str], int] = {}

    @classmethod
    def for_profile(cls, profile: Profile, template_file: str | Path | None = None) -> ReaderPrompt:
        return cls(
            profile.template, template_file=template_file, episodic_order=profile.episodic_order, budget=profile.budget
        )

    def describe(self) -> dict[str, str]:
        """What scores.json records about the template."""
        out = {"name": f"reader_{self.version}", "sha256": self.sha256}
        if self.template_file:
            out["file"] = str(self.template_file)
        return out

    def _count(self, counter: TokenCounter, messages: Sequence[tuple[str, str]]) -> int:
        if self.rule.counts == "system":
            return counter.count(messages[0][1])
        return _count(counter, messages)

    def _base_tokens(self, core: str, counter: TokenCounter) -> int:
        """Tokens of the prompt with no entries and an empty question (cached per core memory)."""
        key = (id(counter), core)
        if key not in self._base:
            if len(self._base) >= BASE_CACHE:
                del self._base[next(iter(self._base))]
            self._base[key] = self._count(counter, self.render(core, (), (), "", None))
        return self._base[key]

    def _query_prompt_tokens(self, query_prompt: str, counter: TokenCounter) -> int:
        """Tokens of a task's query prompt (a task has one: counted once per run)."""
        key = (id(counter), query_prompt)
        if key not in self._query_prompts:
            self._query_prompts[key] = counter.count(query_prompt)
        return self._query_prompts[key]

    @cached_property
    def sha256(self) -> str:
        return self._templates.digest()

    def render_user(self, question: str, query_prompt: str | None, task: str = "") -> str:
        """The user message alone (it holds no memory)."""
        return self._templates.render("user", query_prompt=query_prompt, question=question, task=task)

    def _shown_episodic(self, memory: Memory, rank: Sequence[int]) -> list[MemoryEntry]:
        """The retrieved episodic entries in the profile's order: memory (chronological) or rank."""
        order = sorted(rank) if self.episodic_order == "memory" else rank
        return [memory.episodic[i] for i in order]

    def render(
        self,
        core: str,
        semantic: Sequence[MemoryEntry],
        episodic: Sequence[MemoryEntry],
        question: str,
        query_prompt: str | None,
        task: str = "",
    ) -> tuple[tuple[str, str], ...]:
        system = self._templates.render("system", core=core, semantic=semantic, episodic=episodic, task=task)
        return (("system", system), ("user", self.render_user(question, query_prompt, task)))

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
        task: str = "",
        question_tokens: int | None = None,
    ) -> BuiltPrompt:
        """The prompt with the largest k (≤ the ranks given) that fits `budget` tokens.

        `entry_tokens` holds the token count of each semantic/episodic entry (by index) as a prompt shows
        it, counted once per memory (`MemoryTokens`), so sizing costs no tokenizer call and shrinking k no
        re-rendering until the final exact check; `question_tokens` is the question's count, when known.
        """
        sem_tokens, epi_tokens = entry_tokens
        k_max = max(len(semantic_rank), len(episodic_rank))
        base = self._base_tokens(memory.core, counter)
        if self.rule.counts == "prompt":
            base += counter.count(question) if question_tokens is None else question_tokens
            base += self._query_prompt_tokens(query_prompt, counter) if query_prompt else 0

        def estimate(k: int) -> int:
            return int(
                base
                + sum(sem_tokens[i] + 2 for i in semantic_rank[:k])
                + sum(epi_tokens[i] + 2 for i in episodic_rank[:k])
            )

        def exact(k: int, core: str) -> tuple[tuple[tuple[str, str], ...], int]:
            shown_epi = self._shown_episodic(memory, episodic_rank[:k])
            messages = self.render(
                core, [memory.semantic[i] for i in semantic_rank[:k]], shown_epi, question, query_prompt, task
            )
            return messages, self._count(counter, messages)

        if estimate(k_max) <= SAFE_SHARE * budget:  # far inside the budget: no exact count needed
            shown_epi = self._shown_episodic(memory, episodic_rank)
            messages = self.render(
                memory.core, [memory.semantic[i] for i in semantic_rank], shown_epi, question, query_prompt, task
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
        over_floor = truncated or k < min(self.rule.min_k, k_max)
        return BuiltPrompt(
            messages, tuple(semantic_rank[:k]), tuple(episodic_rank[:k]), k, tokens, truncated, over_floor
        )


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
