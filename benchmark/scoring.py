"""Scoring a run: any agent's final memories in, predictions and scores out, through the fixed pipeline.

Generation (retrieval, prompt, reader) is separate from scoring (metrics, aggregation): every reader
answer goes through the persistent response cache first, so a killed run resumes where it stopped and
re-scoring a finished run asks the reader nothing.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.errors import TaskError
from tasks.llm import skipped_required_step
from tasks.manifest import load_built
from tasks.registry import get_task
from tasks.tokenization import TokenCounter

from . import metrics
from .memory import MemoryEntry, MemoryRecord, read_memories
from .prompting import ReaderPrompt
from .readers.base import Reader, ReaderRequest, ReaderResponse, SamplingParams
from .retrieval import MemoryIndex, settings

SCORER_VERSION = "1.0"
AGGREGATION_RULE = (
    "question score -> mean per instance -> mean over a task's instances -> mean over a competency's "
    "tasks -> overall = mean over competencies"
)


@dataclass(frozen=True)
class ScorerConfig:
    top_k: int = 20
    budget_tokens: int = 30_000
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=2048))
    judge_sampling: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=16))


@dataclass
class QuestionItem:
    """One (instance, question) with its prompt, waiting for the reader."""

    record: MemoryRecord
    row: dict[str, Any]
    question: dict[str, Any]
    metric: str
    request: ReaderRequest
    retrieved: dict[str, list[str]]
    core_truncated: bool
    response: ReaderResponse | None = None
    score: float | None = None


@dataclass
class TaskData:
    rows: dict[str, dict[str, Any]]  # instance_id -> row (all splits)
    sha256: str
    split_of: dict[str, str]


def load_tasks(data_dir: Path, names: Sequence[str]) -> dict[str, TaskData]:
    out = {}
    for name in names:
        get_task(name)  # unknown task names get a suggestion
        data, manifest = load_built(data_dir, name)
        if skipped_required_step(manifest):
            raise TaskError(
                f"{data_dir / name}: built without keyword extraction, so its golds are whole summaries and "
                "keyword recall would be meaningless; rebuild it with an LLM configured for the build"
            )
        rows, split_of = {}, {}
        for split, ds in data.items():
            for row in ds.to_list():
                rows[row["instance_id"]] = row
                split_of[row["instance_id"]] = split
        out[name] = TaskData(rows, manifest["sha256"], split_of)
    return out


def check_ids(records: Sequence[MemoryRecord], tasks: dict[str, TaskData], memories_path: Path) -> None:
    unknown = [f"{r.task}/{r.instance_id}" for r in records if r.instance_id not in tasks[r.task].rows]
    if unknown:
        listed = ", ".join(unknown[:20]) + (f" ... ({len(unknown)} in all)" if len(unknown) > 20 else "")
        raise TaskError(f"{memories_path}: instance ids not in the task data: {listed}")


def prepare(
    records: Sequence[MemoryRecord],
    tasks: dict[str, TaskData],
    config: ScorerConfig,
    prompt: ReaderPrompt,
    counter: TokenCounter,
) -> list[QuestionItem]:
    """Retrieval and prompts for every question; each instance's indexes are built once."""
    items = []
    for record in records:
        spec = get_task(record.task)
        row = tasks[record.task].rows[record.instance_id]
        mem = record.memory
        texts = [q["question"] for q in row["questions"]]
        sem_ranks = MemoryIndex([e.content for e in mem.semantic]).search_many(texts, config.top_k)
        epi_ranks = MemoryIndex([e.content for e in mem.episodic]).search_many(texts, config.top_k)
        entry_tokens = (
            _token_counts(counter, mem.semantic, sem_ranks),
            _token_counts(counter, mem.episodic, epi_ranks),
        )
        for q, sem_rank, epi_rank in zip(row["questions"], sem_ranks, epi_ranks, strict=True):
            built = prompt.build(
                mem,
                sem_rank,
                epi_rank,
                q["question"],
                spec.query_prompt,
                counter=counter,
                budget=config.budget_tokens,
                entry_tokens=entry_tokens,
            )
            items.append(
                QuestionItem(
                    record,
                    row,
                    q,
                    spec.metric,
                    ReaderRequest(built.messages, config.sampling),
                    {
                        "semantic": [mem.semantic[i].id for i in built.semantic],
                        "episodic": [mem.episodic[i].id for i in built.episodic],
                    },
                    built.core_truncated,
                )
            )
    return items


