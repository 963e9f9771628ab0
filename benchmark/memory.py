"""The memory file: `memories.jsonl`, one agent's final memory per instance (see DESIGN.md).

Validation is strict and complete: every problem is reported with its line and field, so a
submitter fixes the file in one go. Lines are split on "\n" only and decoded by tasks.strict_json
(depth, numbers, surrogates, duplicate keys); ids, task names and timestamps must be plain text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.atomic import replace_file
from tasks.errors import TaskError, quoted
from tasks.strict_json import JsonProblem, decode, location, record_lines

MAX_PROBLEMS_SHOWN = 50
MEMORY_KEYS = {"core", "semantic", "episodic"}
RECORD_KEYS = {"instance_id", "task", "memory", "stats"}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # in a name: it would garble messages, tables and logs


class MemoryFileError(TaskError):
    """A memories file that breaks the format; `problems` holds (line, field, message) triples."""

    def __init__(self, path: Path, problems: list[tuple[int, str, str]]):
        self.path, self.problems = path, problems
        shown = "\n".join(
            f"  {location(path, line, '' if fld == '<file>' else fld)}: {msg}"
            for line, fld, msg in problems[:MAX_PROBLEMS_SHOWN]
        )
        more = f"\n  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        super().__init__(f"{path}: {len(problems)} problem(s) in the memories file:\n{shown}{more}")


@dataclass(frozen=True, slots=True)
class MemoryEntry:
    """One entry; slotted, as memories of a million entries are held whole (about 100 bytes an entry
    less than with a `__dict__`)."""

    id: str
    content: str
    timestamp: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "content": self.content}
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        return out


@dataclass(frozen=True, slots=True)
class Memory:
    core: str = ""
    semantic: tuple[MemoryEntry, ...] = ()
    episodic: tuple[MemoryEntry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "core": self.core,
            "semantic": [e.to_json() for e in self.semantic],
            "episodic": [e.to_json() for e in self.episodic],
        }

    def texts(self) -> list[str]:
        """Everything that counts toward the memory's size: core and every entry's content."""
        return [self.core, *(e.content for e in self.semantic), *(e.content for e in self.episodic)]


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    instance_id: str
    task: str
    memory: Memory
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "task": self.task,
            "memory": self.memory.to_json(),
            "stats": self.stats,
        }


def _keys(keys: set[str], shown: int = 5) -> str:
    """Unknown keys as an error names them: a list of the first few, each cut (they come from the input)."""
    names = sorted(keys)
    return "[" + ", ".join(quoted(k) for k in names[:shown]) + (", …" if len(names) > shown else "") + "]"


def _name_problem(value: str) -> str | None:
    """Why a name (an id, a task, a timestamp) is not one line of plain text, or None."""
    bad = _CONTROL.search(value)
    return None if bad is None else f"holds the control character U+{ord(bad.group()):04X}; names are plain text"


def _entries(value: Any, kind: str, problems: list[tuple[str, str]]) -> tuple[MemoryEntry, ...]:
    if not isinstance(value, list):
        problems.append((f"memory.{kind}", "must be a list of entries"))
        return ()
    out, seen = [], set()
    for i, item in enumerate(value):
        where = f"memory.{kind}[{i}]"
        if not isinstance(item, dict):
            problems.append((where, "must be an object with 'id' and 'content'"))
            continue
        extra = set(item) - {"id", "content", "timestamp"}
        if extra:
            problems.append((where, f"unknown key(s) {_keys(extra)}"))
        entry_id, content, stamp = item.get("id"), item.get("content"), item.get("timestamp")
        if not isinstance(entry_id, str) or not entry_id:
            problems.append((f"{where}.id", "must be a non-empty string"))
        elif entry_id in seen:
            problems.append((f"{where}.id", f"duplicate id {quoted(entry_id)} in {kind}"))
        elif why := _name_problem(entry_id):
            problems.append((f"{where}.id", why))
        seen.add(entry_id)
        if not isinstance(content, str) or not content.strip():
            problems.append((f"{where}.content", "must be a non-empty string"))
        if stamp is not None and not isinstance(stamp, str):
            problems.append((f"{where}.timestamp", "must be a string when given"))
        elif stamp is not None and (why := _name_problem(stamp)):
            problems.append((f"{where}.timestamp", why))
        if isinstance(entry_id, str) and isinstance(content, str):
            out.append(MemoryEntry(entry_id, content, stamp if isinstance(stamp, str) else None))
    return tuple(out)


def parse_record(obj: Any) -> tuple[MemoryRecord | None, list[tuple[str, str]]]:
    """A record from one decoded line, and its problems as (field, message) pairs."""
    problems: list[tuple[str, str]] = []
    if not isinstance(obj, dict):
        return None, [("<line>", "must be a JSON object")]
    extra = set(obj) - RECORD_KEYS
    if extra:
        problems.append(("<line>", f"unknown key(s) {_keys(extra)}"))
    for key in ("instance_id", "task"):
        if not isinstance(obj.get(key), str) or not obj.get(key):
            problems.append((key, "must be a non-empty string"))
        elif why := _name_problem(obj[key]):
            problems.append((key, why))
    mem = obj.get("memory")
    memory = Memory()
    if not isinstance(mem, dict):
        problems.append(("memory", "must be an object with 'core', 'semantic' and 'episodic'"))
    else:
        missing, unknown = MEMORY_KEYS - set(mem), set(mem) - MEMORY_KEYS
        if missing:
            problems.append(("memory", f"missing key(s) {sorted(missing)}"))
        if unknown:
            problems.append(("memory", f"unknown key(s) {_keys(unknown)}"))
        core = mem.get("core", "")
        if core is None:
            core = ""
        if not isinstance(core, str):
            problems.append(("memory.core", "must be a string (may be empty)"))
            core = ""
        memory = Memory(
            core,
            _entries(mem.get("semantic", []), "semantic", problems),
            _entries(mem.get("episodic", []), "episodic", problems),
        )
    stats = obj.get("stats", {})
    if not isinstance(stats, dict):
        problems.append(("stats", "must be an object when given"))
        stats = {}
    if problems:
        return None, problems
    return MemoryRecord(obj["instance_id"], obj["task"], memory, stats), []


def read_memories(path: str | Path) -> list[MemoryRecord]:
    """All records of a memories file, or a MemoryFileError listing every problem with its line."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"{path}: no memories file there")
    records: list[MemoryRecord] = []
    problems: list[tuple[int, str, str]] = []
    first_line: dict[tuple[str, str], int] = {}
    with open(path, "rb") as stream:
        for lineno, raw in record_lines(stream):
            try:
                obj = decode(raw)
            except JsonProblem as problem:
                problems.append((lineno, problem.field or "<line>", problem.message))
                continue
            record, found = parse_record(obj)
            problems.extend((lineno, f, m) for f, m in found)
            if record is None:
                continue
            key = (record.task, record.instance_id)
            if key in first_line:
                problems.append(
                    (
                        lineno,
                        "instance_id",
                        f"{quoted(record.instance_id)} of task {quoted(record.task)} already given on line "
                        f"{first_line[key]}",
                    )
                )
                continue
            first_line[key] = lineno
            records.append(record)
    if problems:
        raise MemoryFileError(path, problems)
    if not records:
        raise MemoryFileError(path, [(0, "<file>", "no memory records")])
    return records


def checked_line(record: MemoryRecord) -> str:
    """`record` as a memories.jsonl line, once it is known to read back as `memalpha score` reads it: UTF-8
    text, within the strict reader's limits, in the memory format. Otherwise a TaskError names the fields,
    so a run fails the instance whose agent handed in such a memory instead of writing a line that scoring
    refuses (or, for a lone surrogate, crashing on the write)."""
    line = record_line(record)
    try:
        data = line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: written escaped, the strict reader names its field
        data = json.dumps(record.to_json(), sort_keys=True).encode()
    try:
        _, problems = parse_record(decode(data))
    except JsonProblem as problem:
        problems = [(problem.field or "<line>", problem.message)]
    if problems:
        fields = "; ".join(f"field {name!r}: {message}" for name, message in problems[:MAX_PROBLEMS_SHOWN])
        raise TaskError(f"bad memory for instance {quoted(record.instance_id)}: {fields}")
    return line


def record_line(record: MemoryRecord) -> str:
    return json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True) + "\n"


def write_memories(path: Path, records: Iterable[MemoryRecord]) -> None:
    """Write (or replace) a whole memories file, atomically."""
    replace_file(path, (record_line(record) for record in records))
