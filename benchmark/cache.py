"""A persistent response cache: every reader answer is stored in a SQLite file as soon as it arrives,
keyed by (model, messages, sampling settings, tools), so a killed run resumes where it stopped and
re-scoring the same memories costs nothing.

The file is in WAL mode and every write commits at once; one connection guarded by a lock serves
all threads of a process, and SQLite's own locking (with a generous busy timeout) serves several
processes sharing the file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from benchmark.readers.base import OnResult, Reader, ReaderError, ReaderRequest, ReaderResponse, RequestsFailed

# Where and how a model is reached does not change its answers: the server addresses and how the
# openai backend sends `chat_template_kwargs` are not part of a key.
NOT_IDENTITY = frozenset({"base_url", "base_urls", "template_kwargs", "template_kwargs_rejected_by"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    raw_text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL,
    tool_calls TEXT
)
"""
# `tool_calls` (JSON, NULL for none) came later: files written before it get the column added on
# open, and their rows read back as answers without tool calls, which is what they were.
_ADD_TOOL_CALLS = "ALTER TABLE responses ADD COLUMN tool_calls TEXT"


class ResponseCache:
    """Reader responses in a SQLite file at `path` (created with its folder if missing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            # autocommit (isolation_level=None): each statement is its own committed transaction
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process in WAL mode
            self._db.execute(_SCHEMA)
            self._add_tool_calls_column()
        except sqlite3.DatabaseError as exc:
            raise ReaderError(f"cannot open the response cache {self.path}: {exc}") from exc

    def _add_tool_calls_column(self) -> None:
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
        if "tool_calls" in columns:
            return
        try:
            self._db.execute(_ADD_TOOL_CALLS)
        except sqlite3.OperationalError as exc:  # another process added it first
            if "duplicate column" not in str(exc):
                raise

    @staticmethod
    def key(model_description: dict, request: ReaderRequest) -> str:
        """sha256 of the canonical JSON of (model identity, messages, sampling settings, tools if any)."""
        identity = {k: v for k, v in model_description.items() if k not in NOT_IDENTITY}
        payload = {
            "model": identity,
            "messages": [list(message) for message in request.messages],
            "params": request.params.as_dict(),
        }
        if request.tools is not None:  # absent otherwise, so keys of requests without tools never changed
            payload["tools"] = request.tools
        canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def get(self, key: str) -> ReaderResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT raw_text, prompt_tokens, completion_tokens, tool_calls FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        raw_text, prompt_tokens, completion_tokens, tool_calls = row
        return ReaderResponse.from_raw(
            raw_text,
            prompt_tokens,
            completion_tokens,
            cached=True,
            tool_calls=None if tool_calls is None else json.loads(tool_calls),
        )

    def put(self, key: str, response: ReaderResponse) -> None:
        tool_calls = None if response.tool_calls is None else json.dumps(response.tool_calls, ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, raw_text, prompt_tokens, completion_tokens, created, "
                "tool_calls) VALUES (?, ?, ?, ?, ?, ?)",
                (key, response.raw_text, response.prompt_tokens, response.completion_tokens, time.time(), tool_calls),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CachedReader:
    """A Reader that answers from `cache` where it can and asks `reader` only for the rest, storing
    each new answer the moment it arrives. Only answers are stored: a request that failed is asked
    again by the next call, and RequestsFailed from the inner reader comes back with this call's
    request indices.

    Counters (cumulative over calls): `hits`, requests answered from the cache; `misses`, requests
    sent to the inner reader (identical requests within one call are sent once).
    """

    def __init__(self, reader: Reader, cache: ResponseCache):
        self.reader = reader
        self.cache = cache
        self.hits = 0
        self.misses = 0

    def describe(self) -> dict:
        return self.reader.describe()

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        model = self.reader.describe()
        results: list[ReaderResponse | None] = [None] * len(requests)
        waiting: dict[str, list[int]] = {}  # key -> indices of the requests it answers
        for i, request in enumerate(requests):
            key = self.cache.key(model, request)
            hit = self.cache.get(key)
            if hit is None:
                waiting.setdefault(key, []).append(i)
                continue
            self.hits += 1
            results[i] = hit
            if on_result is not None:
                on_result(i, hit)
        keys = list(waiting)

        def store(j: int, response: ReaderResponse) -> None:
            self.cache.put(keys[j], response)
            for i in waiting[keys[j]]:
                results[i] = response
                if on_result is not None:
                    on_result(i, response)

        self.misses += len(keys)
        if keys:
            try:
                self.reader.generate([requests[waiting[k][0]] for k in keys], on_result=store)
            except RequestsFailed as failed:
                failures = {i: reason for j, reason in failed.failures.items() for i in waiting[keys[j]]}
                raise RequestsFailed(failures, len(requests)) from failed
        answered = [r for r in results if r is not None]
        if len(answered) != len(requests):
            raise ReaderError(f"reader {model} returned without reporting every answer through on_result")
        return answered
