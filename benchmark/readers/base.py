"""What every reader backend shares: requests, sampling settings, responses, errors, the protocol.

A reader answers chat conversations. Requests are frozen and hashable so that a response cache can
key on them; responses carry both the raw model output and the answer with any <think> block removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

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


def tools_json(tools: Sequence[Mapping[str, Any]] | None) -> str | None:
    """Tool schemas as the JSON text a request holds. Key order is kept, not sorted: chat templates
    print the schemas as given, so the order is part of the prompt."""
    return None if tools is None else json.dumps(list(tools), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class ReaderRequest:
    """One chat conversation to answer: (role, content) messages, the sampling settings and, optionally,
    the tools the model may call (OpenAI-style function schemas as JSON text, see `tools_json`; a
    string keeps the request hashable)."""

    messages: tuple[tuple[str, str], ...]
    params: SamplingParams = field(default_factory=SamplingParams)
    tools: str | None = None

    @classmethod
    def chat(
        cls,
        messages: Iterable[Mapping[str, str]],
        params: SamplingParams | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ReaderRequest:
        """Build a request from OpenAI-style `{"role", "content"}` dicts and tool schemas."""
        return cls(tuple((m["role"], m["content"]) for m in messages), params or SamplingParams(), tools_json(tools))

    def message_dicts(self) -> list[dict[str, str]]:
        """The messages as OpenAI-style dicts, as chat APIs and chat templates take them."""
        return [{"role": role, "content": content} for role, content in self.messages]

    def tool_dicts(self) -> list[dict[str, Any]] | None:
        """The tool schemas as chat APIs (`tools=`) and chat templates take them, or None."""
        return None if self.tools is None else json.loads(self.tools)


@dataclass
class ReaderResponse:
    """A reader's answer. `text` is `raw_text` without its <think> block; `cached` marks cache hits.

    `tool_calls` are the calls a server parsed out of the output itself (the openai backend, when
    the request had tools and the server parses them), as `{"name", "arguments"}` with the arguments
    as the JSON text the model wrote; None when the server returned none. The in-process backends
    never parse: their calls stay in `raw_text`.
    """

    text: str
    raw_text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False
    tool_calls: list[dict[str, str]] | None = None

    @classmethod
    def from_raw(
        cls,
        raw_text: str,
        prompt_tokens: int,
        completion_tokens: int,
        cached: bool = False,
        tool_calls: list[dict[str, str]] | None = None,
    ) -> ReaderResponse:
        """The one place where the answer text is derived from the raw output."""
        return cls(strip_think(raw_text), raw_text, prompt_tokens, completion_tokens, cached, tool_calls)


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
