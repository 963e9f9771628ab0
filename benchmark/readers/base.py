"""What every reader backend shares: requests, sampling settings, responses, errors, the protocol.

A reader answers chat conversations. Requests are frozen and hashable so that a response cache can
key on them; responses carry both the raw model output and the answer with any <think> block removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

from benchmark.metrics import THINK_CLOSE, THINK_OPEN, strip_think
from tasks.errors import TaskError

OnResult = Callable[[int, "ReaderResponse"], None]
"""Called with (request index, response) as soon as a request is answered."""


class ReaderError(TaskError):
    """A reader that cannot answer: a missing backend, an unreachable server, a rejected request."""


class RequestsFailed(ReaderError):
    """Some requests of a call failed for good (after their retries); every other request was answered
    and reported through `on_result`. `failures` maps a request's index to the reason, in index order."""

    def __init__(self, failures: Mapping[int, str], total: int):
        self.failures = dict(sorted(failures.items()))
        self.total = total
        first, reason = next(iter(self.failures.items()))
        super().__init__(f"{len(self.failures)} of {total} requests failed; the first (request {first}): {reason}")


SYSTEMATIC_AFTER = 16
"""How many requests must fail the same way, with none answered, before a call stops early."""


class FailureTally:
    """The requests of one call that failed for good, and the rule that stops the call early.

    One prompt the server rejects fails that request alone. But when the first `SYSTEMATIC_AFTER`
    requests to settle (every request, in a smaller call) all failed for the same reason and none was
    answered, the fault lies with the server or the settings (a wrong model, a bad key, a dead
    server): `stop_reason` is set, callers send nothing more and `check` raises with that reason.
    `reason` is what a user reads; `kind` (default: the reason) is what must match.
    """

    def __init__(self, total: int):
        self.total = total
        self.answered = 0
        self.failures: dict[int, str] = {}
        self._kinds: set[str] = set()
        self.stop_reason: str | None = None

    def answer(self) -> None:
        self.answered += 1

    def fail(self, index: int, reason: str, kind: str | None = None) -> None:
        self.failures[index] = reason
        self._kinds.add(kind or reason)
        settled = len(self.failures)
        if self.answered == 0 and len(self._kinds) == 1 and settled >= min(self.total, SYSTEMATIC_AFTER):
            self.stop_reason = reason

    def check(self) -> None:
        """Raise for a stopped call (ReaderError) or for failed requests (RequestsFailed)."""
        if self.stop_reason is not None:
            raise ReaderError(
                f"stopped after the first {len(self.failures)} request(s) all failed the same way and none "
                f"was answered: {self.stop_reason}"
            )
        if self.failures:
            raise RequestsFailed(self.failures, self.total)


def missing_answer(raw_text: str | None, finish_reason: str | None, has_tool_calls: bool) -> str | None:
    """Why a reply holds no answer to score, or None when it holds one: no content at all (and no tool
    calls), or generation cut at max_tokens inside a `<think>` block, before any answer began. A reply
    that reached the limit after its answer began is an answer, as the model gave it."""
    if has_tool_calls:
        return None
    if raw_text is None:
        return "the reply has no content"
    if finish_reason == "length" and THINK_OPEN in raw_text.rpartition(THINK_CLOSE)[2]:
        return "the reply was cut at max_tokens while still reasoning, before any answer (finish_reason length)"
    return None


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

    def request_fields(self) -> dict[str, Any]:
        """The decoding settings as the OpenAI API and vLLM name them; `stop` only when there is one."""
        fields: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p}
        if self.stop:
            fields["stop"] = list(self.stop)
        return fields


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


@dataclass(slots=True)
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
        answered, so a caller can persist progress. Requests that fail for good raise RequestsFailed
        once every other request was answered (and reported); a call that cannot work at all (a missing
        backend, every request failing the same way) raises ReaderError."""
        ...


K = TypeVar("K", bound=Hashable)


def group_indices(requests: Sequence[ReaderRequest], key: Callable[[ReaderRequest], K]) -> dict[K, list[int]]:
    """Request indices grouped by `key(request)`, in first-seen order (for backends that batch only
    requests sharing settings)."""
    groups: dict[K, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(key(request), []).append(i)
    return groups
