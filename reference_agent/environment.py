"""The memory an agent builds while reading, and the three tools that change it.

The tools keep the original Mem-α semantics (core is one paragraph, rewritten whole and capped at
512 tokens; semantic and episodic are ordered lists of entries; an exact duplicate insert is
skipped) and fix its bugs: ids are sequential per type and never reused (``s0, s1, ...`` /
``e0, e1, ...``) instead of 4 random hex digits, and an unknown id is an error, also for delete.
No call ever raises: a bad call returns an error result for the model and leaves the memory as it
was, because every argument is checked before anything changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

from benchmark.memory import Memory, MemoryEntry
from tasks.tokenization import TokenCounter

from .toolcalls import ToolCall

CORE_TOKEN_LIMIT = 512
TRUNCATION_MARKER = " [truncated here: core memory holds at most {limit} tokens]"
MEMORY_TYPES = ("core", "semantic", "episodic")
ID_PREFIX = {"semantic": "s", "episodic": "e"}

Status = Literal["ok", "skipped", "error"]


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_ID_PARAM = {
    "type": "string",
    "description": "The id of a semantic or episodic entry, as shown in brackets "
    "in the memory state (for example s3 or e0).",
}
_ALL_TYPES = {"type": "string", "enum": ["core_memory", "semantic_memory", "episodic_memory"]}

# OpenAI function format. The `memory_type` values keep the original `_memory` names: the released
# checkpoint was trained on them (short names and spelling variants are accepted too).
TOOL_SCHEMAS: list[dict[str, Any]] = [
    _function(
        "new_memory_insert",
        "Add one new entry to semantic memory (facts and knowledge) or episodic memory (events and when "
        "they happened). An entry whose exact text is already stored in that memory is skipped.",
        {
            "memory_type": {
                "type": "string",
                "enum": ["semantic_memory", "episodic_memory"],
                "description": "The memory to add the entry to.",
            },
            "content": {"type": "string", "description": "The entry: one short, self-contained fact or event."},
            "timestamp": {
                "type": "string",
                "description": "Episodic entries only, optional: when the event happened, for example 2024-03-02.",
            },
        },
        ["memory_type", "content"],
    ),
    _function(
        "memory_update",
        f"Rewrite the core memory paragraph as a whole (at most {CORE_TOKEN_LIMIT} tokens), or replace the "
        "text of one semantic or episodic entry given by its id.",
        {
            "memory_type": {**_ALL_TYPES, "description": "The memory to change."},
            "new_content": {
                "type": "string",
                "description": "The new text: the whole core paragraph, or the replacement for the entry.",
            },
            "memory_id": {**_ID_PARAM, "description": _ID_PARAM["description"] + " Not used for core memory."},
            "timestamp": {
                "type": "string",
                "description": "Episodic entries only, optional: a corrected time for the event.",
            },
        },
        ["memory_type", "new_content"],
    ),
    _function(
        "memory_delete",
        "Clear the core memory, or remove one semantic or episodic entry given by its id.",
        {
            "memory_type": {**_ALL_TYPES, "description": "The memory to delete from."},
            "memory_id": {**_ID_PARAM, "description": _ID_PARAM["description"] + " Not used for core memory."},
        },
        ["memory_type"],
    ),
]
TOOL_NAMES = tuple(s["function"]["name"] for s in TOOL_SCHEMAS)
_PARAMS = {s["function"]["name"]: s["function"]["parameters"] for s in TOOL_SCHEMAS}
_ALLOWED = {name: frozenset(p["properties"]) for name, p in _PARAMS.items()}
_REQUIRED = {name: tuple(p["required"]) for name, p in _PARAMS.items()}

_TYPE_SPELLINGS = {f"{t}{suffix}": t for t in MEMORY_TYPES for suffix in ("", "_memory")}
_TYPE_SEPARATORS = re.compile(r"[\s_\-]+")
_WORD_END = re.compile(r"\S+")


def normalize_memory_type(value: object) -> str | None:
    """`core`, `semantic` or `episodic` for any spelling the models use, else None.

    "semantic_memory", "Semantic Memory", "semantic-memory" and "SEMANTIC" all name semantic memory.
    """
    if not isinstance(value, str):
        return None
    known = _TYPE_SPELLINGS.get(value)
    if known is not None:
        return known
    words = [w for w in _TYPE_SEPARATORS.split(value.strip().lower()) if w]
    if len(words) == 2 and words[1] == "memory":
        words.pop()
    return words[0] if len(words) == 1 and words[0] in MEMORY_TYPES else None


@dataclass(frozen=True, slots=True)
class ToolResult:
    """`ok` is False only for errors: a skipped duplicate is a valid call that changed nothing."""

    ok: bool
    status: Status
    message: str  # written for the model


@dataclass(slots=True)
class ToolStats:
    """Counts over every call executed: `calls` = `ok` + `skipped` + `failed`."""

    calls: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0


def _error(message: str) -> ToolResult:
    return ToolResult(False, "error", message)


def _ok(message: str) -> ToolResult:
    return ToolResult(True, "ok", message)


class _Invalid(Exception):
    """An argument the model got wrong; turned into an error result, never escapes `execute`."""


def _text(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise _Invalid(f"'{key}' must be a string")
    value = value.strip()
    if not value:
        raise _Invalid(f"'{key}' is empty")
    return value


def _timestamp(args: dict[str, Any]) -> str | None:
    value = args.get("timestamp")
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid("'timestamp' must be a string")
    return value.strip() or None


def _entry_id(args: dict[str, Any], kind: str) -> str:
    value = args.get("memory_id")
    if value is None or value == "":
        raise _Invalid(f"'memory_id' is required for {kind} memory")
    if not isinstance(value, str):
        raise _Invalid(f"'memory_id' must be a string such as '{ID_PREFIX[kind]}0'")
    return value.strip().strip("[]").strip()


class MemoryEnvironment:
    """Core, semantic and episodic memory plus the tools; one environment per instance."""

    def __init__(self, counter: TokenCounter, core_limit: int = CORE_TOKEN_LIMIT):
        self.counter = counter
        self.core_limit = core_limit
        self.core = ""
        self.stats = ToolStats()
        self._entries: dict[str, dict[str, MemoryEntry]] = {"semantic": {}, "episodic": {}}
        # content → how many entries hold it: the duplicate check without a scan
        self._texts: dict[str, dict[str, int]] = {"semantic": {}, "episodic": {}}
        self._next_id = {"semantic": 0, "episodic": 0}
        self._handlers: dict[str, Callable[[str, dict[str, Any]], ToolResult]] = {
            "new_memory_insert": self._insert,
            "memory_update": self._update,
            "memory_delete": self._delete,
        }

    # -- reading -------------------------------------------------------------------------------

    def snapshot(self) -> Memory:
        return Memory(self.core, tuple(self._entries["semantic"].values()), tuple(self._entries["episodic"].values()))

    def recent(self, kind: str, n: int) -> tuple[tuple[MemoryEntry, ...], int]:
        """The last `n` entries of `kind` (oldest first) and how many entries it holds in all."""
        entries = self._entries[kind]
        shown = tuple(reversed(tuple(islice(reversed(entries.values()), max(n, 0)))))
        return shown, len(entries)

    def total_tokens(self) -> int:
        """Tokens of core plus every entry's content: the memory size of the compression reward."""
        return sum(self.counter.count_many(self.snapshot().texts()))

    # -- executing -----------------------------------------------------------------------------

    def execute(self, call: ToolCall) -> ToolResult:
        result = self._run(call)
        stats = self.stats
        stats.calls += 1
        if result.status == "ok":
            stats.ok += 1
        elif result.status == "skipped":
            stats.skipped += 1
        else:
            stats.failed += 1
        return result

    def execute_all(self, calls: Iterable[ToolCall]) -> list[ToolResult]:
        """Each call in order, against the memory as the previous calls left it."""
        return [self.execute(call) for call in calls]

    def _run(self, call: ToolCall) -> ToolResult:
        name, args = call.name, call.arguments
        if args is None:  # unreadable: say why, whatever the tool
            reason = call.error or "no arguments"
            return _error(f"{name}: {reason}" if name else reason)
        handler = self._handlers.get(name)
        if handler is None:
            return _error(f"unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}")
        unknown = args.keys() - _ALLOWED[name]
        if unknown:
            return _error(
                f"{name}: unknown argument(s) {', '.join(map(repr, sorted(unknown)))}; "
                f"it takes {', '.join(_PARAMS[name]['properties'])}"
            )
        missing = [key for key in _REQUIRED[name] if key not in args]
        if missing:
            return _error(f"{name}: missing required argument(s) {', '.join(map(repr, missing))}")
        kind = normalize_memory_type(args["memory_type"])
        if kind is None:
            return _error(
                f"{name}: unknown memory_type {args['memory_type']!r}; use core_memory, "
                "semantic_memory or episodic_memory"
            )
        try:
            return handler(kind, args)
        except _Invalid as exc:
            return _error(f"{name}: {exc}")

    def _insert(self, kind: str, args: dict[str, Any]) -> ToolResult:
        if kind == "core":
            raise _Invalid("core memory takes no inserts; rewrite it with memory_update")
        content = _text(args, "content")
        stamp = _timestamp(args) if kind == "episodic" else None
        texts = self._texts[kind]
        if content in texts:
            return ToolResult(True, "skipped", f"skipped: {kind} memory already holds this exact text")
        entry_id = f"{ID_PREFIX[kind]}{self._next_id[kind]}"
        self._next_id[kind] += 1
        self._entries[kind][entry_id] = MemoryEntry(entry_id, content, stamp)
        texts[content] = 1
        return _ok(f"inserted {kind} entry {entry_id}")

    def _update(self, kind: str, args: dict[str, Any]) -> ToolResult:
        content = _text(args, "new_content")
        if kind == "core":
            self.core, truncated = self._fit_core(content)
            if truncated:
                return _ok(f"core memory rewritten, truncated to its limit of {self.core_limit} tokens")
            return _ok("core memory rewritten")
        entry_id = _entry_id(args, kind)
        old = self._find(kind, entry_id)
        stamp = (_timestamp(args) or old.timestamp) if kind == "episodic" else None
        self._forget_text(kind, old.content)
        self._entries[kind][entry_id] = MemoryEntry(entry_id, content, stamp)
        texts = self._texts[kind]
        texts[content] = texts.get(content, 0) + 1
        return _ok(f"updated {kind} entry {entry_id}")

    def _delete(self, kind: str, args: dict[str, Any]) -> ToolResult:
        if kind == "core":
            self.core = ""
            return _ok("core memory cleared")
        entry_id = _entry_id(args, kind)
        old = self._find(kind, entry_id)
        del self._entries[kind][entry_id]
        self._forget_text(kind, old.content)
        return _ok(f"deleted {kind} entry {entry_id}")

    def _find(self, kind: str, entry_id: str) -> MemoryEntry:
        entry = self._entries[kind].get(entry_id)
        if entry is None:
            other = "episodic" if kind == "semantic" else "semantic"
            hint = f" ({entry_id} is an {other} id)" if entry_id in self._entries[other] else ""
            raise _Invalid(f"no {kind} entry with id {entry_id!r}{hint}")
        return entry

    def _forget_text(self, kind: str, content: str) -> None:
        texts = self._texts[kind]
        if texts[content] == 1:
            del texts[content]
        else:
            texts[content] -= 1

    def _fit_core(self, text: str) -> tuple[str, bool]:
        """`text`, or its longest word-boundary prefix that fits the limit with the truncation marker."""
        count, limit = self.counter.count, self.core_limit
        if count(text) <= limit:
            return text, False
        marker = TRUNCATION_MARKER.format(limit=limit)
        ends = [m.end() for m in _WORD_END.finditer(text)]
        lo, hi = 0, len(ends)  # the largest number of words whose prefix plus marker fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(text[: ends[mid - 1]] + marker) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return (text[: ends[lo - 1]] + marker) if lo else marker.strip(), True
