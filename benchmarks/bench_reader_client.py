"""Throughput of the `openai` reader's client beside bare client loops, in one run, against fast local fake
servers (so that the client, not a model, is what is measured).

Run by hand (figures go into docs/performance.md):

    python benchmarks/bench_reader_client.py [--requests 4000] [--concurrency 1 4 16 64 256] [--rounds 7]
        [--servers 1] [--system-kb 4] [--sdk] [--busy-server] [--in-process] [--clients NAME...]

Each fake server is an asyncio protocol in a process of its own that answers every chat request with one
canned completion at once, over keep-alive HTTP/1.1, with the headers uvicorn sends. Every client sends
the same requests (the same head and JSON fields as the reader sends: a 4 KB system message (`--system-kb`) and a
short question, JSON-encoded per request), spreads its connections over the servers, and reads each reply's
JSON:

- `bare streams`: asyncio streams, a hand-written HTTP/1.1 request and a Content-Length read;
- `bare httptools`: a protocol with the httptools parser, one task per connection awaiting each reply;
- `bare callbacks`: the same parser, the next request sent from the callback that read the reply (no
  task switch per request);
- `bare callbacks, framed JSON`: the same loop writing and reading JSON the way the reader does (the
  JSON around the two texts fixed, only the texts encoded per request; `orjson` for the texts and the
  replies, where the loops above use the standard library's `json`);
- `bare callbacks, framed JSON, own buffer`: the same loop receiving into a buffer of its own, as the
  reader's client does, rather than into the fresh 256 KiB bytes object per read of asyncio's plain
  protocols: the fastest loop found here;
- `checked callbacks`: the loop with its own buffer doing the per-request work that any careful
  client must, with the reader's own code (`ChatBody` for the body, the reply's bytes kept for its
  headers, `read_reply` for the checks and the answer object), without the reader's structure; not a
  bare loop;
- `ours`: `OpenAIReader(...).generate(requests, on_result=...)`, the whole reader: retries armed,
  per-try timeout, reply checks, the answer objects, `on_result`, failure bookkeeping;
- with `--sdk`, also `bare openai SDK` (`AsyncOpenAI.chat.completions.create` in a loop) and `ours
  (openai SDK)` (the reader with `http_client="openai"`), on a tenth of the requests.

The bare loops do nothing else: no retries, timeouts, checks or error handling (a floor, not a client).
Each client's input is prepared before its clock starts (texts for the bare loops, `ReaderRequest`s for
the reader). Every round runs every client once, in turn (the order rotates between rounds), so that
a busy spell of the machine hits them alike. Reported per client: the median over rounds of requests
per second (wall clock) and of client CPU per request; and, per round, as median [min–max] over the
rounds, the throughput of the fastest bare loop (the one with the highest median at that concurrency)
÷ ours, the same against whichever bare loop was fastest in each round (the best of several noisy
figures: biased against ours, shown for comparison with earlier runs), and ours ÷ the cheapest bare
loop of the round in client CPU per request.

What a plain protocol's 256 KiB read costs depends on the process's past: glibc serves an allocation
that large with mmap, shrinks it with mremap to the bytes read and frees it with munmap (three system
calls and a page fault per reply: the kernel column shows them), until the process frees a mapped
block larger than its threshold, which then rises so that such blocks come from the heap. All clients
share this process, so whether the plain loops pay depends on what ran before them (the SDK clients,
for one, free such a block); `--clients` with the plain loops alone shows what a process that never
did pays.

A fake server that answers at once and then waits for the next request sleeps in `epoll_wait`, so a
client's send may have to wake it, and that wake-up is paid in the sender's kernel time
(`perf record -g` shows it under `sendto`). A slower client leaves the server asleep more often, so
the penalty can grow with the client's own cost and widen the gaps between clients.
`--busy-server` makes the fake servers poll without ever sleeping, as a loaded model server's loop
does (a real one is busy with the model between requests): what remains is each client's work and
its system calls.

`--in-process` leaves out the sockets and the fake server: each request written is answered with
RESPONSE on the event loop's next turn (`_LoopbackLoop`). What remains is each client's own work,
which varies little from round to round, so it is the steadiest measure of what the reader adds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import httptools
import orjson
from tabulate import tabulate

from benchmark.readers import ReaderRequest, SamplingParams
from benchmark.readers.openai_reader import OpenAIReader
from benchmark.readers.replies import read_reply
from benchmark.readers.request_body import BodyFrame, ChatBody
from benchmark.readers.transport import READ_BUFFER_BYTES, FastTransport, HttpReply

MEMORY_LINE = "The memory holds facts about rivers and cities. "


def system_message(kb: float) -> str:
    return "You answer from the memory below.\n" + MEMORY_LINE * round(kb * 1024 / len(MEMORY_LINE))


SYSTEM = system_message(4)  # --system-kb sets it
PARAMS = SamplingParams(max_tokens=16)
REPLY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 1, "total_tokens": 901},
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: Fri, 04 Dec 2026 12:00:00 GMT\r\nserver: uvicorn\r\n"
    b"content-length: %d\r\ncontent-type: application/json\r\n\r\n%s" % (len(REPLY), REPLY)
)


# ---------------------------------------------------------------- the fake servers


class _FakeServer(asyncio.BufferedProtocol):
    """Answers each complete request (headers, then a Content-Length body) with RESPONSE. It receives into
    a buffer of its own (see `READ_BUFFER_BYTES`), so that it costs less per request than any client."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.received = memoryview(bytearray(READ_BUFFER_BYTES))
        self.buffer = b""

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.received

    def buffer_updated(self, nbytes: int) -> None:
        self.buffer += self.received[:nbytes]
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:") + 15
            length = int(head[at : head.find(b"\r\n", at) % (end + 1)])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(RESPONSE)


