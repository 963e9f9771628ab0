"""What every reader backend shares: requests, sampling settings, responses, errors, the protocol.

A reader answers chat conversations. Requests are frozen and hashable so that a response cache can
key on them; responses carry both the raw model output and the answer with any <think> block removed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypeVar

from benchmark.metrics import strip_think
from tasks.errors import TaskError

OnResult = Callable[[int, "ReaderResponse"], None]
"""Called with (request index, response) as soon as a request is answered."""


class ReaderError(TaskError):
    """A reader that cannot answer: a missing backend, an unreachable server, a rejected request."""


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings of one request. Defaults: greedy, Qwen3 thinking off."""

    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    enable_thinking: bool = False
    stop: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """Plain JSON-ready values (for cache keys and reports)."""
        return {**asdict(self), "stop": list(self.stop)}


@dataclass(frozen=True)
class ReaderRequest:
    """One chat conversation to answer: (role, content) messages and the sampling settings."""

    messages: tuple[tuple[str, str], ...]
    params: SamplingParams = field(default_factory=SamplingParams)

    @classmethod
    def chat(cls, messages: Iterable[Mapping[str, str]], params: SamplingParams | None = None) -> ReaderRequest:
        """Build a request from OpenAI-style `{"role", "content"}` dicts."""
        return cls(tuple((m["role"], m["content"]) for m in messages), params or SamplingParams())

    def message_dicts(self) -> list[dict[str, str]]:
        """The messages as OpenAI-style dicts, as chat APIs and chat templates take them."""
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass
class ReaderResponse:
    """A reader's answer. `text` is `raw_text` without its <think> block; `cached` marks cache hits."""

    text: str
    raw_text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False

    @classmethod
    def from_raw(
        cls, raw_text: str, prompt_tokens: int, completion_tokens: int, cached: bool = False
    ) -> ReaderResponse:
        """The one place where the answer text is derived from the raw output."""
        return cls(strip_think(raw_text), raw_text, prompt_tokens, completion_tokens, cached)


class Reader(Protocol):
    """A model that answers batches of chat requests."""

    def describe(self) -> dict:
        """Backend, model, server address and every setting that changes answers (never an API key)."""
        ...

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        """Answer all requests, in order. `on_result(i, response)` is called as soon as request i is
        answered, so a caller can persist progress; a failure raises ReaderError after the requests
        already under way have finished (and been reported)."""
        ...


K = TypeVar("K", bound=Hashable)


def group_indices(requests: Sequence[ReaderRequest], key: Callable[[ReaderRequest], K]) -> dict[K, list[int]]:
    """Request indices grouped by `key(request)`, in first-seen order (for backends that batch only
    requests sharing settings)."""
    groups: dict[K, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(key(request), []).append(i)
    return groups
