"""Tool calls out of one model response, in the two formats the reference agent speaks.

- ``qwen3`` (the default): Qwen3's native ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  blocks, or the ``tool_calls`` list an OpenAI-compatible server already parsed out of them.
- ``qwen-agent``: the plain-text markers the released Memalpha-4B checkpoint was trained on
  (``✿FUNCTION✿: name`` then ``✿ARGS✿: {json}``, repeated), with the tools described in the system
  prompt by the qwen-agent package itself (`qwen_agent_messages`), as in training.

Arguments are parsed strictly with `json`. The one repair: text after a complete JSON object is
dropped (``{"a": 1} and then...``), the glitch models make most. Nothing else is repaired (single
quotes, unquoted keys, missing braces, truncated output): such a call keeps ``arguments=None`` and
an ``error``, and executing it fails cleanly, which the format reward counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from benchmark.agents.base import require

Format = Literal["qwen3", "qwen-agent"]
FORMATS: tuple[Format, ...] = ("qwen3", "qwen-agent")

FN_NAME, FN_ARGS, FN_RESULT, FN_EXIT = "✿FUNCTION✿", "✿ARGS✿", "✿RESULT✿", "✿RETURN✿"
# Generation should stop at these in the qwen-agent format: whatever follows is a result the model made up.
QWEN_AGENT_STOP = (FN_RESULT, FN_EXIT)
# How the original rendered the tool block (qwen-agent 0.0.29, the version the `qwen-agent` extra pins).
QWEN_AGENT_SETTINGS = {"lang": "en", "parallel_function_calls": True, "function_choice": "auto"}

_THINK_END = "</think>"
_OPEN, _CLOSE = "<tool_call>", "</tool_call>"
_FN_NAME = re.compile(re.escape(FN_NAME) + ":?")
_FN_ARGS = re.compile(re.escape(FN_ARGS) + ":?")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call: `arguments` is None exactly when `error` says why they could not be read.

    `raw_arguments` is the model's text the arguments came from: the ✿ARGS✿ text, the OpenAI
    arguments string, or for a ``<tool_call>`` block the whole block (re-encoding the decoded
    arguments would cost a third of the parsing time).
    """

    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    reasoning: str  # the text before the first call
    calls: tuple[ToolCall, ...]