def _token_counts(counter: TokenCounter, entries: Sequence[MemoryEntry], ranks: list[list[int]]) -> dict[int, int]:
    """Token counts of the entries some question retrieves (only those can enter a prompt)."""
    needed = sorted({i for rank in ranks for i in rank})
    return dict(zip(needed, counter.count_many([entries[i].content for i in needed]), strict=True))


def answer(
    items: Sequence[QuestionItem], reader: Reader, on_result: Callable[[int, ReaderResponse], None] | None
) -> None:
    responses = reader.generate([it.request for it in items], on_result=on_result)
    for item, response in zip(items, responses, strict=True):
        item.response = response


def judge(
    items: Sequence[QuestionItem],
    judge_reader: Reader,
    config: ScorerConfig,
    on_result: Callable[[int, ReaderResponse], None] | None,
) -> None:
    """LLM-judge questions: a yes/no verdict per (question, gold, response)."""
    pending = [it for it in items if it.metric == "llm_judge"]
    if not pending:
        return
    requests = [
        ReaderRequest(
            tuple(
                (m["role"], m["content"])
                for m in metrics.judge_prompt(
                    it.question["question"],
                    it.question["answers"],
                    it.response.text,
                    it.question.get("question_type"),
                    question_id=it.question["question_id"],
                )
            ),
            config.judge_sampling,
        )
        for it in pending
    ]
    for item, verdict in zip(pending, judge_reader.generate(requests, on_result=on_result), strict=True):
        item.score = metrics.parse_judge_verdict(verdict.text)


def score_items(items: Sequence[QuestionItem]) -> None:
    for item in items:
        if item.metric != "llm_judge":
            item.score = metrics.score(item.metric, item.response.text, item.question["answers"])


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else 0.0


def aggregate(
    items: Sequence[QuestionItem],
    records: Sequence[MemoryRecord],
    tasks: dict[str, TaskData],
    counter: TokenCounter,
) -> dict[str, Any]:
    per_instance: dict[tuple[str, str], list[float]] = defaultdict(list)
    for it in items:
        per_instance[(it.record.task, it.record.instance_id)].append(it.score)
    task_scores: dict[str, dict[str, Any]] = {}
    for name in sorted({r.task for r in records}):
        recs = [r for r in records if r.task == name]
        inst_means = [_mean(per_instance[(name, r.instance_id)]) for r in recs]
        sizes = [sum(counter.count_many(r.memory.texts())) for r in recs]
        spec = get_task(name)
        task_scores[name] = {
            "score": round(_mean(inst_means), 6),
            "metric": spec.metric,
            "competency": spec.competency,
            "instances": len(recs),
            "questions": sum(len(per_instance[(name, r.instance_id)]) for r in recs),
            "memory_tokens_mean": round(_mean(sizes), 2),
            "missing_instances": missing_instances(tasks[name], recs),
        }
    by_comp: dict[str, list[float]] = defaultdict(list)
    for t in task_scores.values():
        by_comp[t["competency"]].append(t["score"])
    competencies = {c: round(_mean(v), 6) for c, v in sorted(by_comp.items())}
    return {
        "overall": round(_mean(list(competencies.values())), 6),
        "competencies": competencies,
        "tasks": task_scores,
    }


def missing_instances(task: TaskData, records: Sequence[MemoryRecord]) -> list[str]:
    """The instances without a memory in the splits that were scored (a run of the test split does not
    miss the training split's instances)."""
    have = {r.instance_id for r in records}
    scored = {task.split_of[i] for i in have}
    return sorted(i for i, split in task.split_of.items() if split in scored and i not in have)


