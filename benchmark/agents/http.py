"""The `http` agent: an agent in any language, behind the small JSON-over-HTTP protocol of
docs/http-agent-protocol.md (`memalpha-agent/1`).

Each instance is one server-side session: opened just before its first chunk, fed its chunks in
order, asked for its memory once, then deleted. Sessions are opened lazily so that a server failing
on one instance fails only that instance; the runner records it and goes on. The client is the
standard library's urllib: no dependency, and one connection per request is cheap next to the work
an agent does per chunk.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from typing import Any

from tasks.errors import TaskError
from tasks.strict_json import JsonProblem, decode

from ..memory import Memory, parse_record
from .base import Agent, AgentOption, AgentOptionError, InstanceInfo, Session

PROTOCOL = "memalpha-agent/1"
DEFAULT_TIMEOUT = 300
_SHOWN_BODY = 300  # characters of a server's non-JSON answer quoted in an error


class HTTPAgentError(TaskError):
    """The agent server is unreachable, timed out, answered with an error, or broke the protocol.

    `status` is the HTTP status of an error answer (None when there was no answer).
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AgentServer:
    """JSON requests to one agent server; every failure becomes an HTTPAgentError naming the URL."""

    base_url: str
    timeout: float

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The decoded JSON object of a 2xx answer (an empty body reads as {})."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json", "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            raise HTTPAgentError(f"{method} {url}: HTTP {exc.code}: {_server_message(exc.read())}", exc.code) from None
        except urllib.error.URLError as exc:
            raise HTTPAgentError(f"{method} {url}: {self._unreachable(exc.reason)}") from None
        except (OSError, http.client.HTTPException) as exc:  # a read timeout, a dropped connection
            raise HTTPAgentError(f"{method} {url}: {self._unreachable(exc)}") from None
        if not raw.strip():
            return {}
        try:
            obj = decode(raw)  # strict: a memory that could not be written back or read again is refused here
        except JsonProblem as problem:
            if problem.line is not None:  # not UTF-8, or not JSON at all
                raise HTTPAgentError(f"{method} {url}: HTTP {status}: the answer is not JSON: {_shown(raw)}") from None
            where = f" (field {problem.field!r})" if problem.field else ""
            message = f"the answer is refused{where}: {problem.message}"
            raise HTTPAgentError(f"{method} {url}: HTTP {status}: {message}") from None
        if not isinstance(obj, dict):
            raise HTTPAgentError(f"{method} {url}: HTTP {status}: the answer must be a JSON object, got {_shown(raw)}")
        return obj

    def _unreachable(self, reason: object) -> str:
        if isinstance(reason, TimeoutError):
            return f"no answer within {self.timeout:g} s (raise it with --agent-opt timeout=SECONDS)"
        why = str(reason) or type(reason).__name__
        return f"the agent server does not answer ({why}); is it running at {self.base_url}?"


