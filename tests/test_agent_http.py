"""The `http` agent: the memalpha-agent/1 protocol against the example agent server in examples/http_agent/,
as a separate process, on a task built from the real raw SQuAD sample; and its failures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from servers import free_port, stop_process, wait_for_health

from benchmark.agents import AgentOptionError, InstanceInfo, make_agent
from benchmark.agents.http import PROTOCOL, HTTPAgentError
from benchmark.memory import read_memories
from benchmark.running import ERRORS, MEMORIES, run_agent
from tasks.build import build_task
from tasks.errors import UsageError
from tasks.manifest import load_built

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "http_agent" / "server.py"
MEMBERS = [("squad", None)]  # both splits: two instances with limit=1


def load_example():
    spec = importlib.util.spec_from_file_location("example_http_agent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.fixture(scope="module")
def data(raw_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    build_task("squad", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=1, show_progress=False)
    return out


def instances(data: Path) -> dict[str, dict[str, Any]]:
    dataset, _ = load_built(data, "squad")
    return {row["instance_id"]: row for split in dataset.values() for row in split}


@pytest.fixture(scope="module")
def example_process() -> Iterator[str]:
    """The example agent as its own process on a free port (it prints where it listens)."""
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        line = process.stdout.readline()
        assert "listening on http://" in line, line
        url = line.split("listening on ")[1].strip()
        wait_for_health(f"{url}/health", timeout=20, process=process)
        yield url
    finally:
        stop_process(process)
        process.stdout.close()


@contextmanager
def in_thread(memory_class, port: int = 0) -> Iterator[Any]:
    """The example server in this process, with another memory policy, to script failures."""
    server = example.AgentServer(("127.0.0.1", port), memory_class)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.realdata
def test_example_agent_process_end_to_end(example_process, data, tmp_path):
    agent = make_agent("http", {"base_url": example_process + "/"})
    summary = run_agent(agent, tmp_path / "run", data, MEMBERS, concurrency=2, show_progress=False)
    rows = instances(data)
    assert summary.written == 2 and not summary.failed

    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["agent"]["server"] == {"protocol": PROTOCOL, "name": "example-notebook", "version": "1.0"}
    records = {r.instance_id: r for r in read_memories(tmp_path / "run" / MEMORIES)}
    assert set(records) == set(rows)
    for instance_id, record in records.items():
        chunks, memory = rows[instance_id]["chunks"], record.memory
        # semantic: the sentences of all chunks, in order, losing no word
        assert [w for e in memory.semantic for w in e.content.split()] == [w for c in chunks for w in c.split()]
        assert [e.id for e in memory.semantic] == [f"s{i}" for i in range(len(memory.semantic))]
        assert len(memory.semantic) > len(chunks)  # split into sentences, not stored whole
        # episodic: each chunk's first sentence, stamped with its index
        assert [(e.id, e.timestamp) for e in memory.episodic] == [(f"e{i}", f"chunk {i}") for i in range(len(chunks))]
        for event, chunk in zip(memory.episodic, chunks, strict=True):
            assert chunk.strip().startswith(event.content) and event.content[-1] in ".!?"
            assert event.content in {e.content for e in memory.semantic}
        n, facts = len(chunks), len(memory.semantic)
        assert memory.core == f"Read {n} of {n} chunks of a squad input; {facts} sentences kept as facts."
        assert record.stats["sentences"] == len(memory.semantic)
        assert record.stats["chunks_seen"] == len(chunks)


def test_session_lifecycle_opens_on_first_chunk_and_deletes_after_memory():
    info = InstanceInfo("i-1", "squad", "AR", 2)
    with in_thread(example.NotebookMemory) as server:
        agent = make_agent("http", {"base_url": server.url})
        session = agent.new_session(info)
        assert server.sessions == {}
        session.observe("Alice met Bob. They talked.")
        (memory,) = server.sessions.values()
        assert (memory.instance_id, memory.task, memory.competency, memory.num_chunks) == ("i-1", "squad", "AR", 2)
        session.observe('Carol \u00e9crit "quoted"\nnew line!')
        assert session.memory().episodic[1].content == 'Carol \u00e9crit "quoted"\nnew line!'
        assert server.sessions == {}  # deleted as soon as the memory is read, before close()
        assert session.stats() == {"chunks_seen": 2, "sentences": 3}


def test_server_down_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(HTTPAgentError, match=r"GET http://127\.0\.0\.1:\d+/health: the agent server does not answer"):
        make_agent("http", {"base_url": url})


@contextmanager
def health_server(status: int, body: dict[str, Any] | bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_health_checks_the_protocol_version():
    with (
        health_server(200, {"protocol": "memalpha-agent/2", "name": "future"}) as url,
        pytest.raises(
            HTTPAgentError, match=r"speaks protocol 'memalpha-agent/2'; this harness speaks 'memalpha-agent/1'"
        ),
    ):
        make_agent("http", {"base_url": url})
    with health_server(404, {"error": "no such route"}) as url:  # /health is optional
        assert make_agent("http", {"base_url": url}).describe()["server"] is None
    with (
        health_server(503, {"error": "warming up"}) as url,
        pytest.raises(HTTPAgentError, match=r"/health: HTTP 503: warming up"),
    ):
        make_agent("http", {"base_url": url})
    with (
        health_server(200, b"<html>a web page</html>") as url,
        pytest.raises(HTTPAgentError, match=r"/health: HTTP 200: the answer is not JSON: '<html>a web page</html>'"),
    ):
        make_agent("http", {"base_url": url})


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b'{"error": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", '\'{"error": [[[['),  # RecursionError before
        (b'{"error": ' + b"7" * 5000 + b"}", '\'{"error": 7777'),  # ValueError before
    ],
    ids=["nested 100,000 levels", "an integer of 5,000 digits"],
)
def test_an_error_body_the_strict_reader_refuses_is_shown_cut(body, shown):
    with health_server(503, body) as url, pytest.raises(HTTPAgentError) as refused:
        make_agent("http", {"base_url": url})
    message = str(refused.value)
    assert f"/health: HTTP 503: {shown}" in message and message.endswith("...'") and len(message) < 400


def test_options_are_checked():
    with pytest.raises(AgentOptionError, match="base_url is required"):
        make_agent("http", {})
    with pytest.raises(AgentOptionError, match="unknown option"):
        make_agent("http", {"base_url": "http://127.0.0.1:1", "retries": "3"})
    with pytest.raises(AgentOptionError, match="must be an integer"):
        make_agent("http", {"base_url": "http://127.0.0.1:1", "timeout": "soon"})


def failed_lines(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / ERRORS).read_text().splitlines()]


@pytest.mark.realdata
def test_malformed_memory_fails_that_instance_only_and_resumes(data, tmp_path):
    rows = instances(data)
    broken_id = sorted(rows)[0]

    class Broken(example.NotebookMemory):
        def to_json(self) -> dict[str, Any]:
            body = super().to_json()
            if self.instance_id == broken_id:
                body["memory"]["semantic"][1]["content"] = "  "
                body["memory"]["episodic"][0]["id"] = 7
            return body

    run = tmp_path / "run"
    with in_thread(Broken) as server:
        summary = run_agent(make_agent("http", {"base_url": server.url}), run, data, MEMBERS, show_progress=False)
        assert server.sessions == {}  # every session deleted, the failed one too
    assert summary.written == 1
    error = summary.failed[f"squad/{broken_id}"]
    assert f"GET {server.url}/sessions/" in error and f"bad memory for instance {broken_id!r}" in error
    assert "field 'memory.semantic[1].content': must be a non-empty string" in error
    assert "field 'memory.episodic[0].id': must be a non-empty string" in error
    assert [r.instance_id for r in read_memories(run / MEMORIES)] == [i for i in sorted(rows) if i != broken_id]
    assert [line["instance_id"] for line in failed_lines(run)] == [broken_id]

    # the agent fixed and restarted at the same address: the resumed run does only the failed instance
    with in_thread(example.NotebookMemory, server.server_address[1]) as server:
        again = run_agent(make_agent("http", {"base_url": server.url}), run, data, MEMBERS, show_progress=False)
    assert (again.written, again.resumed, again.failed) == (1, 1, {})
    assert sorted(r.instance_id for r in read_memories(run / MEMORIES)) == sorted(rows)


@pytest.mark.realdata
def test_chunk_error_names_url_status_and_message(data, tmp_path):
    rows = instances(data)
    broken_id = sorted(rows)[1]
    seen: list[tuple[str, int]] = []

    class Crashing(example.NotebookMemory):
        def add_chunk(self, index: int, chunk: str) -> None:
            seen.append((self.instance_id, index))
            if self.instance_id == broken_id and index == 2:
                raise RuntimeError("the notebook is full")
            super().add_chunk(index, chunk)

    with in_thread(Crashing) as server:
        summary = run_agent(
            make_agent("http", {"base_url": server.url}),
            tmp_path / "run",
            data,
            MEMBERS,
            concurrency=2,
            show_progress=False,
        )
        assert server.sessions == {}
    error = summary.failed[f"squad/{broken_id}"]
    assert error.startswith(f"HTTPAgentError: POST {server.url}/sessions/")
    assert error.endswith("/chunks: HTTP 500: RuntimeError: the notebook is full")
    assert summary.written == 1
    # chunks of a session arrive in order, and none after a failure
    for instance_id, row in rows.items():
        expected = 3 if instance_id == broken_id else len(row["chunks"])
        assert [i for iid, i in seen if iid == instance_id] == list(range(expected))


@pytest.mark.realdata
def test_slow_server_times_out(data, tmp_path):
    class Slow(example.NotebookMemory):
        def add_chunk(self, index: int, chunk: str) -> None:
            if index == 1:
                time.sleep(2.5)
            super().add_chunk(index, chunk)

    with in_thread(Slow) as server:
        agent = make_agent("http", {"base_url": server.url, "timeout": "1"})
        summary = run_agent(agent, tmp_path / "run", data, MEMBERS, limit=1, concurrency=2, show_progress=False)
    assert summary.written == 0 and len(summary.failed) == 2
    assert all("no answer within 1 s (raise it with --agent-opt timeout=SECONDS)" in e for e in summary.failed.values())


@pytest.mark.realdata
def test_a_run_is_the_servers_declared_name_and_version_not_its_address(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    rows = instances(data)
    with in_thread(example.NotebookMemory) as server:
        first = run_agent(
            make_agent("http", {"base_url": server.url}), run, data, [("squad", "train")], show_progress=False
        )
    config = json.loads((run / "config.json").read_text())
    assert config["agent_identity"] == {
        "name": "http",
        "options": {},
        "server": {"protocol": PROTOCOL, "name": "example-notebook", "version": "1.0"},
    }
    # the same agent at another address resumes the run: its finished instance is kept
    with in_thread(example.NotebookMemory) as moved:
        assert moved.url != server.url
        again = run_agent(
            make_agent("http", {"base_url": moved.url}), run, data, [("squad", "train")], show_progress=False
        )
    assert (first.written, again.written, again.resumed) == (1, 0, 1)
    # a new version of it is another run, and the message says which field differs
    monkeypatch.setattr(example, "VERSION", "2.0")
    with in_thread(example.NotebookMemory) as newer, pytest.raises(UsageError) as refused:
        run_agent(make_agent("http", {"base_url": newer.url}), run, data, [("squad", "train")], show_progress=False)
    assert 'agent_identity.server.version: "1.0" before, "2.0" now' in str(refused.value)
    assert len(read_memories(run / MEMORIES)) == 1 and len(rows) == 2
