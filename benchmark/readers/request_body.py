"""The body of a chat-completions request, as the `openai` backend sends it.

A scoring run sends thousands of requests that differ only in their messages: the model, sampling
settings, tools and template field repeat. `BodyFrame` encodes those once; `ChatBody.encode` escapes
only the messages' texts per request and writes the JSON around them, without building the body's
dict. The bytes are the same as `json.dumps(body.fields()).encode()` (ASCII escapes, so a lone
surrogate stays valid JSON text); `json.dumps` of the dict took 18 µs against 12 µs for this with a
4 KB system message (docs/performance.md).
"""

from __future__ import annotations

import functools
import json
from json.encoder import encode_basestring_ascii
from typing import Any

from benchmark.readers.base import SamplingParams
from benchmark.readers.replies import TEMPLATE_KWARGS


@functools.lru_cache(maxsize=64)
def tool_schemas(tools: str) -> list[dict[str, Any]]:
    """A request's tool schemas, parsed once per schema text (an agent sends the same tools with every
    chunk). The list is shared: nothing may change it."""
    return json.loads(tools)


@functools.lru_cache(maxsize=16)
def _message_start(role: str) -> str:
    return '{"role": ' + encode_basestring_ascii(role) + ', "content": '


class BodyFrame:
    """Everything in a body but the messages: `head` is the JSON text up to the messages' `[`, `tail`
    from their `]` to the end; `before` and `after` the same fields as values. Shared by many bodies:
    nothing may change it."""

    __slots__ = ("after", "before", "head", "tail")

    def __init__(self, model: str, params: SamplingParams, tools: str | None, template_kwargs: bool):
        self.before: dict[str, Any] = {"model": model}
        after = params.request_fields()
        if tools is not None:
            after["tools"] = tool_schemas(tools)
        if template_kwargs:
            after[TEMPLATE_KWARGS] = {"enable_thinking": params.enable_thinking}
        self.after = after
        self.head = json.dumps(self.before)[:-1] + ', "messages": ['
        self.tail = "], " + json.dumps(after)[1:]


class ChatBody:
    """One request's body: its messages ((role, text) pairs) in a frame."""

    __slots__ = ("frame", "messages")

    def __init__(self, messages: tuple[tuple[str, str], ...], frame: BodyFrame):
        self.messages = messages
        self.frame = frame

    def fields(self) -> dict[str, Any]:
        """The body's JSON fields (for clients that encode them themselves, such as the openai SDK)."""
        messages = [{"role": role, "content": content} for role, content in self.messages]
        return {**self.frame.before, "messages": messages, **self.frame.after}

    def encode(self) -> bytes:
        """The body as JSON text, ASCII only."""
        parts = [self.frame.head]
        for role, content in self.messages:
            parts += (_message_start(role), encode_basestring_ascii(content), "}, ")
        if len(parts) > 1:
            parts[-1] = "}"
        parts.append(self.frame.tail)
        return "".join(parts).encode()