def limit_questions(tasks: dict[str, TaskData], limit: int) -> None:
    """Keep the first `limit` questions of every instance (smoke runs; the scores record the limit)."""
    for task in tasks.values():
        for row in task.rows.values():
            row["questions"] = row["questions"][:limit]


def prediction_line(item: QuestionItem) -> dict[str, Any]:
    r = item.response
    return {
        "instance_id": item.record.instance_id,
        "task": item.record.task,
        "question_id": item.question["question_id"],
        "question": item.question["question"],
        "prediction": r.text,
        "answers": item.question["answers"],
        "score": item.score,
        "retrieved": item.retrieved,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "core_truncated": item.core_truncated,
    }


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def scorer_record(
    config: ScorerConfig,
    prompt: ReaderPrompt,
    reader: Reader,
    judge_reader: Reader | None,
    counter: TokenCounter,
    questions_per_instance: int | None = None,
) -> dict[str, Any]:
    """The settings a score was computed with; `questions_per_instance` is recorded only when set."""
    limit = {"questions_per_instance": questions_per_instance} if questions_per_instance else {}
    return {
        **limit,
        "version": SCORER_VERSION,
        "retriever": {**settings(), "top_k": config.top_k},
        "reader": {**reader.describe(), "sampling": config.sampling.as_dict()},
        "judge": {**judge_reader.describe(), "sampling": config.judge_sampling.as_dict()} if judge_reader else None,
        "budget": {"tokens": config.budget_tokens, "counter": counter.describe()},
        "template": {"name": f"reader_{prompt.version}", "sha256": prompt.sha256},
        "aggregation": AGGREGATION_RULE,
    }


def load_run(run_dir: Path, data_dir: Path) -> tuple[list[MemoryRecord], dict[str, TaskData]]:
    memories = run_dir / "memories.jsonl"
    records = read_memories(memories)
    tasks = load_tasks(data_dir, sorted({r.task for r in records}))
    check_ids(records, tasks, memories)
    return records, tasks


@dataclass
class ScoreResult:
    scores: dict[str, Any]
    items: list[QuestionItem]
    records: list[MemoryRecord]


def score_run(
    run_dir: str | Path,
    data_dir: str | Path,
    reader: Reader,
    *,
    counter: TokenCounter,
    config: ScorerConfig | None = None,
    judge_reader: Reader | None = None,
    show_progress: bool = True,
    questions_per_instance: int | None = None,
) -> ScoreResult:
    """Score `run_dir/memories.jsonl`; writes predictions.jsonl, scores.json and report.md beside it.
    `questions_per_instance` asks only the first N questions of each instance (a smoke run)."""
    from tqdm.auto import tqdm

    from .report import run_provenance, write_report

    run_dir, data_dir = Path(run_dir), Path(data_dir)
    config = config or ScorerConfig()
    prompt = ReaderPrompt()
    records, tasks = load_run(run_dir, data_dir)
    if questions_per_instance:
        limit_questions(tasks, questions_per_instance)
    items = prepare(records, tasks, config, prompt, counter)
    judge_reader = judge_reader or reader
    needs_judge = any(it.metric == "llm_judge" for it in items)

    with tqdm(total=len(items), desc="reader", unit="q", disable=not show_progress) as bar:
        answer(items, reader, on_result=lambda i, r: bar.update(1))
    if needs_judge:
        n = sum(it.metric == "llm_judge" for it in items)
        with tqdm(total=n, desc="judge", unit="q", disable=not show_progress) as bar:
            judge(items, judge_reader, config, on_result=lambda i, r: bar.update(1))
    score_items(items)

    scores = aggregate(items, records, tasks, counter)
    scores["scorer"] = scorer_record(
        config, prompt, reader, judge_reader if needs_judge else None, counter, questions_per_instance
    )
    scores["task_hashes"] = {name: tasks[name].sha256 for name in sorted(tasks)}
    scores["run"] = run_provenance(run_dir)
    with open(run_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(prediction_line(item), ensure_ascii=False, sort_keys=True) + "\n")
    write_json(run_dir / "scores.json", scores)
    result = ScoreResult(scores, items, records)
    write_report(run_dir / "report.md", result, reader)
    return result
