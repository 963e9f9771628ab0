"""The contamination mark: an entry whose agent was trained on a task, or on a source dataset, that its
board evaluates is marked "possibly contaminated", with the reasons.

`trained_on` names suites, tasks, or datasets (hub ids such as `rajpurkar/squad`, raw source names such
as `trec`). A task stands for itself and for the datasets it is built from. Releases that bundle many
tasks count only when named themselves: training on one MemoryAgentBench set is not training on all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tasks.errors import UnknownNameError
from tasks.registry import get_suite, get_task

from .boards import Board

# Hub datasets that bundle many tasks (rows are selected per task); see tasks/catalog.py.
COLLECTIONS = frozenset({"ai-hyz/memoryagentbench", "yuwangx/memalpha", "yuwangx/memalpha-memoryagentbench"})


@dataclass(frozen=True)
class Contamination:
    possible: bool | None  # None: the training data is not stated
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"possible": self.possible, "reasons": list(self.reasons)}


def task_sources(task: str) -> set[str]:
    """The task's own name and the (lower-cased) ids of the datasets it is built from, collections aside."""
    ids = {s.id.lower() for s in get_task(task).sources}
    return {task} | (ids - COLLECTIONS)


def _collections(task: str) -> set[str]:
    return {s.id.lower() for s in get_task(task).sources} & COLLECTIONS


def expand(name: str) -> list[tuple[str, str, set[str]]]:
    """What one `trained_on` item covers: (task or dataset, how it was named, the keys standing for it)."""
    key = name.strip()
    try:
        suite = get_suite(key)
        return [(t, f"{t} ({s} split, part of {key})", task_sources(t)) for t, s in suite.members]
    except UnknownNameError:
        pass
    try:
        return [(key, key, task_sources(get_task(key).name))]
    except UnknownNameError:
        return [(key, key, {key.lower()})]


def assess(trained_on: Sequence[str] | None, board: Board) -> Contamination:
    """Compare what an agent was trained on with what the board evaluates."""
    if trained_on is None:
        return Contamination(None)
    reasons: list[str] = []
    for item in trained_on:
        for trained, label, keys in expand(item):
            for task in board.tasks:
                shared = sorted(keys & task_sources(task))
                if task in shared:
                    reasons.append(f"trained on {label}, a task this board evaluates")
                elif shared:
                    reasons.append(f"trained on {label}, which shares data ({', '.join(shared)}) with {task}")
                elif trained.lower() in _collections(task):
                    reasons.append(f"trained on {label}, the release {task} is drawn from")
    return Contamination(bool(reasons), tuple(dict.fromkeys(reasons)))
