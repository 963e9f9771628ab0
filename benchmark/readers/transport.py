"""How the `openai` backend moves one chat request to a server and its reply back: raw HTTP replies,
classified later by `replies.py`.

Two transports with one interface, `send(payload, timeout, done)` (`payload`: the request body, see
`Payload`): `done` is called once, with the whole reply (`HttpReply`), TimeoutError when no whole
reply came within `timeout` seconds, or TransportError when there was no reply (no connection, or one
that broke). `post` is the same as a coroutine. The reader retries around both.

- `FastTransport`: HTTP/1.1 over asyncio with the `httptools` parser (llhttp, the parser uvicorn uses)
  and a keep-alive pool of connections. `done` runs inside the callback that read the reply, so the
  reader can send its next request from there, without a task switch or an event-loop turn per
  request. Connections receive into a buffer of their own (`READ_BUFFER_BYTES`), bodies are written
  around their messages with `orjson` (`request_body.py`), replies read by `orjson` and their headers
  read only when needed (`HttpReply`): with the reader's checks and bookkeeping, a request costs 12–20
  µs of client CPU at 4–256 in flight against a busy fake server and 15–24 µs against one that sleeps
  between requests (1.27–1.59× the fastest bare loop written here, docs/performance.md), against
  1.2–1.8 ms through the `openai` SDK.
- `OpenAISDKTransport`: the `openai` package's own client (httpx), the reference: it honours proxy
  settings from the environment, which `FastTransport` does not, and tests hold both to the same
  requests and replies.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import Callable, Coroutine, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol
from urllib.parse import urlsplit

import httptools

from benchmark.readers.base import ReaderError

CLIENTS = ("auto", "fast", "openai")


class HttpReply:
    """A server's reply: status, headers (names in lower case) and the raw body. The fast transport hands
    in the reply's raw bytes (`received`) instead of its headers, which are parsed from them on first
    use: most replies are read for their status and body alone, and collecting every header as it
    arrives cost about 1 µs a request (docs/performance.md)."""

    __slots__ = ("_headers", "_received", "body", "status")

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str] | None,
        body: bytes,
        received: list[bytes] | None = None,
    ):
        self.status = status
        self.body = body
        self._headers = headers
        self._received = received

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            self._headers = read_head(self._received or ())[1]
        return self._headers


class _HeadReader:
    """httptools callbacks that collect a reply's headers (names in lower case) and whether they ended."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.complete = True


def read_head(received: Iterable[bytes]) -> tuple[bool, dict[str, str]]:
    """(whether the head is complete, the headers) of a reply's first bytes, `received` in the pieces
    they came in. For the rare replies whose headers matter: errors (Retry-After), and replies cut
    short by the server closing the connection (was the body delimited?). The connection's own parser
    has read the same bytes without error (it closes the connection on the first it finds)."""
    head = _HeadReader()
    parser = httptools.HttpResponseParser(head)
    for piece in received:
        parser.feed_data(piece)
    return head.complete, head.headers


class TransportError(Exception):
    """No reply: the connection could not be made, or broke before the reply was complete."""


Done = Callable[["HttpReply | BaseException"], None]
"""Called once per request with its outcome; it must not raise (it runs inside the transport's callbacks)."""


class Payload(Protocol):
    """A request body, both ways a transport may want it (`request_body.ChatBody` is the reader's)."""

    def fields(self) -> dict[str, Any]:
        """The JSON fields."""
        ...

    def encode(self) -> bytes:
        """The same as JSON text, UTF-8."""
        ...


class Transport(Protocol):
    def send(self, payload: Payload, timeout: float, done: Done) -> None:
        """Send `payload` as the JSON body of POST {base_url}/chat/completions; `done` gets the whole reply
        within `timeout` seconds, or the error."""
        ...

    async def aclose(self) -> None: ...


async def post(transport: Transport, payload: Payload, timeout: float) -> HttpReply:
    """`transport.send` as a coroutine: the reply, or the error raised."""
    reply: asyncio.Future[HttpReply] = asyncio.get_running_loop().create_future()

    def settle(outcome: HttpReply | BaseException) -> None:
        if reply.done():  # the caller was cancelled
            return
        if isinstance(outcome, BaseException):
            reply.set_exception(outcome)
        else:
            reply.set_result(outcome)

    transport.send(payload, timeout, settle)
    return await reply


