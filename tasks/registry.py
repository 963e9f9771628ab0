"""Declarative task specs, suites, and look-up by name (with suggestions for typos)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .citations import bibtex
from .errors import UnknownNameError
from .licenses import spdx_ids

Origin = Literal["hub", "raw", "release"]
ORIGINS: tuple[Origin, ...] = ("hub", "raw", "release")

METRICS = {
    "substring_em": "1 if a normalised gold answer occurs inside the normalised prediction (max over golds)",
    "exact_match": "1 if the normalised prediction equals a normalised gold answer",
    "token_f1": "token-overlap F1 between prediction and gold (max over golds)",
    "boxed_label_accuracy": "1 if the label inside the last \\boxed{...} equals the gold label",
    "keyword_recall": "share of the gold keywords (`answers` is the keyword list) found in the prediction",
    "rouge_l": "ROUGE-L F1 against the gold text",
    "llm_judge": "a judge model answers yes/no: does the response answer the question (LongMemEval style)",
    "recall_at_5": "share of the gold items among the first five recommended",
}


@dataclass(frozen=True)
class Source:
    """One place a task can be built from.

    `origin` is how it is read: `hub` (a Hugging Face dataset at a pinned revision), `raw` (the
    authors' release files under `--raw-dir DIR/<id>/`), `release` (a processed release on the hub).
    `files` lists what the builder reads: glob patterns under the raw folder, or files in the repo.
    `license` is an SPDX expression (`tasks/licenses.py`): the license of what is read from here.
    """

    origin: Origin
    id: str
    revision: str | None = None
    config: str | None = None
    files: tuple[str, ...] = ()
    license: str = "NOASSERTION"
    note: str = ""

    def __post_init__(self) -> None:
        spdx_ids(self.license)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    competency: Literal["AR", "TTL", "LRU", "CR"]
    metric: str
    chunk_size: int
    builder: str  # "module:function", imported only when the task is built
    sources: tuple[Source, ...]
    splits: tuple[str, ...] = ("test",)
    query_prompt: str | None = None
    tokenizer: str = "qwen3"
    citations: tuple[str, ...] = ()  # keys of tasks/citations.py: the benchmark, then the source data
    params: dict[str, Any] = field(default_factory=dict)
    version: str = "1.1"  # 1.1: whole-unit packing, sentences sized in one pass, the original's split draw

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"task {self.name}: unknown metric {self.metric!r}")
        bibtex(self.citations)

    @property
    def origins(self) -> tuple[Origin, ...]:
        return tuple(dict.fromkeys(s.origin for s in self.sources))

    def source(self, origin: Origin) -> Source:
        for src in self.sources:
            if src.origin == origin:
                return src
        raise UnknownNameError(f"origin for task {self.name}", origin, self.origins)

    def license(self, origin: Origin) -> str:
        """The SPDX expression of the task built from `origin`."""
        return self.source(origin).license

    def bibtex(self) -> str:
        return bibtex(self.citations)

    def load_builder(self) -> Callable[..., Any]:
        module, _, func = self.builder.partition(":")
        return getattr(importlib.import_module(module), func)

    def summary(self) -> dict[str, Any]:
        """What `tasks list --json` prints for this task."""
        return {
            "name": self.name,
            "suites": list(suites_of(self.name)),
            "competency": self.competency,
            "metric": self.metric,
            "splits": list(self.splits),
            "chunk_size": self.chunk_size,
            "origins": list(self.origins),
            "description": self.description,
        }


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    members: tuple[tuple[str, str], ...]  # (task, split)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for t, _ in self.members))


_TASKS: dict[str, TaskSpec] = {}
_SUITES: dict[str, Suite] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    if spec.name in _TASKS:
        raise ValueError(f"task {spec.name!r} registered twice")
    _TASKS[spec.name] = spec
    return spec


def register_suite(suite: Suite) -> Suite:
    for task, split in suite.members:
        if task not in _TASKS:
            raise ValueError(f"suite {suite.name}: unknown task {task!r}")
        if split not in _TASKS[task].splits:
            raise ValueError(f"suite {suite.name}: task {task!r} has no split {split!r}")
    _SUITES[suite.name] = suite
    return suite


def _ensure_catalog() -> None:
    if not _TASKS:
        importlib.import_module("tasks.catalog")


def all_tasks() -> list[TaskSpec]:
    _ensure_catalog()
    return list(_TASKS.values())


def all_suites() -> list[Suite]:
    _ensure_catalog()
    return list(_SUITES.values())


def get_task(name: str) -> TaskSpec:
    _ensure_catalog()
    try:
        return _TASKS[name]
    except KeyError:
        raise UnknownNameError("task", name, list(_TASKS) + list(_SUITES)) from None


def get_suite(name: str) -> Suite:
    _ensure_catalog()
    try:
        return _SUITES[name]
    except KeyError:
        raise UnknownNameError("suite", name, _SUITES) from None


def suites_of(task: str) -> tuple[str, ...]:
    _ensure_catalog()
    return tuple(s.name for s in _SUITES.values() if task in s.tasks)


def resolve_names(names: Iterable[str]) -> list[str]:
    """Task names from a mix of task and suite names, in order, without repeats."""
    _ensure_catalog()
    out: list[str] = []
    for name in names:
        if name in _SUITES:
            out.extend(_SUITES[name].tasks)
        else:
            out.append(get_task(name).name)
    return list(dict.fromkeys(out))
