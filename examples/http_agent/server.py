"""An example memory agent behind the `memalpha-agent/1` HTTP protocol (docs/http-agent-protocol.md).

Standard library only, so it runs anywhere Python 3.11 does. Its memory policy is deliberately
simple, to show the protocol rather than a good agent:

- semantic: every sentence of every chunk, one entry each (ids s0, s1, ...);
- episodic: the first sentence of each chunk, as an event stamped with the chunk's index (ids e0, e1, ...);
- core: one line saying what was read.

Run it with `python examples/http_agent/server.py --port 8765`, then
`memalpha run --agent http --agent-opt base_url=http://127.0.0.1:8765 ...`.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROTOCOL = "memalpha-agent/1"
NAME, VERSION = "example-notebook", "1.0"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class ProtocolError(Exception):
    """A request this server refuses: answered with `status` and {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class NotebookMemory:
    """One session's memory: sentences as facts, each chunk's first sentence as an event."""

    def __init__(self, instance_id: str, task: str, competency: str, num_chunks: int):
        self.instance_id, self.task, self.competency, self.num_chunks = instance_id, task, competency, num_chunks
        self.chunks_seen = 0
        self.semantic: list[dict[str, str]] = []
        self.episodic: list[dict[str, str]] = []

    def add_chunk(self, index: int, chunk: str) -> None:
        if index != self.chunks_seen:
            raise ProtocolError(409, f"expected chunk {self.chunks_seen}, got chunk {index}")
        sentences = [s.strip() for s in SENTENCE_END.split(chunk) if s.strip()]
        for sentence in sentences:
            self.semantic.append({"id": f"s{len(self.semantic)}", "content": sentence})
        if sentences:
            self.episodic.append({"id": f"e{index}", "content": sentences[0], "timestamp": f"chunk {index}"})
        self.chunks_seen += 1

    def core(self) -> str:
        return (
            f"Read {self.chunks_seen} of {self.num_chunks} chunks of a {self.task} input; "
            f"{len(self.semantic)} sentences kept as facts."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "memory": {"core": self.core(), "semantic": self.semantic, "episodic": self.episodic},
            "stats": {"chunks_seen": self.chunks_seen, "sentences": len(self.semantic)},
        }


class AgentServer(ThreadingHTTPServer):
    """Holds the open sessions; `memory_class` builds each session's memory."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], memory_class: type[NotebookMemory] = NotebookMemory):
        super().__init__(address, Handler)
        self.memory_class = memory_class
        self.sessions: dict[str, NotebookMemory] = {}
        self.lock = threading.Lock()

    def session(self, session_id: str) -> NotebookMemory:
        with self.lock:
            if session_id not in self.sessions:
                raise ProtocolError(404, f"no session {session_id!r}")
            return self.sessions[session_id]


class Handler(BaseHTTPRequestHandler):
    server: AgentServer

    def log_message(self, format: str, *args: Any) -> None:  # one line per request is noise here
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        try:
            status, body = self._route(method, parts)
        except ProtocolError as exc:
            status, body = exc.status, {"error": str(exc)}
        except Exception as exc:  # an agent bug: report it to the harness, keep serving the others
            status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str, parts: list[str]) -> tuple[int, dict[str, Any]]:
        if method == "GET" and parts == ["health"]:
            return 200, {"protocol": PROTOCOL, "name": NAME, "version": VERSION}
        if method == "POST" and parts == ["sessions"]:
            return 200, self._open(self._body())
        if len(parts) >= 2 and parts[0] == "sessions":
            session_id, rest = parts[1], parts[2:]
            if method == "POST" and rest == ["chunks"]:
                body = self._body()
                index, chunk = body.get("index"), body.get("chunk")
                if not isinstance(index, int) or not isinstance(chunk, str):
                    raise ProtocolError(400, "a chunk needs 'index' (integer) and 'chunk' (string)")
                self.server.session(session_id).add_chunk(index, chunk)
                return 200, {}
            if method == "GET" and rest == ["memory"]:
                return 200, self.server.session(session_id).to_json()
            if method == "DELETE" and not rest:
                self.server.session(session_id)
                with self.server.lock:
                    self.server.sessions.pop(session_id, None)
                return 200, {}
        raise ProtocolError(404, f"no route {method} {self.path}")

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as exc:
            raise ProtocolError(400, f"the body is not JSON ({exc.msg})") from None
        if not isinstance(body, dict):
            raise ProtocolError(400, "the body must be a JSON object")
        return body

    def _open(self, body: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ("instance_id", "task", "competency", "num_chunks") if k not in body]
        if missing:
            raise ProtocolError(400, f"missing field(s) {', '.join(missing)}")
        memory = self.server.memory_class(
            str(body["instance_id"]), str(body["task"]), str(body["competency"]), int(body["num_chunks"])
        )
        session_id = uuid.uuid4().hex
        with self.server.lock:
            self.server.sessions[session_id] = memory
        return {"session_id": session_id}


def main() -> None:
    parser = argparse.ArgumentParser(description="Example memalpha-agent/1 HTTP agent (stdlib only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = AgentServer((args.host, args.port))
    print(f"{NAME} {VERSION} listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
