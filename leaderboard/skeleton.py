"""`leaderboard init`: turn a finished run into a submission folder with a submission.json to fill in.

What the run tells is filled in: the board (from the tasks in memories.jsonl, or --suite/--task), the
task versions (from the run's scores.json, or the manifests under --data), and the agent's name and
model where the run's config.json names them (`agent.name`, `agent.options.model`). Everything else is a
`TODO` placeholder, which validation rejects until it is replaced.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from benchmark.memory import read_memories
from benchmark.results_schema import read_scores
from tasks.atomic import replace_file
from tasks.errors import UsageError
from tasks.manifest import find_task_dir, read_manifest
from tasks.registry import all_suites
from tasks.strict_json import load_file

from .boards import get_board
from .submission import FORMAT, MEMORIES_FILE, PLACEHOLDER, SUBMISSION_FILE


def _json(path: Path) -> dict[str, Any]:
    """A JSON object file of the run, or {} when absent or not an object."""
    if not path.is_file():
        return {}
    obj = load_file(path, "run file")
    return obj if isinstance(obj, dict) else {}


def _scores(path: Path) -> dict[str, Any]:
    """The run's scores.json, checked against its format (`benchmark.results_schema`); {} when absent."""
    return read_scores(path) if path.is_file() else {}


def guess_board(tasks: list[str]) -> tuple[str, str]:
    """(kind, name) of the board of these tasks: the single task, or the one suite of exactly these tasks."""
    if len(tasks) == 1:
        return "task", tasks[0]
    matches = [s.name for s in all_suites() if sorted(s.tasks) == tasks]
    if len(matches) == 1:
        return "suite", matches[0]
    options = f"one of {', '.join(matches)}" if matches else "a suite holding exactly these tasks"
    return "suite", f"{PLACEHOLDER}: {options}"


def _task_hashes(tasks: list[str], scores: dict[str, Any], data_dir: Path | None) -> dict[str, str]:
    known = scores.get("task_hashes", {})
    out = {}
    for task in tasks:
        if task in known:
            out[task] = known[task]
        elif data_dir is not None:
            out[task] = read_manifest(find_task_dir(data_dir, task))["sha256"]
        else:
            out[task] = f"{PLACEHOLDER}: the sha256 in {task}/manifest.json of the data the run used"
    return out


def _text(obj: dict[str, Any], key: str, default: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) and value.strip() else default


def skeleton(run_dir: Path, tasks: list[str], kind: str, name: str, data_dir: Path | None) -> dict[str, Any]:
    config = _json(run_dir / "config.json")
    described = config.get("agent") if isinstance(config.get("agent"), dict) else {}
    options = described.get("options") if isinstance(described.get("options"), dict) else {}
    agent = _text(described, "name", f"{PLACEHOLDER}: agent name")
    model = _text(options, "model", f"{PLACEHOLDER}: the model writing the memory")
    board_tasks = list(get_board(kind, name).tasks) if not name.startswith(PLACEHOLDER) else tasks
    return {
        "format": FORMAT,
        "agent": {"name": agent, "version": f"{PLACEHOLDER}: version, e.g. 1.0"},
        "model": model,
        "parameters": f"{PLACEHOLDER}: model size, e.g. 4B",
        "link": f"{PLACEHOLDER}: https:// address of the code or paper",
        "contact": f"{PLACEHOLDER}: e-mail address or handle",
        "license": f"{PLACEHOLDER}: license of the agent and its memories, e.g. MIT",
        "trained_on": [f"{PLACEHOLDER}: suites, tasks or datasets the agent was trained on; [] for none"],
        kind: name,
        "task_hashes": _task_hashes(board_tasks, _scores(run_dir / "scores.json"), data_dir),
        "description": "",
    }


def init_submission(
    run_dir: str | Path,
    out: str | Path,
    *,
    kind: str | None = None,
    name: str | None = None,
    data_dir: str | Path | None = None,
) -> Path:
    """Write `out/submission.json` (a skeleton) and a copy of the run's memories.jsonl; returns `out`."""
    run_dir, out = Path(run_dir), Path(out)
    records = read_memories(run_dir / MEMORIES_FILE)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out}: exists and is not an empty folder; choose a new --out")
    tasks = sorted({r.task for r in records})
    if kind is None or name is None:
        kind, name = guess_board(tasks)
    doc = skeleton(run_dir, tasks, kind, name, Path(data_dir) if data_dir else None)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / MEMORIES_FILE, out / MEMORIES_FILE)
    replace_file(out / SUBMISSION_FILE, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return out