def _shown(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return repr(text[:_SHOWN_BODY] + ("..." if len(text) > _SHOWN_BODY else ""))


def _server_message(raw: bytes) -> str:
    """The server's own words: the `error` field of a JSON body, else the body as text."""
    try:
        obj = decode(raw)
    except JsonProblem:
        return _shown(raw) if raw.strip() else "(empty body)"
    if isinstance(obj, dict) and "error" in obj:
        error = obj["error"]
        return str(error.get("message", error)) if isinstance(error, dict) else str(error)
    return _shown(raw)


class HTTPSession(Session):
    """One instance on the server: POST /sessions on the first chunk, then chunks, memory, DELETE."""

    def __init__(self, agent: HTTPAgent, info: InstanceInfo):
        self.agent, self.info = agent, info
        self.path: str | None = None  # /sessions/{id} once opened
        self.index = 0
        self._stats: dict[str, Any] = {}

    def _open(self) -> str:
        answer = self.agent.server.call(
            "POST",
            "/sessions",
            {
                "instance_id": self.info.instance_id,
                "task": self.info.task,
                "competency": self.info.competency,
                "num_chunks": self.info.num_chunks,
            },
        )
        session_id = answer.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            raise HTTPAgentError(
                f"POST {self.agent.server.base_url}/sessions: the answer has no 'session_id' string: {answer!r}"
            )
        self.path = f"/sessions/{urllib.parse.quote(session_id, safe='')}"
        self.agent.opened(self.path)
        return self.path

    def observe(self, chunk: str) -> None:
        path = self.path or self._open()
        try:
            self.agent.server.call("POST", f"{path}/chunks", {"index": self.index, "chunk": chunk})
        except HTTPAgentError:
            self.agent.delete(path)  # this instance is over; free the server's session
            raise
        self.index += 1

    def memory(self) -> Memory:
        path = self.path or self._open()
        try:
            answer = self.agent.server.call("GET", f"{path}/memory")
        finally:
            self.agent.delete(path)
        record, problems = parse_record(
            {
                "instance_id": self.info.instance_id,
                "task": self.info.task,
                "memory": answer.get("memory"),
                "stats": answer.get("stats", {}),
            }
        )
        if record is None:
            fields = "; ".join(f"field {name!r}: {message}" for name, message in problems)
            raise HTTPAgentError(
                f"GET {self.agent.server.base_url}{path}/memory: bad memory for instance "
                f"{self.info.instance_id!r}: {fields}"
            )
        self._stats = record.stats
        return record.memory

    def stats(self) -> dict[str, Any]:
        return self._stats


class HTTPAgent(Agent):
    """An agent served over HTTP (protocol `memalpha-agent/1`, docs/http-agent-protocol.md).

    Instances run concurrently as the runner's concurrency says. At start the server's optional
    `GET /health` is checked, so a server that is down or speaks another protocol version fails the
    run at once rather than every instance. A run is identified by the name and version the server
    declares there, not by its address: the same agent moved to another port resumes its run, and
    a new version of it does not.
    """

    name = "http"
    option_docs = (
        AgentOption("base_url", None, "the agent server, e.g. http://127.0.0.1:8765 (required)"),
        AgentOption("timeout", str(DEFAULT_TIMEOUT), "seconds per request"),
    )
    operational_options = frozenset({"base_url", "timeout"})

    def __init__(self, **options: str):
        super().__init__(**options)
        opts = self.option_reader()
        base_url = (opts.get("base_url") or "").rstrip("/")
        timeout = opts.integer("timeout", low=1)
        self.resolved_options = opts.finish()
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise AgentOptionError(
                "agent http: option base_url is required, an http(s) URL: --agent-opt base_url=http://127.0.0.1:8765"
            )
        self.server = AgentServer(base_url, float(timeout))
        self.server_info = self._health()
        self._open: set[str] = set()
        self._lock = threading.Lock()

    def _health(self) -> dict[str, Any] | None:
        """The server's /health answer; None when it has no such endpoint (404), which is allowed."""
        try:
            answer = self.server.call("GET", "/health")
        except HTTPAgentError as exc:
            if exc.status == 404:
                return None
            raise
        protocol = answer.get("protocol")
        if protocol != PROTOCOL:
            raise HTTPAgentError(
                f"GET {self.server.base_url}/health: the agent server speaks protocol {protocol!r}; "
                f"this harness speaks {PROTOCOL!r} (docs/http-agent-protocol.md)"
            )
        return {key: answer[key] for key in ("protocol", "name", "version") if key in answer}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "server": self.server_info}

    def identity(self) -> dict[str, Any]:
        """The server's declared protocol, name and version (None without /health), not its address."""
        return {**super().identity(), "server": self.server_info}

    def new_session(self, instance: InstanceInfo) -> Session:
        return HTTPSession(self, instance)

    def opened(self, path: str) -> None:
        with self._lock:
            self._open.add(path)

    def delete(self, path: str) -> None:
        """DELETE a server session. Best effort: the memory is already read or the instance already failed."""
        with self._lock:
            if path not in self._open:
                return
            self._open.discard(path)
        try:
            self.server.call("DELETE", path)
        except HTTPAgentError as exc:
            warnings.warn(f"agent http: could not delete a session: {exc}", stacklevel=2)

    def close(self) -> None:
        """Delete the sessions a run left open (instances that never finished)."""
        with self._lock:
            left = sorted(self._open)
        for path in left:
            self.delete(path)
