"""What a chat-completions reply means: an answer, or a problem that a retry may or may not cure.

Retried (as a 5xx is): 429, 408 and 5xx statuses, and every malformed 200 — a body that is not JSON
(an HTML page, a reply cut short), no `choices`, no message, content that is null or missing without
tool calls, or generation cut at max_tokens before any answer. Not retried: other 4xx statuses (the
same request cannot pass later). Error messages carry the server's own explanation.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.readers.base import ReaderResponse, missing_answer
from benchmark.readers.transport import HttpReply
from tasks.strict_json import JsonProblem, decode, decode_reply

MAX_MESSAGE_CHARS = 300
TEMPLATE_KWARGS = "chat_template_kwargs"


class ReplyProblem(Exception):
    """A reply that holds no answer. `kind` groups problems of one cause (for the early-stop rule);
    `retry_after` is the wait in seconds the server asked for (Retry-After), if any."""

    def __init__(self, reason: str, *, retryable: bool, kind: str | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.kind = kind or reason
        self.retry_after = retry_after


class FieldRejected(ReplyProblem):
    """A 400 that names `chat_template_kwargs`: the server does not take that field (the OpenAI API)."""


def is_retryable_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


def server_message(body: bytes, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The explanation in an error body: `error.message` (OpenAI, vLLM), `detail` (FastAPI), `message`,
    else the text itself with HTML tags and runs of white space removed; cut to `limit` characters."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = decode(text)
    except JsonProblem:
        parsed = None
    message: Any = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        message = message or parsed.get("detail") or parsed.get("message")
    if message is None:
        message = re.sub(r"<[^>]*>", " ", text)
    message = message if isinstance(message, str) else json.dumps(message)
    message = " ".join(message.split())
    if not message:
        return "(empty body)"
    return message if len(message) <= limit else message[: limit - 1] + "…"


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a reply asks for: `retry-after-ms` (OpenAI), else `Retry-After` in seconds or as an
    HTTP date; None when absent or unreadable."""
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def function_calls(tool_calls: Sequence[Any] | None) -> list[dict[str, str]] | None:
    """The function calls of a reply's `message.tool_calls` as `{"name", "arguments"}`, or None if there
    are none. A name or arguments the server left out become "" (the agent counts such a call as failed
    rather than losing it); arguments sent as an object become its JSON text; custom (non-function)
    tool calls are not ours and are left out."""
    calls = []
    for call in tool_calls or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments") or ""
        calls.append(
            {
                "name": function.get("name") or "",
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False),
            }
        )
    return calls or None


def _token_counts(usage: Any) -> tuple[int, int]:
    """(prompt, completion) tokens of a reply's `usage`; 0 where the server gives none."""
    try:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    except AttributeError:  # no usage object
        return 0, 0
    return (prompt if isinstance(prompt, int) else 0), (completion if isinstance(completion, int) else 0)


def read_reply(reply: HttpReply) -> ReaderResponse:
    """The answer in a reply, or ReplyProblem saying why there is none. (Runs once per request: the
    common case is read first, the checks that name a problem run only when it fails.)"""
    if not 200 <= reply.status < 300:
        message = server_message(reply.body)
        reason = f"HTTP {reply.status}: {message}"
        if reply.status == 400 and TEMPLATE_KWARGS in message:
            raise FieldRejected(reason, retryable=False)
        retryable = is_retryable_status(reply.status)
        raise ReplyProblem(reason, retryable=retryable, retry_after=retry_after_seconds(reply.headers))
    try:
        body = decode_reply(reply.body)
    except JsonProblem as problem:
        snippet = server_message(reply.body, 80)
        raise ReplyProblem(
            f"the reply is not JSON we accept ({problem.message}; {len(reply.body)} bytes: {snippet})",
            retryable=True,
            kind="not JSON",
        ) from None
    try:
        choice = body["choices"][0]
        message = choice["message"]
        content = message.get("content")
        calls = message.get("tool_calls")
        finish_reason = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _shape_problem(body) from None
    if content is not None and not isinstance(content, str):
        raise ReplyProblem(f"the reply's content is a {type(content).__name__}, not text", retryable=True)
    tool_calls = function_calls(calls) if calls else None
    problem = missing_answer(content, finish_reason, tool_calls is not None)
    if problem:
        raise ReplyProblem(problem, retryable=True)
    prompt_tokens, completion_tokens = _token_counts(body.get("usage"))
    return ReaderResponse.from_raw(content or "", prompt_tokens, completion_tokens, tool_calls=tool_calls)


def _shape_problem(body: Any) -> ReplyProblem:
    """What is missing from a JSON reply that is not a chat completion."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices:
        return ReplyProblem("the reply has no choices", retryable=True)
    return ReplyProblem("the reply's first choice has no message", retryable=True)
