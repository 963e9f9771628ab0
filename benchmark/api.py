"""The Python API: the whole main job from a script, with nothing imported from the internals.

    from benchmark import api

    api.build(["squad"], "data", origin="raw", raw_dir="raw", tokenizer="simple", limit=2)
    reader = api.make_reader("openai", "Qwen/Qwen3-32B", base_url="http://127.0.0.1:8000/v1")
    summary = api.run("chunk-store", "runs/rag", tasks=["squad"], data="data", tokenizer="simple")
    result = api.score("runs/rag", reader=reader, data="data", tokenizer="simple")
    print(result.scores["overall"])

or `api.evaluate(...)`, run and score in one call. These are the functions behind `memalpha run`,
`score` and `eval`, with the same checks in the same order (docs/api.md): names, data and tokenizer
first; every model answers a one-token request before any work; missing tasks are built; the run
resumes a killed run of the same settings and refuses one of other settings; a score made before
with other settings is not overwritten without `force=True`. Errors are `MemalphaError`s (a
`UsageError` for a wrong argument) with one-line messages naming the file, field or option.

To evaluate an agent of your own, subclass `Agent` and `Session` (docs/evaluate-your-agent.md) and
pass the object, or its registered name, as `agent`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.errors import TaskError as MemalphaError
from tasks.errors import UsageError

from . import journey
from .agents import Agent, AgentOption, AgentOptionError, InstanceInfo, OptionReader, Session, available
from .journey import Evaluation, default_data_dir, score
from .memory import Memory, MemoryEntry, read_memories
from .readers import Reader, make_reader
from .running import RunSummary
from .scoring import ScorerConfig, ScoreResult

if TYPE_CHECKING:
    from .input_limits import InputLimits


def build(
    tasks: Sequence[str],
    out: str | Path,
    *,
    origin: str | None = None,
    raw_dir: str | Path | None = None,
    hub_mirror: str | Path | None = None,
    tokenizer: str | None = None,
    limit: int | None = None,
    seed: int = 42,
    llm: Reader | None = None,
    show_progress: bool = True,
) -> list[Path]:
    """Build tasks (or suites) into `out/<task>/`, as `memalpha tasks build`; returns their folders.

    `origin` is "hub" (default where a task has one), "raw" (the authors' release files under
    `raw_dir/<source>/`) or "release"; `llm` (a reader from `make_reader`) runs the build's LLM steps,
    which tasks scored by keyword recall cannot do without."""
    from tasks.build import build_task
    from tasks.registry import resolve_names

    builder = journey.builder_from(llm) if llm is not None else None
    return [
        build_task(
            name,
            out,
            origin=origin,  # type: ignore[arg-type]
            raw_dir=raw_dir,
            hub_mirror=hub_mirror,
            tokenizer=tokenizer,
            limit=limit,
            seed=seed,
            llm=builder,
            show_progress=show_progress,
        ).path
        for name in resolve_names(list(tasks))
    ]


def run(
    agent: str | Agent,
    out: str | Path,
    *,
    tasks: Sequence[str] | None = None,
    suite: str | None = None,
    split: str | None = None,
    data: str | Path | None = None,
    options: dict[str, str] | None = None,
    tokenizer: str = journey.DEFAULT_TOKENIZER,
    builder_llm: Reader | None = None,
    limit: int | None = None,
    concurrency: int = 4,
    show_progress: bool = True,
) -> RunSummary:
    """Run `agent` (a registered name with `options`, or an `Agent` object) over the tasks or suite and
    write `out/memories.jsonl`, as `memalpha run`. Without `data`, missing tasks are built from the hub
    into the default data folder; `builder_llm` serves builds that need an LLM step."""
    job = journey.plan(tasks=tasks, suite=suite, split=split, data=data, tokenizer=tokenizer)
    return journey.run_planned(
        job,
        agent,
        out,
        options=options,
        builder_llm=builder_llm,
        limit=limit,
        concurrency=concurrency,
        show_progress=show_progress,
    )


def evaluate(
    agent: str | Agent,
    out: str | Path,
    *,
    reader: Reader,
    judge: Reader | None = None,
    tasks: Sequence[str] | None = None,
    suite: str | None = None,
    split: str | None = None,
    data: str | Path | None = None,
    options: dict[str, str] | None = None,
    tokenizer: str = journey.DEFAULT_TOKENIZER,
    builder_llm: Reader | None = None,
    limit: int | None = None,
    limit_questions: int | None = None,
    concurrency: int = 4,
    config: ScorerConfig | None = None,
    profile: str | None = None,
    reader_template: str | Path | None = None,
    limits: InputLimits | None = None,
    window: int | None = None,
    force: bool = False,
    show_progress: bool = True,
) -> Evaluation:
    """`run` then `score` on the same folder, as `memalpha eval`; the reader builds what needs an LLM
    unless `builder_llm` is given. `profile` names the scorer profile (default v1), `reader_template`
    a template file replacing its reader template. `Evaluation.score` is None when every instance
    failed."""
    job = journey.plan(tasks=tasks, suite=suite, split=split, data=data, tokenizer=tokenizer, scoring=True)
    return journey.evaluate_planned(
        job,
        agent,
        out,
        reader=reader,
        judge=judge,
        options=options,
        builder_llm=builder_llm,
        limit=limit,
        limit_questions=limit_questions,
        concurrency=concurrency,
        config=config,
        profile=profile,
        reader_template=reader_template,
        limits=limits,
        window=window,
        force=force,
        show_progress=show_progress,
    )


def agents() -> list[str]:
    """The names of the registered agents (built-ins and plugins)."""
    return list(available())


__all__ = [
    "Agent",
    "AgentOption",
    "AgentOptionError",
    "Evaluation",
    "InstanceInfo",
    "MemalphaError",
    "Memory",
    "MemoryEntry",
    "OptionReader",
    "Reader",
    "RunSummary",
    "ScoreResult",
    "ScorerConfig",
    "Session",
    "UsageError",
    "agents",
    "build",
    "default_data_dir",
    "evaluate",
    "make_reader",
    "read_memories",
    "run",
    "score",
]
