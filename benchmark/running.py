"""`memalpha run`: feed every instance's chunks to an agent and write each final memory at once.

Memories are appended to `RUN/memories.jsonl` the moment an instance is finished, so a killed run
resumes with the instances it had not finished. An agent that fails on one instance is recorded in
`RUN/errors.jsonl` for that instance and the run goes on (a resume tries it again). errors.jsonl holds
one line per instance without a memory, its latest error: a resume replaces the line of an instance
that fails again and drops that of an instance that now succeeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.atomic import replace_file
from tasks.build import package_version
from tasks.errors import TaskError
from tasks.manifest import load_built
from tasks.registry import get_task
from tasks.strict_json import JsonProblem, decode, load_file, location

from .agents.base import Agent, InstanceInfo, Session
from .memory import MemoryRecord, parse_record, write_record

CONFIG = "config.json"
MEMORIES = "memories.jsonl"
ERRORS = "errors.jsonl"
ERROR_CHARS = 4000  # an error kept in errors.jsonl and the summary: agents' messages may echo whole inputs


@dataclass
class Planned:
    info: InstanceInfo
    chunks: list[str]


@dataclass
class RunSummary:
    run_dir: Path
    written: int
    resumed: int
    failed: dict[str, str] = field(default_factory=dict)  # "task/instance" -> error
    by_task: dict[str, dict[str, Any]] = field(default_factory=dict)


def plan(
    data_dir: Path, members: Sequence[tuple[str, str | None]], limit: int | None = None
) -> tuple[list[Planned], dict[str, str]]:
    """Instances to run (split None = every split of the task) and the hashes of their tasks."""
    planned, hashes = [], {}
    for task, split in members:
        data, manifest = load_built(data_dir, task)
        hashes[task] = manifest["sha256"]
        splits = [split] if split else list(data)
        for name in splits:
            if name not in data:
                raise TaskError(f"{data_dir / task}: no split {name!r} (it has {', '.join(data)})")
            rows = data[name].to_list()[:limit] if limit else data[name].to_list()
            competency = get_task(task).competency
            planned += [
                Planned(InstanceInfo(r["instance_id"], task, competency, len(r["chunks"])), r["chunks"]) for r in rows
            ]
    return planned, hashes


def appended_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) of a file this module appends to, split on "\n" only. A last line cut
    off by a kill (no "\n", not decodable) is removed from the file, so its instance is done again; any
    other bad line is an error naming it. A whole last line without its "\n" gets one, so the next append
    starts a line of its own."""
    if not path.exists():
        return
    size, good_bytes, complete = path.stat().st_size, 0, True
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, 1):
            try:
                value = decode(raw) if raw.strip() else None
            except JsonProblem as problem:
                if good_bytes + len(raw) == size and not raw.endswith(b"\n"):
                    break  # an interrupted append
                where = location(path, number, problem.field)
                raise TaskError(f"{where}: cannot resume from this file ({problem.message})") from None
            good_bytes += len(raw)
            complete = raw.endswith(b"\n")
            if value is not None:
                yield number, value
    if good_bytes < size:
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
    elif not complete:
        with open(path, "ab") as f:
            f.write(b"\n")


