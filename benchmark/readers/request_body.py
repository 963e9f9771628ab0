"""The body of a chat-completions request, as the `openai` backend sends it.

A scoring run sends thousands of requests that differ only in their messages: the model, sampling
settings, tools and template field repeat. `BodyFrame` encodes those once; `ChatBody.encode` encodes
only the messages' texts per request, with `orjson` (UTF-8, 0.19 µs for a 4 KB system message against
5.6 µs for the standard library's ASCII escaping, docs/performance.md), and writes the JSON around them
without building the body's dict. The JSON value is that of `body.fields()`. A text that is not valid
Unicode (a lone surrogate, which `orjson` refuses) is written with ASCII escapes instead, as `json`
writes it, so that it stays valid JSON text.
"""

from __future__ import annotations

import functools
import json
from json.encoder import encode_basestring_ascii
from typing import Any

import orjson

from benchmark.readers.base import SamplingParams
from benchmark.readers.replies import TEMPLATE_KWARGS


@functools.lru_cache(maxsize=64)
def tool_schemas(tools: str) -> list[dict[str, Any]]:
    """A request's tool schemas, parsed once per schema text (an agent sends the same tools with every
    chunk). The list is shared: nothing may change it."""
    return json.loads(tools)


@functools.lru_cache(maxsize=16)
def _message_start(role: str) -> bytes:
    return b'{"role":' + json_text(role) + b',"content":'


def _compact_json(value: Any) -> bytes:
    """A frame's fields (encoded once per frame, so the standard library's speed does not matter)."""
    return json.dumps(value, separators=(",", ":")).encode()


def json_text(text: str) -> bytes:
    """`text` as a JSON string: UTF-8, or ASCII escapes where it is not valid Unicode."""
    try:
        return orjson.dumps(text)
    except TypeError:  # a lone surrogate
        return encode_basestring_ascii(text).encode()


class BodyFrame:
    """Everything in a body but the messages: `head` is the JSON text up to the messages' `[`, `tail`
    from their `]` to the end (UTF-8); `before` and `after` the same fields as values. Shared by many bodies:
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
        self.head = _compact_json(self.before)[:-1] + b',"messages":['
        self.tail = b"]," + _compact_json(after)[1:]


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
        """The body as JSON text, UTF-8."""
        parts = [self.frame.head]
        for role, content in self.messages:
            parts += (_message_start(role), json_text(content), b"},")
        if len(parts) > 1:
            parts[-1] = b"}"
        parts.append(self.frame.tail)
        return b"".join(parts)