class BackgroundTasks:
    """Tasks started from callbacks (a transport's connecting and SDK calls, the reader's retries): kept
    until done, so that none is collected while it runs, and cancelled together."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _user_agent() -> str:
    try:
        return f"memalpha-bench/{version('memalpha-bench')}"
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "memalpha-bench"


def proxy_for(base_url: str) -> str | None:
    """The proxy the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, ...) sets for `base_url`, if any."""
    parts = urlsplit(base_url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return proxy
    return None


def make_transport(client: str, base_url: str, api_key: str) -> Transport:
    """The transport `client` names; `auto` is the fast one unless the environment sets a proxy for
    `base_url` (the `openai` SDK goes through proxies, `FastTransport` does not)."""
    if client not in CLIENTS:
        raise ReaderError(f"unknown HTTP client {client!r}; choose one of {', '.join(CLIENTS)}")
    if client == "openai" or (client == "auto" and proxy_for(base_url)):
        return OpenAISDKTransport(base_url, api_key)
    return FastTransport(base_url, api_key)


# ---------------------------------------------------------------- the fast transport


_NEVER = float("inf")


READ_BUFFER_BYTES = 64 * 1024
"""Each connection's receive buffer. asyncio's plain protocols receive into a fresh 256 KiB bytes object
per read, which glibc maps, shrinks and unmaps (three system calls and a page fault per reply) until
the process has freed one mapped block: in a fresh process a bare loop receiving that way cost twice
the client CPU of the same loop receiving into a buffer of its own (docs/performance.md). A reply longer
than the buffer arrives in several reads. 64 KiB a connection is 16 MiB at 256 in flight."""


class _Connection(asyncio.BufferedProtocol):
    """One keep-alive HTTP/1.1 connection; one request at a time. `deadline` (event-loop time) is when
    the request under way times out; the pool's watchdog enforces it."""

    def __init__(self, pool: FastTransport) -> None:
        self._pool = pool
        self._body: list[bytes] = []
        self._received: list[bytes] = []  # the reply's raw bytes so far (its headers are read from them)
        self._buffer = memoryview(bytearray(READ_BUFFER_BYTES))
        # the parser calls this for every body piece: a C method, no Python frame each; it has no header
        # callbacks, so it makes no objects for the headers (see `HttpReply`)
        self.on_body = self._body.append
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.done: Done | None = None  # the request under way's
        self.payload: Payload | None = None  # the request under way, until its reply begins
        self.reused = False  # whether it was sent on a connection that had answered before
        self.closed = False
        self.deadline = _NEVER

    # asyncio.BufferedProtocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.done is None:
            self.close()  # bytes nobody asked for: this connection cannot be trusted any more
            return
        self.payload = None  # a reply began: there will be no fresh try
        data = self._buffer[:nbytes].tobytes()
        self._received.append(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close()
            self._fail(TransportError(f"the server's reply is not valid HTTP/1.1 ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.done is None:
            return
        head_complete, headers = read_head(self._received)
        delimited = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
        if head_complete and not delimited:  # a body that ends where the connection ends
            self.on_message_complete()
            return
        where = "mid-reply" if self._received else "before replying"
        self._fail(TransportError(f"the server closed the connection {where}" + (f" ({exc})" if exc else "")))

    # httptools callback (besides on_body)
    def on_message_complete(self) -> None:
        reply = HttpReply(self._parser.get_status_code(), None, b"".join(self._body), self._received)
        done, self.done, self.deadline = self.done, None, _NEVER
        if self._parser.should_keep_alive() and not self.closed:
            self._pool.idle.append(self)
        else:
            self._pool.drop(self)
        if done is not None:
            done(reply)

    # ours
    def _fail(self, error: BaseException) -> None:
        """The request under way failed: close this connection (a reply half read cannot be resumed)."""
        done, self.done, deadline, self.deadline = self.done, None, self.deadline, _NEVER
        self._pool.drop(self)
        if done is None:
            return
        if isinstance(error, TransportError) and self.reused and self.payload is not None:
            # the server closed an idle keep-alive connection as we reused it: one fresh try
            self._pool.send_on_new_connection(self.payload, deadline, done)
        else:
            done(error)

    def time_out(self) -> None:
        self._fail(TimeoutError())

    def send(self, data: bytes, payload: Payload, deadline: float, done: Done, reused: bool) -> None:
        """Send one whole request (`data`, encoded from `payload`); `done` gets its reply (or the error)
        when it is complete. The connection keeps the payload, not the bytes, for a fresh try: holding
        every request body in flight, rather than freeing each once sent, cost 1.62× the bare loop's
        client CPU against 1.27× at 256 in flight (docs/performance.md)."""
        assert self._transport is not None
        self.done, self.payload, self.reused, self.deadline = done, payload, reused, deadline
        self._received = []  # not cleared: the last reply may still read its headers from it
        self._body.clear()
        self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class FastTransport:
    """POST {base_url}/chat/completions over a pool of keep-alive connections (http or https).

    A connection is opened when no idle one is left, so the pool grows to the number of requests in
    flight (the reader's concurrency) and no further. Timeouts are enforced by one watchdog task that
    checks the requests under way a few times per timeout (at least every second), rather than by a
    timer per request, which would cost more than the rest of the request's bookkeeping.
    """

    def __init__(self, base_url: str, api_key: str):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReaderError(f"server address {base_url!r}: expected http://HOST[:PORT]/PATH or https://...")
        if any(c in api_key for c in "\r\n"):
            raise ReaderError("the API key holds a line break")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        host_header = parts.netloc.rpartition("@")[2]
        path = parts.path.rstrip("/") + "/chat/completions"
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {_user_agent()}\r\n"
            "Accept: application/json\r\nAccept-Encoding: identity\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {api_key}\r\n"
        ).encode("latin-1")
        self.idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._tasks = BackgroundTasks()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task | None = None
        self._tick = 1.0

    def send(self, payload: Payload, timeout: float, done: Done) -> None:
        loop = self._loop or self._bind()
        if timeout < 4 * self._tick:
            self._arm(loop, timeout)
        deadline = loop.time() + timeout
        idle = self.idle
        while idle:
            connection = idle.pop()
            if not connection.closed:
                connection.send(self._encode(payload), payload, deadline, done, True)
                return
            self._open.discard(connection)
        self.send_on_new_connection(payload, deadline, done)

    def _encode(self, payload: Payload) -> bytes:
        body = payload.encode()
        return b"%sContent-Length: %d\r\n\r\n%s" % (self._head, len(body), body)

    def _bind(self) -> asyncio.AbstractEventLoop:
        """Start serving from the running event loop (the pool and its watchdog belong to it)."""
        self._loop = asyncio.get_running_loop()
        self._arm(self._loop, self._tick * 4)
        return self._loop

    def drop(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    def send_on_new_connection(self, payload: Payload, deadline: float, done: Done) -> None:
        """Send a request on a connection opened for it (when none is idle, and for a fresh try)."""
        self._tasks.start(self._connect_and_send(payload, deadline, done))

    async def _connect_and_send(self, payload: Payload, deadline: float, done: Done) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                )
        except OSError as exc:
            done(TransportError(f"cannot connect to {self.host}:{self.port} ({exc})"))
            return
        except TimeoutError as exc:
            done(exc)
            return
        self._open.add(connection)
        connection.send(self._encode(payload), payload, deadline, done, False)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick)
            now = loop.time()
            for connection in [c for c in self._open if c.deadline <= now]:
                connection.time_out()

    def _arm(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        """(Re)start the watchdog, fine enough for `timeout` (a few checks per timeout)."""
        self._tick = min(self._tick, timeout / 4)
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = loop.create_task(self._watch())

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._loop = None
        self._tasks.cancel()
        for connection in self._open:
            connection.close()
        self._open.clear()
        self.idle.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks


# ---------------------------------------------------------------- the reference transport


_SDK_ARGUMENTS = frozenset({"model", "messages", "max_tokens", "temperature", "top_p", "stop", "tools"})
"""Payload fields `chat.completions.create` takes by name; the others go as `extra_body`."""


class OpenAISDKTransport:
    """The same exchange through the `openai` package (its httpx client, proxies from the environment)."""

    def __init__(self, base_url: str, api_key: str):
        import openai

        self._openai = openai
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=None)
        self._tasks = BackgroundTasks()

    def send(self, payload: Payload, timeout: float, done: Done) -> None:
        self._tasks.start(self._send(payload, timeout, done))

    async def _send(self, payload: Payload, timeout: float, done: Done) -> None:
        try:
            reply = await self._post(payload, timeout)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # handed to the reader, which raises what it cannot retry
            done(error)
            return
        done(reply)

    async def _post(self, payload: Payload, timeout: float) -> HttpReply:
        openai = self._openai
        fields = payload.fields()
        typed = {k: v for k, v in fields.items() if k in _SDK_ARGUMENTS}
        extra = {k: v for k, v in fields.items() if k not in _SDK_ARGUMENTS}
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                **typed, extra_body=extra or None, timeout=timeout
            )
            response = raw.http_response
        except openai.APIStatusError as error:
            response = error.response
        except openai.APITimeoutError as error:
            raise TimeoutError from error
        except openai.APIConnectionError as error:
            cause = f" ({type(error.__cause__).__name__}: {error.__cause__})" if error.__cause__ else ""
            raise TransportError(f"{error}{cause}") from error
        headers = {name.lower(): value for name, value in response.headers.items()}
        return HttpReply(response.status_code, headers, response.content)

    async def aclose(self) -> None:
        self._tasks.cancel()
        await self._client.close()