def serve(port: int, ready, busy: bool = False) -> None:
    """Run a fake server on `port`; `busy`: its event loop never sleeps (see `--busy-server`)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_FakeServer, "127.0.0.1", port, backlog=2048)
        if busy:  # a callback always ready: each turn of the loop polls its sockets without waiting

            def spin() -> None:
                loop.call_soon(spin)

            spin()
        ready.set()
        await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Loopback(asyncio.Transport):
    """A connection without a socket (`--in-process`): each request written is answered with RESPONSE on
    the loop's next turn, handed to the protocol the way asyncio hands it what a socket received."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol) -> None:
        super().__init__()
        self._loop, self._protocol, self._closing = loop, protocol, False

    def write(self, data: bytes) -> None:
        self._loop.call_soon(self._answer)

    def _answer(self) -> None:
        if self._closing:
            return
        if isinstance(self._protocol, asyncio.BufferedProtocol):
            self._protocol.get_buffer(len(RESPONSE))[: len(RESPONSE)] = RESPONSE
            self._protocol.buffer_updated(len(RESPONSE))
        else:
            self._protocol.data_received(RESPONSE)  # type: ignore[attr-defined]

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._loop.call_soon(self._protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self._closing


class _LoopbackLoop(asyncio.SelectorEventLoop):
    """An event loop whose connections are `_Loopback`s: the clients' own work, without the kernel's."""

    async def create_connection(self, protocol_factory, host=None, port=None, **kwargs):  # type: ignore[override]
        protocol = protocol_factory()
        transport = _Loopback(self, protocol)
        protocol.connection_made(transport)
        return transport, protocol


class _LoopbackPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _LoopbackLoop()


# ---------------------------------------------------------------- the clients


def questions(n: int) -> list[str]:
    return [f"Which city does river {i} pass through?" for i in range(n)]


def body(question: str) -> dict:
    """The JSON fields the reader sends for the same request."""
    return {
        "model": "bench",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        "max_tokens": 16,
        "temperature": 0.0,
        "top_p": 1.0,
        "chat_template_kwargs": {"enable_thinking": False},
    }


def request_bytes(head: bytes, question: str) -> bytes:
    payload = json.dumps(body(question)).encode()
    return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(payload), payload)


def framed_request_bytes(head: bytes, question: str) -> bytes:
    """The same JSON value as `request_bytes`, written as the reader writes it: the JSON around the two
    texts is fixed, only the texts are encoded per request, by `orjson`."""
    payload = b"".join(
        (
            b'{"model":"bench","messages":[{"role":"system","content":',
            orjson.dumps(SYSTEM),
            b'},{"role":"user","content":',
            orjson.dumps(question),
            b'}],"max_tokens":16,"temperature":0.0,"top_p":1.0,"chat_template_kwargs":{"enable_thinking":false}}',
        )
    )
    return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(payload), payload)


