"""`memalpha run`: feed every instance's chunks to an agent and write each final memory at once.

Progress is durable at two grains. A finished instance's memory is appended to `RUN/memories.jsonl`
the moment it is done, and the runner keeps only a window of instances open (`Agent.in_flight`), so
memories are written all along the run, not all at its end. Within an open instance, every model
answer an agent asks for goes through the run's response cache (`RUN/.cache/agent.sqlite`, handed
over by `Agent.use_response_cache`): a killed run resumes with the instances it had not finished,
replays their answered steps from the cache, and asks the model again only for the step each open
instance was in when it died. An agent that fails on one instance is recorded in `RUN/errors.jsonl`
for that instance and the run goes on (a resume tries it again). errors.jsonl holds one line per
instance without a memory, its latest error: a resume replaces the line of an instance that fails
again and drops that of an instance that now succeeds.

A folder holds one run: resuming it with other settings (another agent, other memory-relevant
options, other tasks, other data) is refused with the settings that differ, compared after
normalisation (options with their defaults filled in).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.argtypes import check_count
from tasks.atomic import replace_file
from tasks.errors import TaskError, UsageError
from tasks.manifest import load_built
from tasks.registry import get_task
from tasks.strict_json import JsonProblem, decode, load_file, location

from .agents.base import Agent, InstanceInfo, Session
from .cache import ResponseCache
from .compare import as_json, differences
from .memory import MemoryRecord, checked_line, parse_record
from .readers.base import ReaderResponse

CONFIG = "config.json"
MEMORIES = "memories.jsonl"
ERRORS = "errors.jsonl"
AGENT_CACHE = Path(".cache") / "agent.sqlite"
# What makes a run folder one run; everything else in config.json is a record.
RUN_KEYS = ("agent_identity", "members", "task_hashes", "limit")
ERROR_CHARS = 4000  # an error kept in errors.jsonl and the summary: agents' messages may echo whole inputs


@dataclass
class Planned:
    info: InstanceInfo
    chunks: list[str]


@dataclass
class RunSummary:
    run_dir: Path
    written: int
    resumed: int  # instances whose memory was already written by an earlier, interrupted run
    failed: dict[str, str] = field(default_factory=dict)  # "task/instance" -> error
    by_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    reused_answers: int = 0  # agent model answers replayed from the run's cache instead of asked again


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
    """Write config.json, or check that a resumed run is the same run, naming what differs."""
    path = run_dir / CONFIG
    if path.exists():
        old = load_file(path, "run config")
        if not isinstance(old, dict):
            raise UsageError(f"{path}: not a run config (a JSON object); use another --out")
        now = as_json(config)
        found = [d for key in RUN_KEYS for d in differences(old.get(key), now.get(key), path=key)]
        if found:
            raise UsageError(
                f"{path}: this folder holds a different run ({'; '.join(found)}); "
                "use another --out, or the settings of that run"
            )
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


class CountingCache(ResponseCache):
    """The run's response cache, counting the answers it gives back (what a resume reused)."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        self.hits = 0
        self._count_lock = threading.Lock()

    def get(self, key: str) -> ReaderResponse | None:
        found = super().get(key)
        if found is not None:
            with self._count_lock:
                self.hits += 1
        return found


@dataclass
class _Open:
    """An instance being read: its session and the index of its next chunk."""

    planned: Planned
    session: Session
    started: float
    step: int = 0
    failed: bool = False

    @property
    def done(self) -> bool:
        return self.step == self.planned.info.num_chunks


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

    from .cli import package_version

    check_count("limit", limit)
    check_count("concurrency", concurrency)
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
    todo = deque(p for p in planned if (p.info.task, p.info.instance_id) not in done)
    summary = RunSummary(run_dir, 0, len(done))
    window = agent.in_flight(concurrency) or len(todo) or 1
    cache = CountingCache(run_dir / AGENT_CACHE)
    agent.use_response_cache(cache)
    bar = tqdm(
        total=sum(p.info.num_chunks for p in todo), desc=f"{agent.name}", unit="chunk", disable=not show_progress
    )
    errors = ErrorLog(run_dir / ERRORS)
    try:
        with open(run_dir / MEMORIES, "a", encoding="utf-8") as memories, _saved(errors):
            open_: list[_Open] = []
            while todo or open_:
                while todo and len(open_) < window:
                    p = todo.popleft()
                    try:
                        open_.append(_Open(p, agent.new_session(p.info), time.perf_counter()))
                    except Exception as exc:  # the agent could not open this instance: report, go on
                        _record_failure(summary, errors, p.info, exc)
                stepping = [o for o in open_ if not o.done]  # an instance without chunks is done at once
                failures = (
                    agent.observe_batch(
                        [o.session for o in stepping], [o.planned.chunks[o.step] for o in stepping], concurrency
                    )
                    if stepping
                    else []
                )
                bar.update(len(stepping))
                for o, error in zip(stepping, failures, strict=True):
                    if error is None:
                        o.step += 1
                    else:
                        o.failed = True
                        _record_failure(summary, errors, o.planned.info, error)
                for o in open_:
                    if o.done and not o.failed:
                        _hand_in(o, memories, errors, summary)
                open_ = [o for o in open_ if not o.done and not o.failed]
                errors.save()
    finally:
        bar.close()
        summary.reused_answers = cache.hits
        agent.close()
        cache.close()
    for p in planned:
        entry = summary.by_task.setdefault(p.info.task, {"instances": 0, "failed": 0})
        entry["instances"] += 1
        entry["failed"] += f"{p.info.task}/{p.info.instance_id}" in summary.failed
    return summary


def _hand_in(o: _Open, memories, errors: ErrorLog, summary: RunSummary) -> None:
    """Ask a finished session for its memory and append it to memories.jsonl at once."""
    info = o.planned.info
    try:
        memory = o.session.memory()
        stats = {"chunks_seen": info.num_chunks, "seconds": round(time.perf_counter() - o.started, 3)}
        line = checked_line(MemoryRecord(info.instance_id, info.task, memory, {**stats, **o.session.stats()}))
    except Exception as exc:  # the agent broke while handing in, or handed in what scoring refuses: report, go on
        _record_failure(summary, errors, info, exc)
        return
    memories.write(line)
    memories.flush()  # at once: a killed run keeps every finished instance
    errors.succeeded(info)
    summary.written += 1


def _record_failure(summary: RunSummary, errors: ErrorLog, info: InstanceInfo, error: BaseException) -> None:
    text = f"{type(error).__name__}: {error}"
    # lone surrogates cannot be written as UTF-8 and NUL breaks line tools: both are kept as escapes
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if len(text) > ERROR_CHARS:
        text = f"{text[:ERROR_CHARS]}… ({len(text):,} characters in all)"
    summary.failed[f"{info.task}/{info.instance_id}"] = text
    errors.failed(info, text)
