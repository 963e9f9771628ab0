"""Throughput of the `openai` reader's client beside bare client loops, in one run, against a fast local
fake server (so that the client, not a model, is what is measured).

Run by hand (figures go into docs/performance.md):

    python benchmarks/bench_reader_client.py [--requests 4000] [--concurrency 1 4 16 64 256] [--repeats 5]

The server is an asyncio protocol in its own process that answers every chat request with one canned
completion at once, over keep-alive HTTP/1.1. Every client sends the same requests (a 4 KB system
message and a short question, JSON-encoded per request) and reads each reply's JSON:

- `bare streams`: asyncio streams, a hand-written HTTP/1.1 request and a Content-Length read (no
  retries, no checks, no error handling: a floor, not a client);
- `bare httptools`: the same with the httptools parser (what our client parses with);
- `bare openai SDK`: `AsyncOpenAI.chat.completions.create` in a loop (the client before this change);
- `ours (fast)`: `OpenAIReader(...).generate(...)`, the whole reader: retries armed, per-try timeout,
  reply checks, answers reported through `on_result`;
- `ours (openai SDK)`: the same reader with `http_client="openai"`.

Each figure is the best of `--repeats` runs (requests per second, wall clock), with the client's CPU
time per request in that run; the clients take turns within each repeat, so that a busy spell of the
machine hits them alike. The two SDK clients send a tenth of the requests (they are ~20x slower).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import time
from collections.abc import Callable

import httptools
import openai
from tabulate import tabulate

from benchmark.readers import ReaderRequest, ReaderResponse, SamplingParams
from benchmark.readers.openai_reader import OpenAIReader

SYSTEM = "You answer from the memory below.\n" + "The memory holds facts about rivers and cities. " * 85
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
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(REPLY), REPLY)


# ---------------------------------------------------------------- the fake server


class _FakeServer(asyncio.Protocol):
    """Answers each complete request (headers, then a Content-Length body) with RESPONSE."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(RESPONSE)


def serve(port: int, ready) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_FakeServer, "127.0.0.1", port, backlog=2048)
        ready.set()
        await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the clients


def questions(n: int) -> list[str]:
    return [f"Which city does river {i} pass through?" for i in range(n)]


def body(question: str) -> dict:
    return {
        "model": "bench",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        "max_tokens": 16,
        "temperature": 0.0,
    }


def request_bytes(question: str) -> bytes:
    payload = json.dumps(body(question)).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
    )


async def bare_streams(port: int, texts: list[str], concurrency: int) -> None:
    pending = iter(texts)
    answers: list[str] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for text in pending:
            writer.write(request_bytes(text))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            answers.append(json.loads(await reader.readexactly(length))["choices"][0]["message"]["content"])
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
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


async def bare_httptools(port: int, texts: list[str], concurrency: int) -> None:
    pending = iter(texts)
    loop = asyncio.get_running_loop()
    answers: list[str] = []

    async def worker() -> None:
        _, connection = await loop.create_connection(_Parsed, "127.0.0.1", port)
        for text in pending:
            connection.done = loop.create_future()
            connection.transport.write(request_bytes(text))
            answers.append(json.loads(await connection.done)["choices"][0]["message"]["content"])
        connection.transport.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    assert len(answers) == len(texts)


async def bare_sdk(port: int, texts: list[str], concurrency: int) -> None:
    pending = iter(texts)
    answers: list[str | None] = []
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0) as client:

        async def worker() -> None:
            for text in pending:
                completion = await client.chat.completions.create(**body(text))
                answers.append(completion.choices[0].message.content)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    assert len(answers) == len(texts)


def ours(http_client: str) -> Callable[[int, list[str], int], None]:
    params = SamplingParams(max_tokens=16)

    def run(port: int, texts: list[str], concurrency: int) -> None:
        reader = OpenAIReader("bench", f"http://127.0.0.1:{port}/v1", concurrency=concurrency, http_client=http_client)
        requests = [ReaderRequest((("system", SYSTEM), ("user", text)), params) for text in texts]
        answers: list[str] = []

        def on_result(i: int, response: ReaderResponse) -> None:
            answers.append(response.text)

        reader.generate(requests, on_result=on_result)
        assert len(answers) == len(texts)

    return run


CLIENTS: dict[str, Callable[[int, list[str], int], None]] = {
    "bare streams": lambda *a: asyncio.run(bare_streams(*a)),
    "bare httptools": lambda *a: asyncio.run(bare_httptools(*a)),
    "bare openai SDK": lambda *a: asyncio.run(bare_sdk(*a)),
    "ours (fast)": ours("fast"),
    "ours (openai SDK)": ours("openai"),
}
SLOW = {"bare openai SDK", "ours (openai SDK)"}


def measure(run: Callable, port: int, n: int, concurrency: int) -> tuple[float, float]:
    """(requests/s, client CPU µs per request) of one run."""
    texts = questions(n)
    wall, cpu = time.perf_counter(), time.process_time()
    run(port, texts, concurrency)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n * 1e6


def best_of(port: int, requests: int, concurrency: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Each client's best run; the clients take turns within each repeat."""
    best = dict.fromkeys(CLIENTS, (0.0, 0.0))
    for _ in range(repeats):
        for name, run in CLIENTS.items():
            figures = measure(run, port, requests // 10 if name in SLOW else requests, concurrency)
            best[name] = max(best[name], figures, key=lambda f: f[0])
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
    server.start()
    ready.wait(10)
    try:
        rows = []
        for concurrency in args.concurrency:
            figures = best_of(port, args.requests, concurrency, args.repeats)
            fastest_bare = max(v[0] for k, v in figures.items() if k.startswith("bare"))
            rows.append(
                [
                    concurrency,
                    *(f"{rate:,.0f} ({cpu:,.0f} µs)" for rate, cpu in figures.values()),
                    f"{fastest_bare / figures['ours (fast)'][0]:.2f}×",
                ]
            )
            print(f"concurrency {concurrency} done", flush=True)
    finally:
        server.terminate()
        server.join()
    print(f"\nload average {os.getloadavg()[0]:.1f}; requests/s (client CPU per request), best of {args.repeats}\n")
    headers = ["concurrency", *CLIENTS, "fastest bare / ours (fast)"]
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
