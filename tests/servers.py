"""Reusable test servers: a tiny random Qwen3 served by `transformers serve`, and a scripted
OpenAI-compatible server whose replies come from a function of the request.

Fixtures (registered through `pytest_plugins = ["servers"]` in conftest.py):
- `tiny_model`: the folder of a tiny Qwen3 with a tokenizer trained offline (session-wide);
- `serve_tiny`: a `transformers serve` process on 127.0.0.1 for it, as a `TinyServer` (session-wide);
- `scripted_server`: a factory `start(reply_fn, answer_probes=True, embedding_status=None) ->
  ScriptedServer`; every server it starts is stopped at the end of the test. It also serves
  `/v1/embeddings` with `word_embedding`, a deterministic bag-of-words vector, for memory libraries
  that embed (`embedding_status(request) -> int` makes chosen embedding requests fail with that status).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]

# The pre-tokenisation regex of Qwen2/Qwen3 tokenizers (byte-level BPE on top of it).
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Our own ChatML template in the Qwen3 layout: tools listed in the system turn, tool calls as JSON
# inside <tool_call>, tool results as a user turn with <tool_response>, and `enable_thinking=False`
# pre-filling an empty <think> block.
CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\n\n' }}{%- endif %}"
    "{{- '# Tools\n\nYou may call one or more of these functions:\n<tools>' }}"
    "{%- for tool in tools %}{{- '\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\n</tools>\n\nTo call a function, reply with a JSON object of its name and arguments inside tags:\n"
    '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n\' }}'
    "{%- elif messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' and loop.first %}"
    "{%- elif message.role == 'tool' %}"
    "{{- '<|im_start|>user\n<tool_response>\n' + message.content + '\n</tool_response><|im_end|>\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\n' + (message.content or '') }}"
    "{%- for call in message.tool_calls or [] %}"
    "{%- set fn = call.function if call.function is defined else call %}"
    "{%- set args = fn.arguments if fn.arguments is string else (fn.arguments | tojson) %}"
    "{{- '\n<tool_call>\n{\"name\": \"' + fn.name + '\", \"arguments\": ' + args + '}\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\n' }}"
    "{%- if enable_thinking is defined and not enable_thinking %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}"
    "{%- endif %}"
)

_CORPUS_WORDS = (
    "the a an of to in and is was for on with as by at from that this it be are were which who what "
    "where when how why question answer memory core semantic episodic user assistant system tool call "
    "function arguments name value true false none city country river year book author movie song "
    "paris london berlin tokyo france england germany japan alice bob carol dave born lives works "
    "likes has had said told asked met went visited wrote read sang played remember note fact event"
).split()


def _training_corpus() -> Iterator[str]:
    """Deterministic text: sentences from a small vocabulary, digits, punctuation and chat markup."""
    n = len(_CORPUS_WORDS)
    for i in range(400):
        words = [_CORPUS_WORDS[(i * 7 + j * 13) % n] for j in range(12)]
        yield " ".join(words).capitalize() + f". {i} {i * 37 % 1000}?"
    yield '{"name": "memory_insert", "arguments": {"memory_type": "semantic", "content": "x"}}'
    yield "<|im_start|>user\nWhat is it?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nIt is."


def make_tiny_model(directory: str | Path) -> Path:
    """Save a tiny random Qwen3 (hidden 64, 2 layers, 4 heads, 2 KV heads, head_dim 16) and a
    byte-level BPE tokenizer trained here, offline, in the Qwen style, to `directory`."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    directory = Path(directory)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(_training_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 200; fail early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@dataclass(frozen=True)
class TinyServer:
    """A running `transformers serve`: requests must name `model` (the served path) exactly."""

    base_url: str
    model: str
    log: Path


