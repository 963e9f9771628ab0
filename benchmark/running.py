"""`memalpha run`: feed every instance's chunks to an agent and write each final memory at once.

Memories are appended to `RUN/memories.jsonl` the moment an instance is finished, so a killed run
resumes with the instances it had not finished. An agent that fails on one instance is recorded in
`RUN/errors.jsonl` for that instance and the run goes on (a resume tries it again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.build import package_version
from tasks.errors import TaskError
from tasks.manifest import load_built
from tasks.registry import get_task

from .agents.base import Agent, InstanceInfo, Session
from .memory import MemoryRecord, parse_record, write_record

CONFIG = "config.json"
MEMORIES = "memories.jsonl"
ERRORS = "errors.jsonl"


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
    """Write config.json, or check that a resumed run is the same run."""
    path = run_dir / CONFIG
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        for key in ("agent_identity", "members", "task_hashes", "limit"):
            if old.get(key) != config.get(key):
                raise TaskError(f"{path}: this folder holds a different run ({key} differs); use another --out")
        return
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


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
    with (
        open(run_dir / MEMORIES, "a", encoding="utf-8") as memories,
        open(run_dir / ERRORS, "a", encoding="utf-8") as errors,
    ):
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
                summary.written += 1
            alive = [i for i in alive if i not in failed and step < todo[i].info.num_chunks]
    bar.close()
    agent.close()
    for p in planned:
        entry = summary.by_task.setdefault(p.info.task, {"instances": 0, "failed": 0})
        entry["instances"] += 1
        entry["failed"] += f"{p.info.task}/{p.info.instance_id}" in summary.failed
    return summary


def _record_failure(summary: RunSummary, stream, info: InstanceInfo, error: BaseException) -> None:
    key = f"{info.task}/{info.instance_id}"
    summary.failed[key] = f"{type(error).__name__}: {error}"
    stream.write(json.dumps({"task": info.task, "instance_id": info.instance_id, "error": summary.failed[key]}) + "\n")
    stream.flush()