def heads(ports: Sequence[int]) -> list[bytes]:
    """The request head the reader sends to each server (the same header lines)."""
    return [FastTransport(f"http://127.0.0.1:{port}/v1", "EMPTY")._head for port in ports]


async def bare_streams(ports: Sequence[int], texts: list[str], concurrency: int) -> None:
    pending = iter(texts)
    answers: list[str] = []
    head_of = heads(ports)

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[k % len(ports)])
        head = head_of[k % len(ports)]
        for text in pending:
            writer.write(request_bytes(head, text))
            reply_head = await reader.readuntil(b"\r\n\r\n")
            length = int(reply_head.split(b"content-length: ")[1].split(b"\r\n")[0])
            answers.append(json.loads(await reader.readexactly(length))["choices"][0]["message"]["content"])
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    assert len(answers) == len(texts)


class _Parsed(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.chunks: list[bytes] = []
        self.done: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        self.done.set_result(b"".join(self.chunks))
        self.chunks = []


async def bare_httptools(ports: Sequence[int], texts: list[str], concurrency: int) -> None:
    pending = iter(texts)
    loop = asyncio.get_running_loop()
    answers: list[str] = []
    head_of = heads(ports)

    async def worker(k: int) -> None:
        _, connection = await loop.create_connection(_Parsed, "127.0.0.1", ports[k % len(ports)])
        head = head_of[k % len(ports)]
        for text in pending:
            connection.done = loop.create_future()
            connection.transport.write(request_bytes(head, text))
            answers.append(json.loads(await connection.done)["choices"][0]["message"]["content"])
        connection.transport.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    assert len(answers) == len(texts)


class _Pump(asyncio.Protocol):
    """Sends its next request from the callback that read the reply to the one before."""

    def __init__(self, head: bytes, pending, answers: list[str], closed: Callable[[], None]) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.chunks: list[bytes] = []
        self.head, self.pending, self.answers, self.closed = head, pending, answers, closed

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.next()

    build = staticmethod(request_bytes)

    def next(self) -> None:
        for text in self.pending:
            self.transport.write(self.build(self.head, text))
            return
        self.transport.close()
        self.closed()

    def read(self, reply: bytes) -> str:
        return json.loads(reply)["choices"][0]["message"]["content"]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        self.answers.append(self.read(b"".join(self.chunks)))
        self.chunks = []
        self.next()


class _FramedPump(_Pump):
    """`_Pump` that writes and reads JSON the reader's way: `framed_request_bytes`, replies read by
    `orjson`."""

    build = staticmethod(framed_request_bytes)

    def read(self, reply: bytes) -> str:
        return orjson.loads(reply)["choices"][0]["message"]["content"]


class _BufferedPump(_FramedPump, asyncio.BufferedProtocol):
    """`_FramedPump` receiving into a buffer of its own, as our client does, rather than into the fresh
    256 KiB bytes object per read of asyncio's plain protocols."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.buffer = memoryview(bytearray(READ_BUFFER_BYTES))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.parser.feed_data(self.buffer[:nbytes])


class _CheckedPump(_BufferedPump):
    """`_BufferedPump` doing the reader's per-request work that any careful client must do, with the
    reader's own code, and nothing of its structure: each body written by `ChatBody` from a
    `ReaderRequest`, each reply's raw bytes kept for its headers (read only when asked for, as the
    reader does) and the reply read by `read_reply` (the checks, the answer object). The gap from the
    bare loops to this one is that work; from this one to ours, the reader's structure (the transport
    and its pool, slots, deadlines, retries, failure tally)."""

    frame = BodyFrame("bench", PARAMS, None, True)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.received: list[bytes] = []

    def buffer_updated(self, nbytes: int) -> None:
        data = self.buffer[:nbytes].tobytes()
        self.received.append(data)
        self.parser.feed_data(data)

    def build(self, head: bytes, request: ReaderRequest) -> bytes:  # type: ignore[override]
        body = ChatBody(request.messages, self.frame).encode()
        return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)

    def read(self, reply: bytes) -> str:
        response = read_reply(HttpReply(self.parser.get_status_code(), None, reply, self.received))
        self.received = []
        return response.text


async def bare_callbacks(ports: Sequence[int], texts: list[str], concurrency: int, pump=_Pump) -> None:
    pending = iter(texts)
    loop = asyncio.get_running_loop()
    answers: list[str] = []
    finished = loop.create_future()
    open_connections = [concurrency]
    head_of = heads(ports)

    def closed() -> None:
        open_connections[0] -= 1
        if not open_connections[0]:
            finished.set_result(None)

    for k in range(concurrency):
        head = head_of[k % len(ports)]
        await loop.create_connection(
            lambda h=head: pump(h, pending, answers, closed), "127.0.0.1", ports[k % len(ports)]
        )
    await finished
    assert len(answers) == len(texts)


async def bare_sdk(ports: Sequence[int], texts: list[str], concurrency: int) -> None:
    import openai

    pending = iter(texts)
    answers: list[str | None] = []
    clients = [openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{p}/v1", api_key="EMPTY", max_retries=0) for p in ports]

    async def worker(k: int) -> None:
        client = clients[k % len(clients)]
        for text in pending:
            question = body(text)
            extra = {"chat_template_kwargs": question.pop("chat_template_kwargs")}
            completion = await client.chat.completions.create(**question, extra_body=extra)
            answers.append(completion.choices[0].message.content)

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    for client in clients:
        await client.close()
    assert len(answers) == len(texts)


def ours(http_client: str) -> Callable[[Sequence[int], list[ReaderRequest], int], None]:
    def run(ports: Sequence[int], requests: list[ReaderRequest], concurrency: int) -> None:
        urls = [f"http://127.0.0.1:{port}/v1" for port in ports]
        reader = OpenAIReader("bench", urls, concurrency=concurrency, http_client=http_client)
        answers: list[str] = []
        reader.generate(requests, on_result=lambda i, response: answers.append(response.text))
        assert len(answers) == len(requests)

    return run


def reader_requests(texts: list[str]) -> list[ReaderRequest]:
    return [ReaderRequest((("system", SYSTEM), ("user", text)), PARAMS) for text in texts]


def as_texts(texts: list[str]) -> list[str]:
    return texts


Client = tuple[Callable[[list[str]], object], Callable[[Sequence[int], object, int], None]]
"""(prepare the input from the questions, run against the servers' ports at a concurrency)."""

CLIENTS: dict[str, Client] = {
    "bare streams": (as_texts, lambda *a: asyncio.run(bare_streams(*a))),
    "bare httptools": (as_texts, lambda *a: asyncio.run(bare_httptools(*a))),
    "bare callbacks": (as_texts, lambda *a: asyncio.run(bare_callbacks(*a))),
    "bare callbacks, framed JSON": (as_texts, lambda *a: asyncio.run(bare_callbacks(*a, pump=_FramedPump))),
    "bare callbacks, framed JSON, own buffer": (
        as_texts,
        lambda *a: asyncio.run(bare_callbacks(*a, pump=_BufferedPump)),
    ),
    "checked callbacks": (reader_requests, lambda *a: asyncio.run(bare_callbacks(*a, pump=_CheckedPump))),
    "ours": (reader_requests, ours("fast")),
}
SDK_CLIENTS: dict[str, Client] = {
    "bare openai SDK": (as_texts, lambda *a: asyncio.run(bare_sdk(*a))),
    "ours (openai SDK)": (reader_requests, ours("openai")),
}


class Figures(NamedTuple):
    """One run of one client."""

    rate: float  # requests per second, wall clock
    cpu_us: float  # the client process's CPU per request, user and kernel
    kernel_us: float  # the kernel's part of it (system calls, page faults, waking the server)
    cpu_share: float  # the client's CPU time ÷ the wall time


def measure(client: Client, ports: Sequence[int], n: int, concurrency: int) -> Figures:
    prepare, run = client
    prepared = prepare(questions(n))
    wall, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    run(ports, prepared, concurrency)
    wall, after = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_SELF)
    user, kernel = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return Figures(n / wall, (user + kernel) / n * 1e6, kernel / n * 1e6, (user + kernel) / wall)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}× [{min(values):.2f}–{max(values):.2f}]"