def start_transformers_serve(model_dir: Path, home: Path, log: Path) -> tuple[subprocess.Popen, TinyServer]:
    """Start `transformers serve` for `model_dir` on a free 127.0.0.1 port, offline, on CPU."""
    (home / "hub").mkdir(parents=True, exist_ok=True)  # GET /v1/models fails without the hub cache dir
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(home), "TOKENIZERS_PARALLELISM": "false"}
    cli = Path(sys.executable).with_name("transformers")
    command = [
        str(cli),
        "serve",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return process, TinyServer(f"http://127.0.0.1:{port}/v1", str(model_dir), log)


def stop_process(process: subprocess.Popen) -> None:
    """Terminate the process group we started (by its id), then kill it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def session_processes(session: int) -> list[int]:
    """Ids of the live processes in process session `session` (Linux /proc). A process re-parented away
    from its group (Ray's node agents, when their parent dies) is still in its session."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session:
                    found.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return found


def run_in_session(
    command: list[str], *, grace_s: float = 60, settle_s: float = 15, **popen_kwargs: Any
) -> tuple[subprocess.CompletedProcess, list[int]]:
    """Run `command` in a process session of its own, capturing its output. However the call ends (an
    exception, a pytest-timeout, Ctrl-C), nothing of that session outlives it: the command gets SIGINT
    and `grace_s` to clean up (a Ray driver shuts its cluster down), then whatever is left of the
    session is killed. Also returns the processes still alive in the session `settle_s` after the
    command ended by itself: what it failed to stop."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **popen_kwargs
    )
    try:
        stdout, stderr = process.communicate()
        deadline = time.monotonic() + settle_s
        while (left := session_processes(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in session_processes(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), left


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="session")
def serve_tiny(tiny_model, tmp_path_factory) -> Iterator[TinyServer]:
    home = tmp_path_factory.mktemp("hf-home")
    process, server = start_transformers_serve(tiny_model, home, home / "serve.log")
    try:
        wait_for_health(server.base_url.removesuffix("/v1") + "/health", timeout=60, process=process)
    except Exception:
        stop_process(process)
        pytest.fail(f"transformers serve did not start:\n{server.log.read_text()[-3000:]}")
    try:
        yield server
    finally:
        stop_process(process)


# ---------------------------------------------------------------------------------------------------
# Scripted OpenAI-compatible server


@dataclass
class Reply:
    """What the scripted server answers to one request.

    `status` other than 200 sends an OpenAI-style error body (`message`, or "scripted status N");
    `delay` sleeps first (to go past a client's timeout); `tool_calls` are OpenAI tool-call dicts
    ({"id", "type", "function": {"name", "arguments"}}); `body` replaces the whole JSON body; `raw`
    replaces it with bytes sent as they are (as `content_type`); `headers` are sent besides;
    `finish_reason` overrides the choice's; `cut_at` sends only that many bytes of the body (the
    Content-Length still announces all of it), then closes the connection.
    """

    content: str | None = ""
    status: int = 200
    delay: float = 0.0
    tool_calls: list[dict[str, Any]] | None = None
    body: dict[str, Any] | None = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    message: str | None = None
    finish_reason: str | None = None
    cut_at: int | None = None


ReplyFn = Callable[[dict[str, Any]], "Reply | str"]


def _word_count(text: str | None) -> int:
    return len((text or "").split())


def completion_body(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A chat.completion body; usage counts are whitespace-separated words, so tests can predict them."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    prompt_words = sum(_word_count(m.get("content")) for m in request.get("messages", []))
    completion_words = _word_count(reply.content)
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "scripted"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_words,
            "completion_tokens": completion_words,
            "total_tokens": prompt_words + completion_words,
        },
    }


def is_probe(body: dict[str, Any]) -> bool:
    """The one-token request `memalpha score/eval` send each model before any work (benchmark.journey)."""
    from benchmark.journey import PROBE

    return body.get("messages") == PROBE.message_dicts() and body.get("max_tokens") == PROBE.params.max_tokens


EMBEDDING_DIMS = 64


def word_embedding(text: str, dims: int = EMBEDDING_DIMS) -> list[float]:
    """A unit vector from the text's lowercased words, each hashed to one dimension: texts sharing
    words are close, and the same text always gets the same vector."""
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        vector[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % dims] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector] if any(vector) else [1.0 / math.sqrt(dims)] * dims


def embeddings_body(request: dict[str, Any]) -> dict[str, Any]:
    texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
    dims = int(request.get("dimensions") or EMBEDDING_DIMS)
    return {
        "object": "list",
        "model": request.get("model", "scripted-embedding"),
        "data": [
            {"object": "embedding", "index": i, "embedding": word_embedding(t, dims)} for i, t in enumerate(texts)
        ],
        "usage": {
            "prompt_tokens": sum(_word_count(t) for t in texts),
            "total_tokens": sum(_word_count(t) for t in texts),
        },
    }


class ScriptedServer:
    """An OpenAI-compatible chat server in a thread on 127.0.0.1; `reply_fn(request_json)` decides each
    answer (a string is shorthand for `Reply(content=...)`). `requests` lists the bodies received,
    `headers` the request headers of each (names in lower case), `ports` the client port each came
    from (one per connection).

    The harness's preflight probes (`is_probe`) are answered "ready" and counted in `probes`, not in
    `requests`, unless `answer_probes` is False: then `reply_fn` answers them like any request.
    `probe_headers` holds the headers of each probe and of each `GET /v1/models` (the preflight's)."""

    def __init__(
        self,
        reply_fn: ReplyFn,
        answer_probes: bool = True,
        embedding_status: Callable[[dict[str, Any]], int] | None = None,
    ):
        self.reply_fn = reply_fn
        self.answer_probes = answer_probes
        self.embedding_status = embedding_status
        self.probes = 0
        self.probe_headers: list[dict[str, str]] = []
        self.requests: list[dict[str, Any]] = []
        self.embedding_requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.ports: list[int] = []
        self.models_body: bytes | None = None  # what GET /v1/models answers, when set (a misbehaving server)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(self, body: dict[str, Any], headers: dict[str, str], port: int) -> tuple[Reply, bytes]:
        if self.answer_probes and is_probe(body):
            with self._lock:
                self.probes += 1
                self.probe_headers.append(headers)
            return Reply(), json.dumps(completion_body(body, Reply(content="ready"))).encode()
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            self.ports.append(port)
        reply = self.reply_fn(body)
        if isinstance(reply, str):
            reply = Reply(content=reply)
        if reply.raw is not None:
            return reply, reply.raw
        if reply.body is not None:
            return reply, json.dumps(reply.body).encode()
        if reply.status != 200:
            error = {
                "message": reply.message or f"scripted status {reply.status}",
                "type": "scripted_error",
                "code": reply.status,
            }
            return reply, json.dumps({"error": error}).encode()
        return reply, json.dumps(completion_body(body, reply)).encode()

    def _embed(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.embedding_requests.append(body)
        status = self.embedding_status(body) if self.embedding_status else 200
        if status != 200:
            return status, {"error": {"message": f"scripted status {status}", "type": "scripted_error", "code": status}}
        return 200, embeddings_body(body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, reply: Reply, data: bytes) -> None:
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (reply.headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    if reply.cut_at is None:
                        self.wfile.write(data)
                    else:
                        self.wfile.write(data[: reply.cut_at])
                        self.wfile.flush()
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    self.close_connection = True

            def _json(self, status: int, body: dict[str, Any]) -> None:
                self._send(Reply(status=status), json.dumps(body).encode())

            def do_GET(self) -> None:
                if self.path == "/health":
                    self._json(200, {"status": "ok"})
                elif self.path == "/v1/models":
                    with server._lock:
                        server.probe_headers.append({name.lower(): value for name, value in self.headers.items()})
                    if server.models_body is not None:
                        self._send(Reply(), server.models_body)
                    else:
                        self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                data = self.rfile.read(length)
                if self.path == "/v1/embeddings":
                    self._json(*server._embed(json.loads(data)))
                    return
                if self.path != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply, body = server._answer(json.loads(data), headers, self.client_address[1])
                time.sleep(reply.delay)
                self._send(reply, body)

        return Handler


MALFORMED_REPLIES: dict[str, Reply] = {
    "invalid JSON": Reply(raw=b'{"choices": [{"message": {"content": "Par'),
    "an HTML page": Reply(raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"),
    "a 200 cut short": Reply(content="the whole answer, never delivered", cut_at=40),
    "empty choices": Reply(body={"id": "x", "object": "chat.completion", "choices": []}),
    "no choices": Reply(body={"id": "x", "object": "chat.completion"}),
    "null content": Reply(content=None),
    "missing content": Reply(body={"choices": [{"index": 0, "message": {"role": "assistant"}}]}),
    "cut while reasoning": Reply(content="<think>\nLet me think about the river", finish_reason="length"),
    "an empty body": Reply(raw=b""),
    "nested 100,000 levels": Reply(raw=b"[" * 100_000 + b"]" * 100_000),  # RecursionError in json.loads
    "an integer of 5,000 digits": Reply(raw=b'{"choices": [], "id": ' + b"7" * 5000 + b"}"),  # ValueError there
    "a lone surrogate in the answer": Reply(
        raw=b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "Par\\ud800is"}, '
        b'"finish_reason": "stop"}]}'
    ),  # text that cannot be saved as UTF-8
}
"""Every class of malformed 200 reply a reader must retry and never take as an answer."""

TRANSIENT_ERRORS: dict[str, Reply] = {
    "HTTP 500": Reply(status=500),
    "HTTP 503": Reply(status=503),
    "HTTP 429 with Retry-After": Reply(status=429, headers={"Retry-After": "0"}),
}


class Faults:
    """`reply_fn` behind a server that misbehaves on purpose: each request, with probability `rate`
    (a seeded generator, so runs repeat), gets the next fault of `faults` in turn instead of its
    answer. `injected` counts the faults sent, by name."""

    def __init__(self, reply_fn: ReplyFn, rate: float, faults: dict[str, Reply], seed: int = 0):
        import random

        self.reply_fn, self.rate, self.faults = reply_fn, rate, list(faults.items())
        self.injected: dict[str, int] = dict.fromkeys(faults, 0)
        self._random = random.Random(seed)
        self._turn = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply | str:
        with self._lock:
            faulty = self._random.random() < self.rate
            if faulty:
                name, reply = self.faults[self._turn % len(self.faults)]
                self._turn += 1
                self.injected[name] += 1
        return reply if faulty else self.reply_fn(body)


OPENAI_CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "seed",
        "n",
        "stream",
        "stream_options",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "response_format",
        "user",
        "parallel_tool_calls",
    }
)


def openai_strict(reply_fn: ReplyFn) -> ReplyFn:
    """`reply_fn` behind the OpenAI API's check of request fields: a field the API does not define is a
    400 with the API's error shape and wording, before any answer."""

    def reply(body: dict[str, Any]) -> Reply | str:
        unknown = sorted(set(body) - OPENAI_CHAT_FIELDS)
        if unknown:
            error = {
                "message": f"Unrecognized request argument supplied: {unknown[0]}",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            return Reply(status=400, body={"error": error})
        return reply_fn(body)

    return reply


@pytest.fixture
def scripted_server() -> Iterator[Callable[..., ScriptedServer]]:
    """A factory: `start(reply_fn, answer_probes=True, embedding_status=None)` returns a running
    ScriptedServer, stopped after the test."""
    started: list[ScriptedServer] = []

    def start(
        reply_fn: ReplyFn,
        answer_probes: bool = True,
        embedding_status: Callable[[dict[str, Any]], int] | None = None,
    ) -> ScriptedServer:
        started.append(ScriptedServer(reply_fn, answer_probes, embedding_status).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()