def loads_object(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON object from `raw`, or None and what is wrong; text after a complete object is ignored."""
    text = raw.strip()
    try:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                return None, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            value = _DECODER.raw_decode(text)[0]
    except RecursionError:  # a model can emit "[[[[..." deep enough to exhaust the parser
        return None, "not valid JSON (nested too deep)"
    except ValueError as exc:  # an integer over 4,300 digits
        return None, f"not valid JSON ({exc})"
    if not isinstance(value, dict):
        return None, _not_an_object(value)
    return value, None


def _not_an_object(value: object) -> str:
    return f"not a JSON object ({type(value).__name__})"


def _call(name: str, raw: str) -> ToolCall:
    arguments, error = loads_object(raw)
    return ToolCall(name, arguments, raw, error and f"arguments: {error}")


def _without_thinking(text: str) -> str:
    """The text after the thinking: calls written while thinking are drafts, not calls.

    Thinking ends at the last ``</think>`` (the opening tag may be in the prompt, not the response); an
    unclosed ``<think>`` means the response ran out while still thinking.
    """
    end = text.rfind(_THINK_END)
    if end >= 0:
        text = text[end + len(_THINK_END) :]
    start = text.find("<think>")
    return text if start < 0 else text[:start]


def parse_qwen3(text: str) -> ParsedResponse:
    """Every ``<tool_call>`` block, in order; an unclosed last block (cut by the length limit) counts too."""
    text = _without_thinking(text)
    calls = []
    for block in _tool_call_blocks(text):
        obj, error = loads_object(block)
        if obj is None:
            calls.append(ToolCall("", None, block, f"tool call: {error}"))
            continue
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            calls.append(ToolCall("", None, block, "the tool call has no 'name'"))
            continue
        calls.append(_arguments_call(name, obj.get("arguments"), block))
    start = text.find(_OPEN)
    return ParsedResponse((text if start < 0 else text[:start]).strip(), tuple(calls))


def _tool_call_blocks(text: str) -> list[str]:
    """The inside of each ``<tool_call>`` block (plain `find`: a lazy regex is several times slower)."""
    blocks, pos = [], 0
    while (start := text.find(_OPEN, pos)) >= 0:
        start += len(_OPEN)
        end = text.find(_CLOSE, start)
        if end < 0:
            blocks.append(text[start:].strip())
            break
        blocks.append(text[start:end].strip())
        pos = end + len(_CLOSE)
    return blocks


def _arguments_call(name: str, arguments: object, raw: str | None = None) -> ToolCall:
    """A call from arguments given as an object or as a JSON string (both occur).

    `raw` is the text they were decoded from, when there is one.
    """
    if isinstance(arguments, str):
        return _call(name, arguments)
    if raw is None:
        raw = "" if arguments is None else json.dumps(arguments, ensure_ascii=False)
    if isinstance(arguments, dict):
        return ToolCall(name, arguments, raw)
    if arguments is None:
        return ToolCall(name, None, raw, "the tool call has no 'arguments'")
    return ToolCall(name, None, raw, f"arguments: {_not_an_object(arguments)}")


def from_openai_tool_calls(tool_calls: Iterable[Any] | None) -> list[ToolCall]:
    """Calls from an OpenAI-style ``message.tool_calls``: SDK objects or plain dicts."""
    calls = []
    for item in tool_calls or ():
        function = item.get("function") if isinstance(item, dict) else getattr(item, "function", None)
        if isinstance(function, dict):
            name, arguments = function.get("name"), function.get("arguments")
        else:
            name, arguments = getattr(function, "name", None), getattr(function, "arguments", None)
        if not isinstance(name, str) or not name:
            calls.append(ToolCall("", None, str(arguments or ""), "the tool call has no function name"))
            continue
        calls.append(_arguments_call(name, arguments))
    return calls


def parse_qwen_agent(text: str) -> ParsedResponse:
    """Calls in the ✿FUNCTION✿/✿ARGS✿ marker format.

    Everything from the first ✿RESULT✿ or ✿RETURN✿ on is dropped: the results are the model's own
    invention (the tools only run after the response), and so are any calls after them. Each ✿ARGS✿
    under one ✿FUNCTION✿ is a call of that tool (qwen-agent reads repeated ✿ARGS✿ that way); a tool
    name with no ✿ARGS✿ is a call that fails. Arguments that start with ``{`` end at their last ``}``.
    """
    text = _without_thinking(text)
    stop = min((i for i in (text.find(m) for m in QWEN_AGENT_STOP) if i >= 0), default=len(text))
    parts = _FN_NAME.split(text[:stop])
    calls = []
    for part in parts[1:]:
        pieces = _FN_ARGS.split(part)
        name = pieces[0].strip()
        if len(pieces) == 1:
            calls.append(ToolCall(name, None, "", f"no {FN_ARGS} after the tool name"))
        for raw in pieces[1:]:
            raw = raw.strip()
            if raw.startswith("{"):
                raw = raw[: raw.rfind("}") + 1]
            calls.append(_call(name, raw))
    return ParsedResponse(parts[0].strip(), tuple(calls))


def parse_response(text: str, fmt: Format) -> ParsedResponse:
    if fmt == "qwen3":
        return parse_qwen3(text)
    if fmt == "qwen-agent":
        return parse_qwen_agent(text)
    raise ValueError(f"unknown tool-call format {fmt!r}; use one of {', '.join(FORMATS)}")


def qwen_agent_messages(
    messages: Sequence[Mapping[str, str]], schemas: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    """The messages with the tools described in the system message by qwen-agent's own
    `QwenFnCallPrompt.preprocess_fncall_messages`, called as the original called it
    (`QWEN_AGENT_SETTINGS`; the functions as bare function schemas). Needs the `qwen-agent` extra."""
    fncall = require(
        "qwen_agent.llm.fncall_prompts.qwen_fncall_prompt", "qwen-agent", "the qwen-agent tool-call format"
    )
    schema = require("qwen_agent.llm.schema", "qwen-agent", "the qwen-agent tool-call format")
    functions = [dict(s.get("function", s)) for s in schemas]  # OpenAI tool format, or the bare function
    given = [schema.Message(role=m["role"], content=[schema.ContentItem(text=m["content"])]) for m in messages]
    processed = fncall.QwenFnCallPrompt.preprocess_fncall_messages(
        messages=given, functions=functions, **QWEN_AGENT_SETTINGS
    )
    return [{"role": m.role, "content": "".join(item.text for item in m.content)} for m in processed]


def qwen_agent_version() -> str:
    """The installed qwen-agent's version (the tool block's wording depends on it)."""
    from importlib.metadata import version

    require("qwen_agent", "qwen-agent", "the qwen-agent tool-call format")
    return version("qwen-agent")
