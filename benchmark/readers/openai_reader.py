"""The `openai` backend: any OpenAI-compatible chat server (vLLM, SGLang, `transformers serve`, OpenAI),
or several serving the same model.

Requests run concurrently, at most `concurrency` at a time in all, each sent to the server with the
fewest requests in flight. Each try has its own timeout. Rate limits, server errors, timeouts,
connection failures and malformed replies (see `replies.py`) are retried with exponential backoff
and jitter, or after the wait a `Retry-After` header asks for; other client errors (400, 401, 404,
...) are not, since the same request cannot pass later. A request that still fails fails alone: the
others are answered and the call then raises RequestsFailed naming each failed request and why
(unless every request fails the same way: then the call stops early, see `FailureTally`).

`chat_template_kwargs` (Qwen3's thinking switch) is a vLLM/SGLang/`transformers serve` field that
the OpenAI API rejects. `template_kwargs`: `send` always sends it, `omit` never does, `auto` (the
default) sends it except to api.openai.com, and stops sending it to a server whose 400 names it (then
the request goes again at once, without it).

Requests with tools send them as `tools=` and read back the calls the server parsed out of the output
(`message.tool_calls`); a server without a tool-call parser leaves them in the text. vLLM parses
Qwen3's calls when started with `--enable-auto-tool-choice --tool-call-parser hermes`, and rejects
requests with tools without these flags.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import random
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from benchmark.readers.base import FailureTally, OnResult, ReaderError, ReaderRequest, ReaderResponse, SamplingParams
from benchmark.readers.replies import FieldRejected, ReplyProblem, read_reply
from benchmark.readers.request_body import BodyFrame, ChatBody
from benchmark.readers.transport import (
    CLIENTS,
    BackgroundTasks,
    HttpReply,
    Transport,
    TransportError,
    make_transport,
    post,
)

MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 600.0
# `chat_template_kwargs` (Qwen3's thinking switch) is a vLLM/SGLang/`transformers serve` field that the
# OpenAI API rejects: `auto` sends it except to these hosts (the LangMem agent follows the same rule).
TEMPLATE_KWARGS_MODES = ("auto", "send", "omit")
HOSTS_WITHOUT_TEMPLATE_KWARGS = frozenset({"api.openai.com"})


def backoff_delay(attempt: int, base: float) -> float:
    """Exponential backoff with equal jitter: half the step is fixed, half random, so many clients that
    failed together do not retry together."""
    step = min(MAX_BACKOFF_S, base * 2**attempt)
    return step / 2 + random.uniform(0, step / 2)


async def pause(seconds: float) -> None:
    """The wait before a retry (one function, so that tests can record the waits)."""
    await asyncio.sleep(seconds)


class _RequestFailed(Exception):
    """One request that failed for good: `reason` for the user, `kind` for the early-stop rule."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason)
        self.reason, self.kind = reason, kind


class _Server:
    """One base URL of the reader: its transport, its requests in flight, whether it takes the
    template field."""

    def __init__(self, base_url: str, transport: Transport, send_template_kwargs: bool):
        self.base_url = base_url
        self.transport = transport
        self.send_template_kwargs = send_template_kwargs
        self.in_flight = 0


