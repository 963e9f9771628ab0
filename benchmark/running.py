"""`memalpha run`: feed every instance's chunks to an agent and write each final memory at once.

Progress is durable at two grains. A finished instance's memory is appended to `RUN/memories.jsonl`
the moment it is done, and the runner keeps only a window of instances open (`Agent.in_flight`), so
memories are written all along the run, not all at its end. Within an open instance, every model
answer an agent asks for goes through the run's response cache (`RUN/.cache/agent.sqlite`, handed
over by `Agent.use_response_cache`): a killed run resumes with the instances it had not finished,
replays their answered steps from the cache, and asks the model again only for the step each open
instance was in when it died. An agent that fails on one instance is recorded in `RUN/errors.jsonl`
for that instance and the run goes on (a resume tries it again).

A folder holds one run: resuming it with other settings (another agent, other memory-relevant
options, other tasks, other data) is refused with the settings that differ, compared after
normalisation (options with their defaults filled in).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.errors import TaskError, UsageError
from tasks.manifest import load_built
from tasks.registry import get_task

from .agents.base import Agent, InstanceInfo, Session
from .cache import ResponseCache
from .compare import as_json, differences
from .memory import MemoryRecord, parse_record, write_record
from .readers.base import ReaderResponse

CONFIG = "config.json"
MEMORIES = "memories.jsonl"
ERRORS = "errors.jsonl"
AGENT_CACHE = Path(".cache") / "agent.sqlite"
# What makes a run folder one run; everything else in config.json is a record.
RUN_KEYS = ("agent_identity", "members", "task_hashes", "limit")


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


def finished_records(path: Path) -> list[MemoryRecord]:
    """Records already written; a last line cut off by a kill is dropped (and removed from the file)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    records, good_bytes = [], 0
    for i, line in enumerate(lines):
        try:
            record, problems = parse_record(json.loads(line))
        except json.JSONDecodeError:
            record, problems = None, [("<line>", "not valid JSON")]
        if problems:
            if i == len(lines) - 1 and not line.endswith("\n"):
                with open(path, "r+b") as f:  # an interrupted append: cut it off, redo that instance
                    f.truncate(good_bytes)
                break
            raise TaskError(f"{path}, line {i + 1}: cannot resume from this file ({problems[0][1]})")
        records.append(record)
        good_bytes += len(line.encode("utf-8"))
    return records


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write config.json, or check that a resumed run is the same run, naming what differs."""
    path = run_dir / CONFIG
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        now = as_json(config)
        found = [d for key in RUN_KEYS for d in differences(old.get(key), now.get(key), path=key)]
        if found:
            raise UsageError(
                f"{path}: this folder holds a different run ({'; '.join(found)}); "
                "use another --out, or the settings of that run"
            )
        return
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


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
    try:
        with (
            open(run_dir / MEMORIES, "a", encoding="utf-8") as memories,
            open(run_dir / ERRORS, "a", encoding="utf-8") as errors,
        ):
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


def _hand_in(o: _Open, memories, errors, summary: RunSummary) -> None:
    """Ask a finished session for its memory and append it to memories.jsonl at once."""
    info = o.planned.info
    try:
        memory = o.session.memory()
    except Exception as exc:  # the agent broke while handing in: report, go on
        _record_failure(summary, errors, info, exc)
        return
    stats = {"chunks_seen": info.num_chunks, "seconds": round(time.perf_counter() - o.started, 3), **o.session.stats()}
    write_record(memories, MemoryRecord(info.instance_id, info.task, memory, stats))
    summary.written += 1


def _record_failure(summary: RunSummary, stream, info: InstanceInfo, error: BaseException) -> None:
    key = f"{info.task}/{info.instance_id}"
    summary.failed[key] = f"{type(error).__name__}: {error}"
    stream.write(json.dumps({"task": info.task, "instance_id": info.instance_id, "error": summary.failed[key]}) + "\n")
    stream.flush()