def rounds(
    clients: dict[str, Client], ports: Sequence[int], requests: int, concurrency: int, count: int
) -> dict[str, list[Figures]]:
    """Each client's figures per round; the clients take turns within a round, in a rotating order."""
    figures: dict[str, list[Figures]] = {name: [] for name in clients}
    names = list(clients)
    for r in range(count):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            n = requests // 10 if name in SDK_CLIENTS else requests
            figures[name].append(measure(clients[name], ports, n, concurrency))
    return figures


def cell(runs: list[Figures]) -> str:
    """A client's medians: requests/s (CPU µs per request; the kernel's part)."""
    rate, cpu, kernel = (
        statistics.median(getattr(f, field) for f in runs) for field in ("rate", "cpu_us", "kernel_us")
    )
    return f"{rate:,.0f} ({cpu:,.1f} µs; {kernel:,.1f})"


def comparison(figures: dict[str, list[Figures]], bare: list[str]) -> list[str]:
    """The ratio columns: the fastest bare loop (by median throughput) and, per round, its throughput ÷
    ours, the best bare loop of each round ÷ ours, ours ÷ the cheapest bare loop of the round in CPU;
    and ours' CPU share."""
    ours = figures["ours"]
    fastest = max(bare, key=lambda b: statistics.median(f.rate for f in figures[b]))
    rate_ratio = [figures[fastest][r].rate / f.rate for r, f in enumerate(ours)]
    best_of_round = [max(figures[b][r].rate for b in bare) / f.rate for r, f in enumerate(ours)]
    cpu_ratio = [f.cpu_us / min(figures[b][r].cpu_us for b in bare) for r, f in enumerate(ours)]
    share = statistics.median(f.cpu_share for f in ours)
    return [fastest, spread(rate_ratio), spread(best_of_round), spread(cpu_ratio), f"{share:.0%}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--servers", type=int, default=1, help="fake servers, one process each")
    parser.add_argument("--sdk", action="store_true", help="also the openai SDK, bare and in the reader")
    parser.add_argument("--system-kb", type=float, default=4, help="size of each request's system message")
    parser.add_argument(
        "--clients",
        nargs="+",
        metavar="NAME",
        choices=[*CLIENTS, *SDK_CLIENTS],
        help=f"only these clients, of: {'; '.join([*CLIENTS, *SDK_CLIENTS])} (default: all but the SDK's); "
        "the ratio columns need `ours` and a bare loop",
    )
    parser.add_argument(
        "--busy-server",
        action="store_true",
        help="fake servers that poll without ever sleeping, as a loaded server does (see above)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="no sockets and no fake server: each request is answered on the event loop's next turn (see above)",
    )
    args = parser.parse_args()
    if args.in_process and args.busy_server:
        parser.error("--in-process runs no server")
    if args.in_process and args.sdk:
        parser.error("--in-process does not run the SDK clients (their HTTP client opens its own sockets)")
    global SYSTEM
    SYSTEM = system_message(args.system_kb)
    if args.in_process:
        asyncio.set_event_loop_policy(_LoopbackPolicy())

    every = {**CLIENTS, **SDK_CLIENTS}
    chosen = args.clients or [*CLIENTS, *(SDK_CLIENTS if args.sdk else ())]
    clients = {name: every[name] for name in chosen}
    bare = [name for name in clients if name.startswith("bare") and name not in SDK_CLIENTS]
    compared = "ours" in clients and bool(bare)
    server_ports = [] if args.in_process else [free_port() for _ in range(args.servers)]
    ports = server_ports or [0]  # in process, connections never reach a port
    servers = []
    for port in server_ports:
        ready = multiprocessing.Event()
        process = multiprocessing.Process(target=serve, args=(port, ready, args.busy_server), daemon=True)
        process.start()
        ready.wait(10)
        servers.append(process)
    rows = []
    try:
        for concurrency in args.concurrency:
            figures = rounds(clients, ports, args.requests, concurrency, args.rounds)
            row = [concurrency, *(cell(figures[name]) for name in clients)]
            if compared:
                row += comparison(figures, bare)
            rows.append(row)
            print(f"concurrency {concurrency} done", flush=True)
    finally:
        for process in servers:
            process.terminate()
            process.join()
    where = "no sockets (--in-process)" if args.in_process else f"{args.servers} fake server(s)"
    where += ", busy (--busy-server)" if args.busy_server else ""
    print(
        f"\n{where}; {len(SYSTEM):,}-character system message; load average "
        f"{os.getloadavg()[0]:.1f}; requests/s (client CPU per request; its part in the kernel), medians of "
        f"{args.rounds} rounds\n"
    )
    headers = ["concurrency", *clients]
    if compared:
        headers += [
            "fastest bare loop",
            "it ÷ ours (throughput)",
            "best bare of each round ÷ ours",
            "ours ÷ cheapest bare (CPU)",
            "ours: client CPU share",
        ]
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