class OpenAIReader:
    """Chat completions from one or several OpenAI-compatible servers serving `model`.

    `base_url` is one address (e.g. http://host:8000/v1) or a list of them. `max_retries` counts the
    tries after the first; `backoff` is the first retry's delay step in seconds. The API key comes
    from `api_key`, else $OPENAI_API_KEY, else "EMPTY" (local servers ignore it). `http_client`:
    `fast` (our asyncio client), `openai` (the openai SDK), or `auto` (fast unless the environment
    sets a proxy for the server).
    """

    def __init__(
        self,
        model: str,
        base_url: str | Sequence[str],
        *,
        concurrency: int = 16,
        timeout: float = 120,
        max_retries: int = 5,
        backoff: float = 1.0,
        api_key: str | None = None,
        template_kwargs: str = "auto",
        http_client: str = "auto",
    ):
        self.base_urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not self.base_urls:
            raise ReaderError("the openai backend needs a server address (base_url, e.g. http://localhost:8000/v1)")
        if concurrency < 1:
            raise ReaderError(f"concurrency must be at least 1, got {concurrency}")
        if timeout <= 0:
            raise ReaderError(f"timeout must be more than 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ReaderError(f"max_retries must be 0 or more, got {max_retries}")
        if template_kwargs not in TEMPLATE_KWARGS_MODES:
            modes = ", ".join(TEMPLATE_KWARGS_MODES)
            raise ReaderError(f"template_kwargs must be one of {modes}, got {template_kwargs!r}")
        if http_client not in CLIENTS:
            raise ReaderError(f"http_client must be one of {', '.join(CLIENTS)}, got {http_client!r}")
        self.model = model
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.template_kwargs = template_kwargs
        self.http_client = http_client
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._rejected_template_kwargs: set[str] = set()  # servers that answered 400 to the field
        self._turn = 0
        # the frames of the bodies sent (one per sampling settings, tools, template field), the last one
        # found by identity (a run's requests usually share their settings object)
        self._frames: dict[tuple[SamplingParams, str | None, bool], BodyFrame] = {}
        self._last_frame: tuple[Any, Any, Any, Any] = (None, None, None, None)

    @property
    def base_url(self) -> str:
        return self.base_urls[0]

    @property
    def api_key(self) -> str:
        """The key sent to the servers (never described, so never recorded)."""
        return self._api_key

    def one_per_server(self) -> list[OpenAIReader]:
        """A reader per server, with this one's model, key and settings: a request goes to one server
        only, so the preflight asks each server through its own."""
        return [
            OpenAIReader(
                self.model,
                url,
                concurrency=1,
                timeout=self.timeout,
                max_retries=self.max_retries,
                backoff=self.backoff,
                api_key=self._api_key,
                template_kwargs=self.template_kwargs,
                http_client=self.http_client,
            )
            for url in self.base_urls
        ]

    def describe(self) -> dict:
        """Backend, model and server(s); how `chat_template_kwargs` is sent (servers and this mode do
        not enter cache keys: they do not change what a model answers)."""
        description: dict[str, Any] = {"backend": "openai", "model": self.model, "base_url": self.base_url}
        if len(self.base_urls) > 1:
            description["base_urls"] = list(self.base_urls)
        description["template_kwargs"] = self.template_kwargs
        if self._rejected_template_kwargs:
            description["template_kwargs_rejected_by"] = sorted(self._rejected_template_kwargs)
        return description

    def sends_template_kwargs(self, base_url: str) -> bool:
        """Whether a request to `base_url` carries `chat_template_kwargs` (see the module docstring)."""
        if self.template_kwargs != "auto":
            return self.template_kwargs == "send"
        host = urlsplit(base_url).hostname or ""
        return host not in HOSTS_WITHOUT_TEMPLATE_KWARGS and base_url not in self._rejected_template_kwargs

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
        servers = [
            _Server(url, make_transport(self.http_client, url, self._api_key), self.sends_template_kwargs(url))
            for url in self.base_urls
        ]
        run = _Run(self, servers, requests, on_result)
        try:
            run.start()
            await run.finished
        finally:
            run.stop()
            for server in servers:
                await server.transport.aclose()
        run.tally.check()
        return [r for r in run.results if r is not None]

    def _pick(self, servers: list[_Server], avoid: _Server | None) -> _Server:
        """The server with the fewest requests in flight (ties in turn); a retry avoids the server that
        just failed when there is another."""
        if len(servers) == 1:
            return servers[0]
        candidates = [s for s in servers if s is not avoid] or servers
        self._turn += 1
        start = self._turn % len(candidates)
        rotated = candidates[start:] + candidates[:start]
        return min(rotated, key=lambda s: s.in_flight)

    def _payload(self, request: ReaderRequest, server: _Server) -> ChatBody:
        params, tools, with_field = request.params, request.tools, server.send_template_kwargs
        last = self._last_frame
        if last[0] is params and last[1] is tools and last[2] is with_field:
            return ChatBody(request.messages, last[3])
        key = (params, tools, with_field)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = BodyFrame(self.model, params, tools, with_field)
        self._last_frame = (params, tools, with_field, frame)
        return ChatBody(request.messages, frame)

    async def _answer_after(
        self, servers: list[_Server], request: ReaderRequest, server: _Server, with_field: bool, problem: Exception
    ) -> ReaderResponse:
        """Retry a request whose first try, on `server` (with the template field or not), failed with
        `problem`: the answer, or _RequestFailed."""
        attempt = 0
        while True:
            delay = self._after_failure(server, with_field, problem, attempt)
            if delay is not None:
                await pause(delay)
                attempt += 1
            server = self._pick(servers, server if attempt else None)
            with_field = server.send_template_kwargs
            server.in_flight += 1
            try:
                return read_reply(await post(server.transport, self._payload(request, server), self.timeout))
            except (ReplyProblem, TimeoutError, TransportError) as error:
                problem = error
            finally:
                server.in_flight -= 1

    def _after_failure(self, server: _Server, with_field: bool, problem: Exception, attempt: int) -> float | None:
        """What follows try `attempt` (0 is the first) failing with `problem`: the wait before the next try,
        None to send the same try again at once (without the template field, which the server just
        rejected), or _RequestFailed when the request fails for good."""
        if isinstance(problem, FieldRejected):
            if self.template_kwargs != "auto" or not with_field:
                raise self._failure(server, problem.reason, problem.kind, attempt) from problem
            # the same request goes again at once, without the field (and so do those sent with it before
            # the first rejection came back)
            server.send_template_kwargs = False
            self._rejected_template_kwargs.add(server.base_url)
            return None
        retry_after = None
        if isinstance(problem, ReplyProblem):
            if not problem.retryable or attempt == self.max_retries:
                raise self._failure(server, problem.reason, problem.kind, attempt) from problem
            retry_after = problem.retry_after
        elif attempt == self.max_retries:
            if isinstance(problem, TimeoutError):
                raise self._failure(server, f"timed out after {self.timeout:g} s", "timed out", attempt) from problem
            raise self._failure(server, str(problem), "connection", attempt) from problem
        delay = backoff_delay(attempt, self.backoff)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        return delay

    def _failure(self, server: _Server, reason: str, kind: str, attempt: int) -> _RequestFailed:
        return _RequestFailed(
            f"server {server.base_url}, model {self.model!r}: gave up after {attempt + 1} attempt(s); "
            f"last error: {reason}",
            kind,
        )


class _Run:
    """One `generate` call: up to `concurrency` requests under way, each next one sent from the callback
    that settled the one before (no task switch or event-loop turn per request). A request whose first
    try fails is retried in a task of its own (`OpenAIReader._answer_after`), and its slot waits for it.

    The callbacks never raise: an error (say, in `on_result`) ends the call, and `finished` raises it."""

    def __init__(
        self,
        reader: OpenAIReader,
        servers: list[_Server],
        requests: Sequence[ReaderRequest],
        on_result: OnResult | None,
    ):
        self.reader = reader
        self.servers = servers
        self.requests = requests
        self.on_result = on_result
        self.results: list[ReaderResponse | None] = [None] * len(requests)
        self.tally = FailureTally(len(requests))
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending = iter(range(len(requests)))  # each index is taken once
        self._slots = 0
        self._retries = BackgroundTasks()

    def start(self) -> None:
        self._slots = min(self.reader.concurrency, len(self.requests))
        for _ in range(self._slots):
            self._next()

    def stop(self) -> None:
        self._retries.cancel()

    def _next(self) -> None:
        """Send the next request in this slot (its first try), or close the slot."""
        if self.tally.stop_reason is None and not self.finished.done():
            for i in self._pending:
                reader = self.reader
                server = reader._pick(self.servers, None)
                server.in_flight += 1
                settle = functools.partial(self._settle, i, server, server.send_template_kwargs)
                server.transport.send(reader._payload(self.requests[i], server), reader.timeout, settle)
                return
        self._slots -= 1
        if self._slots == 0 and not self.finished.done():
            self.finished.set_result(None)

    def _settle(self, i: int, server: _Server, with_field: bool, outcome: HttpReply | BaseException) -> None:
        server.in_flight -= 1
        try:
            try:
                if not isinstance(outcome, HttpReply):
                    raise outcome
                response = read_reply(outcome)
            except (ReplyProblem, TimeoutError, TransportError) as problem:
                self._retries.start(self._retry(i, server, with_field, problem))
                return
            self._answered(i, response)
            self._next()
        except BaseException as error:
            self._end(error)

    async def _retry(self, i: int, server: _Server, with_field: bool, problem: Exception) -> None:
        try:
            try:
                response = await self.reader._answer_after(self.servers, self.requests[i], server, with_field, problem)
            except _RequestFailed as failure:
                self.tally.fail(i, failure.reason, failure.kind)
            else:
                self._answered(i, response)
            self._next()
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self._end(error)

    def _answered(self, i: int, response: ReaderResponse) -> None:
        self.tally.answer()
        self.results[i] = response
        if self.on_result is not None:
            self.on_result(i, response)

    def _end(self, error: BaseException) -> None:
        if not self.finished.done():
            self.finished.set_exception(error)
