"""The `openai` backend: any OpenAI-compatible chat server (vLLM, SGLang, `transformers serve`, OpenAI).

Requests with tools send them as `tools=` and read back the calls the server parsed out of the output
(`message.tool_calls`); a server without a tool-call parser leaves them in the text. vLLM parses
Qwen3's calls when started with `--enable-auto-tool-choice --tool-call-parser hermes`, and rejects
requests with tools without these flags.

Requests run concurrently (at most `concurrency` at a time), each with its own timeout, and are
retried with exponential backoff and jitter on rate limits, server errors, timeouts and connection
failures. Other client errors (400, 401, 404, ...) are not retried: sending the same request again
cannot fix them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
from collections.abc import Sequence
from typing import Any

import openai

from benchmark.readers.base import OnResult, ReaderError, ReaderRequest, ReaderResponse

MAX_BACKOFF_S = 60.0


def is_retryable(error: BaseException) -> bool:
    """Rate limits, 5xx, timeouts and connection errors may pass on a later try; nothing else will."""
    if isinstance(error, openai.APIStatusError):
        return error.status_code == 429 or error.status_code >= 500
    return isinstance(error, openai.APIConnectionError | TimeoutError)


def backoff_delay(attempt: int, base: float) -> float:
    """Exponential backoff with equal jitter: half the step is fixed, half random, so many clients that
    failed together do not retry together."""
    step = min(MAX_BACKOFF_S, base * 2**attempt)
    return step / 2 + random.uniform(0, step / 2)


class _Stop(Exception):
    """A request that was not sent because another one had already failed for good."""


class OpenAIReader:
    """Chat completions from an OpenAI-compatible server at `base_url` (e.g. http://host:8000/v1).

    `max_retries` counts the tries after the first; `backoff` is the first retry's delay step in
    seconds. The API key comes from `api_key`, else $OPENAI_API_KEY, else "EMPTY" (local servers
    ignore it).
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        concurrency: int = 16,
        timeout: float = 120,
        max_retries: int = 5,
        backoff: float = 1.0,
        api_key: str | None = None,
    ):
        if concurrency < 1:
            raise ReaderError(f"concurrency must be at least 1, got {concurrency}")
        self.model = model
        self.base_url = base_url
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"

    def describe(self) -> dict:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url}

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        """Answer all requests; runs its own event loop (in a worker thread if the calling thread
        already runs one)."""
        if not requests:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._generate(requests, on_result))
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self._generate(requests, on_result)).result()

    async def _generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None) -> list[ReaderResponse]:
        semaphore = asyncio.Semaphore(self.concurrency)
        failed = asyncio.Event()

        async def answer(i: int, request: ReaderRequest) -> ReaderResponse:
            async with semaphore:
                if failed.is_set():
                    raise _Stop
                try:
                    response = await self._answer_with_retries(client, request)
                    if on_result is not None:
                        on_result(i, response)
                except Exception:
                    failed.set()
                    raise
            return response

        # One client per call: its connection pool belongs to this event loop.
        async with openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._api_key, timeout=self.timeout, max_retries=0
        ) as client:
            results = await asyncio.gather(*(answer(i, r) for i, r in enumerate(requests)), return_exceptions=True)
        errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
        for _, error in errors:
            if not isinstance(error, ReaderError | _Stop):
                raise error
        failures = [(i, e) for i, e in errors if isinstance(e, ReaderError)]
        if failures:
            first_index, first_error = failures[0]
            skipped = len(errors) - len(failures)
            raise ReaderError(
                f"{len(failures)} of {len(requests)} requests failed"
                + (f" and {skipped} were not sent" if skipped else "")
                + f"; the first (request {first_index}): {first_error}"
            ) from first_error
        return [r for r in results if isinstance(r, ReaderResponse)]

    async def _answer_with_retries(self, client: openai.AsyncOpenAI, request: ReaderRequest) -> ReaderResponse:
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._answer(client, request)
            except (openai.OpenAIError, TimeoutError) as error:
                if not is_retryable(error) or attempt == self.max_retries:
                    raise ReaderError(
                        f"server {self.base_url}, model {self.model!r}: gave up after {attempt + 1} "
                        f"attempt(s); last error: {_describe_error(error)}"
                    ) from error
            await asyncio.sleep(backoff_delay(attempt, self.backoff))
            attempt += 1

    async def _answer(self, client: openai.AsyncOpenAI, request: ReaderRequest) -> ReaderResponse:
        params = request.params
        completion = await client.chat.completions.create(
            model=self.model,
            messages=request.message_dicts(),  # type: ignore[arg-type]
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=list(params.stop) if params.stop else openai.omit,
            tools=request.tool_dicts() or openai.omit,  # type: ignore[arg-type]
            extra_body={"chat_template_kwargs": {"enable_thinking": params.enable_thinking}},
        )
        if not completion.choices:
            raise ReaderError(f"server {self.base_url}, model {self.model!r}: a completion without choices")
        usage = completion.usage
        message = completion.choices[0].message
        return ReaderResponse.from_raw(
            message.content or "",
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            tool_calls=function_calls(message.tool_calls),
        )


def function_calls(tool_calls: Sequence[Any] | None) -> list[dict[str, str]] | None:
    """The function calls of `message.tool_calls` as `{"name", "arguments"}`, or None if there are none.

    A name or arguments the server left out become "" (the agent counts such a call as failed rather
    than losing it); custom (non-function) tool calls are not ours and are left out.
    """
    calls = [
        {"name": call.function.name or "", "arguments": call.function.arguments or ""}
        for call in tool_calls or ()
        if getattr(call, "function", None) is not None
    ]
    return calls or None


def _describe_error(error: BaseException) -> str:
    if isinstance(error, TimeoutError | openai.APITimeoutError):
        return "timed out"
    if isinstance(error, openai.APIStatusError):
        detail = error.message.removeprefix(f"Error code: {error.status_code}").removeprefix(" - ")
        return f"HTTP {error.status_code}: {detail or _body_text(error.body)}"
    cause = f" ({type(error.__cause__).__name__}: {error.__cause__})" if error.__cause__ else ""
    return f"{type(error).__name__}: {error}{cause}"


def _body_text(body: object) -> str:
    """The server's own words when the client found no OpenAI-style `error.message`: FastAPI's `detail`
    (as `transformers serve` answers), a bare `message`, else the body itself, cut short."""
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if body.get(key):
                return str(body[key])[:500]
    return str(body)[:500] if body else "(no body)"
