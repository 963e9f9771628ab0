"""Boards: one per suite or single task. An entry is ranked on the board of what it covers.

A suite board evaluates the suite's (task, split) members; a single-task board evaluates the task's
evaluation split (`test` where it has one, else `validation`, else its only split). Board scores use
the scorer's aggregation rule: task scores -> mean per competency -> overall = mean of competencies.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from tasks.errors import UnknownNameError
from tasks.registry import all_suites, all_tasks, get_suite, get_task
from tasks.schema import COMPETENCIES


@dataclass(frozen=True)
class Board:
    name: str
    kind: str  # "suite" or "task"
    description: str
    members: tuple[tuple[str, str], ...]  # (task, split)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for t, _ in self.members))

    @property
    def competencies(self) -> tuple[str, ...]:
        """The competencies its tasks cover, in the fixed order AR, TTL, LRU, CR."""
        present = {get_task(t).competency for t in self.tasks}
        return tuple(c for c in COMPETENCIES if c in present)


def evaluation_split(task: str) -> str:
    splits = get_task(task).splits
    return next((s for s in ("test", "validation") if s in splits), splits[0])


def get_board(kind: str, name: str) -> Board:
    """The board of a suite (`kind="suite"`) or of a single task (`kind="task"`)."""
    if kind == "suite":
        suite = get_suite(name)
        return Board(suite.name, "suite", suite.description, suite.members)
    if kind == "task":
        spec = get_task(name)
        return Board(spec.name, "task", spec.description, ((spec.name, evaluation_split(spec.name)),))
    raise UnknownNameError("board kind", kind, ("suite", "task"))


def board_order() -> dict[str, int]:
    """Display order of boards: suites as registered, then tasks as registered."""
    names = [s.name for s in all_suites()] + [t.name for t in all_tasks()]
    return {name: i for i, name in enumerate(names)}


def aggregate(task_scores: Mapping[str, float]) -> tuple[dict[str, float], float]:
    """(competency means, overall) from task scores, by the scorer's rule; rounded as the scorer rounds."""
    by_comp: dict[str, list[float]] = defaultdict(list)
    for task, score in task_scores.items():
        by_comp[get_task(task).competency].append(score)
    comps = {c: round(statistics.fmean(by_comp[c]), 6) for c in COMPETENCIES if c in by_comp}
    return comps, round(statistics.fmean(comps.values()), 6) if comps else 0.0
