"""Seed entries: published numbers (Mem-α's Tables 1-3, MemoryAgentBench's Tables 3 and 7), shown as
"reported, not re-scored" with their source until an entry of the same agent and version is re-scored.

The files under seeds/ hold the numbers as printed (scores as fractions, per task under our task names,
memory in thousands of tokens where reported). Numbers a paper reports sit only on boards bound to the
`memalpha-paper` profile (`SEED_PROFILE`), never beside `v1` re-scores. Board averages are recomputed by
that profile's rules (ours and the paper's plain mean of tasks), without standard errors or intervals (a
paper prints no per-instance scores); each source's own printed averages
are kept beside them under `reported`. A reported record's `scorer` is its source's own pipeline in words
(`reported: true`, reader, retrieval, tokenizer): it was not re-scored, so no board's pin applies to it;
its `submitted` date is the source's publication date.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from benchmark.profiles import PAPER_PROFILE, get_profile
from tasks.registry import get_task
from tasks.strict_json import load_file

from .boards import aggregate, averages, get_board, uncertainty
from .contamination import assess
from .record_schema import RECORD_FORMAT
from .submission import record_id

SEEDS_DIR = Path(__file__).parent / "seeds"


def seed_profile() -> str:
    """The profile of the boards published numbers sit on: memalpha-paper's latest version."""
    return get_profile(PAPER_PROFILE).id


def _tasks(entry: dict[str, Any], board_tasks: tuple[str, ...], unit: float | None, where: str) -> dict[str, Any]:
    scores, memory = entry["scores"], entry.get("memory_ktokens", {})
    if set(scores) != set(board_tasks) or not set(memory) <= set(board_tasks):
        raise ValueError(f"{where}: scores must name exactly the board's tasks ({', '.join(board_tasks)})")
    if not all(0.0 <= v <= 1.0 for v in scores.values()):
        raise ValueError(f"{where}: scores must be fractions in [0, 1]")
    if memory and unit is None:
        raise ValueError(f"{where}: memory sizes given without the file's memory_unit_tokens")
    return {
        task: {
            "score": scores[task],
            "competency": get_task(task).competency,
            "metric": None,
            "memory_tokens_mean": round(memory[task] * unit, 2) if task in memory and unit else None,
        }
        for task in board_tasks
    }


def seed_record(doc: dict[str, Any], entry: dict[str, Any], where: str) -> dict[str, Any]:
    """A results record from one published row."""
    board = get_board(doc["board"]["kind"], doc["board"]["name"], seed_profile())
    agent = entry["agent"]
    tasks = _tasks(entry, board.tasks, doc.get("memory_unit_tokens"), where)
    task_scores = {t: v["score"] for t, v in tasks.items()}
    comps, overall = aggregate(task_scores)
    sizes = [v["memory_tokens_mean"] for v in tasks.values() if v["memory_tokens_mean"] is not None]
    return {
        "format": RECORD_FORMAT,
        "id": record_id(board.name, agent["name"], agent["version"], board.profile),
        "status": "reported",
        "board": {"kind": board.kind, "name": board.name, "profile": board.profile},
        "agent": {"name": agent["name"], "version": agent["version"]},
        "model": entry["model"],
        "parameters": entry["parameters"],
        "link": doc["source"]["url"],
        "contact": "",
        "license": "",
        "trained_on": entry["trained_on"],
        "description": entry.get("note", ""),
        "contamination": assess(entry["trained_on"], board).to_json(),
        "scores": {
            "overall": overall,
            "averages": averages(task_scores, board),
            "competencies": comps,
            "tasks": tasks,
            "uncertainty": uncertainty(dict.fromkeys(task_scores), board),
        },
        "memory_tokens": round(statistics.fmean(sizes), 2) if len(sizes) == len(tasks) else None,
        "submitted": doc["source"]["date"],
        "scorer": {"reported": True, **doc["source"]["scorer"]},
        "task_hashes": None,
        "memories": None,
        "source": {k: v for k, v in doc["source"].items() if k != "scorer"},
        "reported": entry.get("reported"),
    }


def seed_records(directory: Path = SEEDS_DIR) -> list[dict[str, Any]]:
    """Every seed entry as a results record, in id order."""
    records = []
    for path in sorted(directory.glob("*.json")):
        doc = load_file(path, "seed file")
        for i, entry in enumerate(doc["entries"]):
            records.append(seed_record(doc, entry, f"{path.name}, entries[{i}]"))
    return sorted(records, key=lambda r: r["id"])
