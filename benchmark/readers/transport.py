"""How the `openai` backend moves one chat request to a server and its reply back: raw HTTP replies,
classified later by `replies.py`.

Two transports with one interface (`post(payload) -> HttpReply`):

- `FastTransport`: HTTP/1.1 over asyncio with the `httptools` parser (llhttp, the parser uvicorn uses)
  and a keep-alive pool of connections. A request costs about 50 µs of client CPU, against 2–3 ms
  through the `openai` SDK (see docs/performance.md), so one process can feed many fast servers.
- `OpenAISDKTransport`: the `openai` package's own client (httpx), the reference: it honours proxy
  settings from the environment, which `FastTransport` does not, and tests hold both to the same
  requests and replies.

`post` raises TimeoutError when no whole reply came within its timeout, TransportError when there
was no reply (no connection, or one that broke); the reader retries around it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol
from urllib.parse import urlsplit

import httptools

from benchmark.readers.base import ReaderError

CLIENTS = ("auto", "fast", "openai")


class HttpReply:
    """A server's reply: status, headers (names in lower case) and the raw body. Headers may be handed
    in undecoded (`raw_headers`, as the parser gives them) and are decoded on first use: most replies
    are read for their body alone."""

    __slots__ = ("_decoded", "_raw_headers", "body", "status")

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str] | None,
        body: bytes,
        raw_headers: list[tuple[bytes, bytes]] | None = None,
    ):
        self.status = status
        self.body = body
        self._decoded = headers
        self._raw_headers = raw_headers or []

    @property
    def headers(self) -> Mapping[str, str]:
        if self._decoded is None:
            self._decoded = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in self._raw_headers}
        return self._decoded


class TransportError(Exception):
    """No reply: the connection could not be made, or broke before the reply was complete."""


class Transport(Protocol):
    async def post(self, payload: dict[str, Any], timeout: float) -> HttpReply:
        """Send `payload` as the JSON body of POST {base_url}/chat/completions; wait at most `timeout`
        seconds for the whole reply."""
        ...

    async def aclose(self) -> None: ...


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


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time. `deadline` (event-loop time) is when
    the request under way times out; the transport's watchdog enforces it."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._reply: asyncio.Future[HttpReply] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._status_seen = False
        self.got_bytes = False
        self.closed = False
        self.keep_alive = True
        self.deadline = _NEVER

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._reply is None or self._reply.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted any more
            return
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close()
            self._fail(TransportError(f"the server's reply is not valid HTTP/1.1 ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._reply is None or self._reply.done():
            return
        headers = HttpReply(0, None, b"", self._headers).headers
        delimited = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
        if self._status_seen and not delimited:  # a body that ends where the connection ends
            self.on_message_complete()
            return
        where = "mid-reply" if self.got_bytes else "before replying"
        self._fail(TransportError(f"the server closed the connection {where}" + (f" ({exc})" if exc else "")))

    # httptools callbacks (kept small: they run for every reply)
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._status_seen = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive() and not self.closed
        reply = HttpReply(self._parser.get_status_code(), None, b"".join(self._body), self._headers)
        if self._reply is not None and not self._reply.done():
            self._reply.set_result(reply)

    # ours
    def _fail(self, error: BaseException) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(error)

    def time_out(self) -> None:
        self.close()
        self._fail(TimeoutError())

    def send(self, data: bytes, deadline: float, reply: asyncio.Future[HttpReply]) -> None:
        """Send one whole request; `reply` gets its reply (or the error) when it is complete."""
        assert self._transport is not None
        self._reply = reply
        self._headers, self._body, self.got_bytes, self._status_seen = [], [], False, False
        self.deadline = deadline
        self._transport.write(data)

    def close(self) -> None:
        self.keep_alive = False
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
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._watchdog: asyncio.Task | None = None
        self._tick = 1.0

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=self._ssl, server_hostname=self.host if self._ssl else None
                )
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.host}:{self.port} ({exc})") from exc
        self._open.add(connection)
        return connection

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
            self._open.discard(connection)
        return None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick)
            now = loop.time()
            for connection in [c for c in self._open if c.deadline <= now]:
                connection.time_out()

    def _arm(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        """Start the watchdog, or restart it fine enough for `timeout` (a few checks per timeout)."""
        self._tick = min(self._tick, timeout / 4)
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = loop.create_task(self._watch())

    async def post(self, payload: dict[str, Any], timeout: float) -> HttpReply:
        body = json.dumps(payload).encode()  # ASCII escapes: a lone surrogate stays valid JSON text
        data = b"%sContent-Length: %d\r\n\r\n%s" % (self._head, len(body), body)
        loop = asyncio.get_running_loop()
        if self._watchdog is None or timeout < 4 * self._tick:
            self._arm(loop, timeout)
        deadline = loop.time() + timeout
        connection = self._idle_connection()
        if connection is not None:
            try:
                return await self._exchange(connection, data, deadline, loop)
            except TransportError:
                if connection.got_bytes:
                    raise
                # the server closed an idle keep-alive connection as we reused it: one fresh try
        return await self._exchange(await self._connect(timeout), data, deadline, loop)

    async def _exchange(
        self, connection: _Connection, data: bytes, deadline: float, loop: asyncio.AbstractEventLoop
    ) -> HttpReply:
        """One request on `connection`; a failure, a timeout or a cancellation closes the connection (a
        reply half read cannot be resumed)."""
        reply = loop.create_future()
        connection.send(data, deadline, reply)
        try:
            result = await reply
        except BaseException:
            connection.close()
            self._open.discard(connection)
            raise
        finally:
            connection.deadline = _NEVER
        if connection.keep_alive:
            self._idle.append(connection)
        else:
            connection.close()
            self._open.discard(connection)
        return result

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()
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

    async def post(self, payload: dict[str, Any], timeout: float) -> HttpReply:
        openai = self._openai
        typed = {k: v for k, v in payload.items() if k in _SDK_ARGUMENTS}
        extra = {k: v for k, v in payload.items() if k not in _SDK_ARGUMENTS}
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
        await self._client.close()
