"""Boards: one per suite or single task and scorer profile. An entry is ranked on the board of what it
covers, among entries scored with the same profile.

A suite board evaluates the suite's (task, split) members; a single-task board evaluates the task's
evaluation split (`test` where it has one, else `validation`, else its only split). A suite of one task
at that split evaluates exactly what the task's board does, so it is that board (one board per set of
instances and profile: `conversation` is the `locomo` board). Every board is
bound to one scorer profile (`benchmark/profiles.py`): `v1` re-scores and `memalpha-paper` numbers
(re-scores and the numbers the papers report) are never ranked together. Board scores use the
scorer's aggregation rule: task scores -> mean per competency -> overall = mean of competencies; a
profile that reproduces a paper also reports the paper's plain mean of tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from benchmark.aggregation import competency_order, means
from benchmark.aggregation import uncertainty as aggregation_uncertainty
from benchmark.profiles import get_profile
from tasks.errors import UnknownNameError
from tasks.registry import all_suites, all_tasks, get_suite, get_task

LEGACY_PROFILE = "v1@1"
"""The profile of a results record written before boards had one (the scorer then was v1@1)."""


@dataclass(frozen=True)
class Board:
    name: str
    kind: str  # "suite" or "task"
    description: str
    members: tuple[tuple[str, str], ...]  # (task, split)
    profile: str = ""  # the scorer profile, name@version ("" is the default profile)

    def __post_init__(self) -> None:
        object.__setattr__(self, "profile", get_profile(self.profile or None).id)

    def with_profile(self, profile: str | None) -> Board:
        """The same board under another scorer profile (a name alone means its latest version)."""
        return replace(self, profile=get_profile(profile).id)

    @property
    def averages(self) -> tuple[str, ...]:
        """The averaging rules the board shows: its profile's."""
        return get_profile(self.profile).averages

    @property
    def anchor(self) -> str:
        """The board's id in the rendered page (one per board and profile)."""
        return f"board-{self.name}-{self.profile.replace('@', '-')}"

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for t, _ in self.members))

    @property
    def competencies(self) -> tuple[str, ...]:
        """The competencies its tasks cover, in the fixed order AR, TTL, LRU, CR."""
        return tuple(competency_order({get_task(t).competency for t in self.tasks}))


def evaluation_split(task: str) -> str:
    splits = get_task(task).splits
    return next((s for s in ("test", "validation") if s in splits), splits[0])


def get_board(kind: str, name: str, profile: str | None = None) -> Board:
    """The board of a suite (`kind="suite"`) or of a single task (`kind="task"`) under a scorer profile
    (default: the default profile)."""
    profile = get_profile(profile).id
    if kind == "suite":
        suite = get_suite(name)
        if len(suite.tasks) == 1 and suite.members == ((suite.tasks[0], evaluation_split(suite.tasks[0])),):
            return get_board("task", suite.tasks[0], profile)
        return Board(suite.name, "suite", suite.description, suite.members, profile)
    if kind == "task":
        spec = get_task(name)
        return Board(spec.name, "task", spec.description, ((spec.name, evaluation_split(spec.name)),), profile)
    raise UnknownNameError("board kind", kind, ("suite", "task"))


def record_board(record: Mapping[str, Any]) -> Board:
    """The board of a results record (records without a profile are v1@1's)."""
    board = record["board"]
    return get_board(board["kind"], board["name"], board.get("profile", LEGACY_PROFILE))


def board_order() -> dict[str, int]:
    """Display order of boards: suites as registered, then tasks as registered."""
    names = [s.name for s in all_suites()] + [t.name for t in all_tasks()]
    return {name: i for i, name in enumerate(names)}


def competency_of(tasks: Iterable[str]) -> dict[str, str]:
    return {task: get_task(task).competency for task in tasks}


def aggregate(task_scores: Mapping[str, float]) -> tuple[dict[str, float], float]:
    """(competency means, overall) from task scores, by the scorer's rule (`benchmark.aggregation`)."""
    comps, rules = means(task_scores, competency_of(task_scores), ("mean_of_competencies",))
    return comps, rules["mean_of_competencies"]


def averages(task_scores: Mapping[str, float], board: Board) -> dict[str, float]:
    """The board's averaging rules over task scores (as the scorer writes them into `averages`)."""
    return means(task_scores, competency_of(task_scores), board.averages)[1]


def uncertainty(task_se: Mapping[str, float | None], board: Board) -> dict[str, Any]:
    """A record's `scores.uncertainty` from task standard errors alone (numbers without their instances,
    as a paper reports them: no intervals), by the scorer's rule."""
    return aggregation_uncertainty(task_se, competency_of(task_se), board.averages)