def finished_records(path: Path) -> list[MemoryRecord]:
    """Records already written; a last line cut off by a kill is dropped (and removed from the file)."""
    records = []
    for number, value in appended_lines(path):
        record, problems = parse_record(value)
        if record is None:
            fld, message = problems[0]
            raise TaskError(f"{location(path, number, fld)}: cannot resume from this file ({message})")
        records.append(record)
    return records


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write config.json, or check that a resumed run is the same run."""
    path = run_dir / CONFIG
    if path.exists():
        old = load_file(path, "run config")
        if not isinstance(old, dict):
            raise TaskError(f"{path}: not a run config (a JSON object); use another --out")
        for key in ("agent_identity", "members", "task_hashes", "limit"):
            if old.get(key) != config.get(key):
                raise TaskError(f"{path}: this folder holds a different run ({key} differs); use another --out")
        return
    replace_file(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


@contextmanager
def _saved(errors: ErrorLog) -> Iterator[None]:
    """The error log is saved however the run ends (an exception, Ctrl-C), not only after each step."""
    try:
        yield
    finally:
        errors.save()


class ErrorLog:
    """RUN/errors.jsonl: the latest error of each instance that has no memory, rewritten whole (atomically)
    when it changes."""

    def __init__(self, path: Path):
        self.path = path
        self.lines: dict[tuple[str, str], dict[str, Any]] = {}
        for _, value in appended_lines(path):
            if isinstance(value, dict):
                self.lines[(str(value.get("task")), str(value.get("instance_id")))] = value
        self.changed = False

    def failed(self, info: InstanceInfo, error: str) -> None:
        self.lines[(info.task, info.instance_id)] = {"task": info.task, "instance_id": info.instance_id, "error": error}
        self.changed = True

    def succeeded(self, info: InstanceInfo) -> None:
        self.changed |= self.lines.pop((info.task, info.instance_id), None) is not None

    def save(self) -> None:
        if not self.changed:
            return
        if self.lines:
            replace_file(self.path, (json.dumps(line, ensure_ascii=False) + "\n" for line in self.lines.values()))
        else:
            self.path.unlink(missing_ok=True)
        self.changed = False


def run_agent(
    agent: Agent,
    run_dir: str | Path,
    data_dir: str | Path,
    members: Sequence[tuple[str, str | None]],
    *,
    limit: int | None = None,
    concurrency: int = 4,
    show_progress: bool = True,
) -> RunSummary:
    from tqdm.auto import tqdm

    run_dir, data_dir = Path(run_dir), Path(data_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    planned, hashes = plan(data_dir, members, limit)
    write_config(
        run_dir,
        {
            "agent": agent.describe(),
            "agent_identity": agent.identity(),
            "members": [list(m) for m in members],
            "limit": limit,
            "data": str(data_dir),
            "task_hashes": hashes,
            "memalpha_bench": package_version(),
        },
    )
    done = {(r.task, r.instance_id) for r in finished_records(run_dir / MEMORIES)}
    todo = [p for p in planned if (p.info.task, p.info.instance_id) not in done]
    summary = RunSummary(run_dir, 0, len(done))
    bar = tqdm(
        total=sum(p.info.num_chunks for p in todo), desc=f"{agent.name}", unit="chunk", disable=not show_progress
    )
    errors = ErrorLog(run_dir / ERRORS)
    with open(run_dir / MEMORIES, "a", encoding="utf-8") as memories, _saved(errors):
        sessions: list[Session] = []
        for p in todo:
            sessions.append(agent.new_session(p.info))
        started = time.perf_counter()
        alive = list(range(len(todo)))
        step = 0
        while alive:
            batch = [i for i in alive if step < todo[i].info.num_chunks]
            failures = agent.observe_batch(
                [sessions[i] for i in batch], [todo[i].chunks[step] for i in batch], concurrency
            )
            bar.update(len(batch))
            for i, error in zip(batch, failures, strict=True):
                if error is not None:
                    _record_failure(summary, errors, todo[i].info, error)
            failed = {i for i, e in zip(batch, failures, strict=True) if e is not None}
            step += 1
            finished = [i for i in batch if i not in failed and step == todo[i].info.num_chunks]
            for i in finished:
                info = todo[i].info
                try:
                    memory = sessions[i].memory()
                except Exception as exc:  # the agent broke while handing in: report, go on
                    _record_failure(summary, errors, info, exc)
                    continue
                stats = {
                    "chunks_seen": info.num_chunks,
                    "seconds": round(time.perf_counter() - started, 3),
                    **sessions[i].stats(),
                }
                write_record(memories, MemoryRecord(info.instance_id, info.task, memory, stats))
                errors.succeeded(info)
                summary.written += 1
            alive = [i for i in alive if i not in failed and step < todo[i].info.num_chunks]
            errors.save()
    bar.close()
    agent.close()
    for p in planned:
        entry = summary.by_task.setdefault(p.info.task, {"instances": 0, "failed": 0})
        entry["instances"] += 1
        entry["failed"] += f"{p.info.task}/{p.info.instance_id}" in summary.failed
    return summary


def _record_failure(summary: RunSummary, errors: ErrorLog, info: InstanceInfo, error: BaseException) -> None:
    text = f"{type(error).__name__}: {error}"
    # what the strict reader refuses when the run resumes (NUL, lone surrogates) is kept as escapes
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if len(text) > ERROR_CHARS:
        text = f"{text[:ERROR_CHARS]}… ({len(text):,} characters in all)"
    summary.failed[f"{info.task}/{info.instance_id}"] = text
    errors.failed(info, text)
