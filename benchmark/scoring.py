"""Scoring a run: any agent's final memories in, predictions and scores out, through the fixed pipeline.

Generation (retrieval, prompt, reader) is separate from scoring (metrics, aggregation): every reader
answer goes through the persistent response cache first, so a killed run resumes where it stopped and
re-scoring a finished run asks the reader nothing. A scorer profile (`benchmark/profiles.py`) fixes
every choice along the way; the default is `v1`.
"""

from __future__ import annotations

import json
import statistics
import sys
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

from . import aggregation, failed_questions
from .memory import MemoryEntry, MemoryRecord, read_memories
from .profiles import AVERAGES, Profile, ScorerConfig, get_profile, release_warnings
from .prompting import ReaderPrompt
from .readers.base import Reader, ReaderRequest, ReaderResponse, RequestsFailed
from .results_schema import SCORES_FORMAT, check_scores
from .retrieval import MemoryIndex

__all__ = ["QuestionItem", "ScorerConfig", "aggregate", "answer", "judge", "prepare", "score_items", "score_run"]

SCORER_VERSION = "2.0"  # 2.0: scorer profiles (scores.json `scorer.profile`)
AGGREGATION_RULE = AVERAGES["mean_of_competencies"]


@dataclass
class QuestionItem:
    """One (instance, question) with its prompt, waiting for the reader; `profile` scores it."""

    record: MemoryRecord
    row: dict[str, Any]
    question: dict[str, Any]
    metric: str  # the profile's scorer id for the task ("llm_judge" for a judged one)
    request: ReaderRequest
    retrieved: dict[str, list[str]]
    core_truncated: bool
    response: ReaderResponse | None = None
    score: float | None = None
    profile: Profile = field(default_factory=get_profile)
    over_floor: bool = False  # the prompt needed k below the original's floor (its budget loop raised)


@dataclass
class TaskData:
    rows: dict[str, dict[str, Any]]  # instance_id -> row (all splits)
    sha256: str
    split_of: dict[str, str]
    manifest: dict[str, Any] = field(default_factory=dict)


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
        out[name] = TaskData(rows, manifest["sha256"], split_of, manifest)
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
    profile: Profile | str | None = None,
) -> list[QuestionItem]:
    """Retrieval and prompts for every question; each instance's indexes are built once."""
    profile = get_profile(profile)
    epsilon = profile.retrieval.epsilon
    items = []
    for record in records:
        spec = get_task(record.task)
        scorer = profile.scorer_for(record.task)
        row = tasks[record.task].rows[record.instance_id]
        mem = record.memory
        texts = [
            profile.retrieval.query_text(
                q["question"], prompt.render_user(q["question"], spec.query_prompt, record.task), spec.metric
            )
            for q in row["questions"]
        ]
        sem_ranks = MemoryIndex([e.content for e in mem.semantic], epsilon=epsilon).search_many(texts, config.top_k)
        epi_ranks = MemoryIndex([e.content for e in mem.episodic], epsilon=epsilon).search_many(texts, config.top_k)
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
                task=record.task,
            )
            items.append(
                QuestionItem(
                    record,
                    row,
                    q,
                    scorer.id,
                    ReaderRequest(built.messages, config.sampling),
                    {
                        "semantic": [mem.semantic[i].id for i in built.semantic],
                        "episodic": [mem.episodic[i].id for i in built.episodic],
                    },
                    built.core_truncated,
                    profile=profile,
                    over_floor=built.over_floor,
                )
            )
    return items


def _token_counts(counter: TokenCounter, entries: Sequence[MemoryEntry], ranks: list[list[int]]) -> dict[int, int]:
    """Token counts of the entries some question retrieves (only those can enter a prompt), each as the
    templates show it: with its timestamp, when it has one."""
    needed = sorted({i for rank in ranks for i in rank})
    shown = [f"[{e.timestamp}] {e.content}" if e.timestamp else e.content for e in (entries[i] for i in needed)]
    return dict(zip(needed, counter.count_many(shown), strict=True))


def answer(
    items: Sequence[QuestionItem], reader: Reader, on_result: Callable[[int, ReaderResponse], None] | None
) -> None:
    responses = reader.generate([it.request for it in items], on_result=on_result)
    for item, response in zip(items, responses, strict=True):
        item.response = response


def judged(item: QuestionItem) -> bool:
    return item.profile.scorer_for(item.record.task).judged


def judge_request(item: QuestionItem, config: ScorerConfig) -> ReaderRequest:
    """The judge's request for one answered question, in its profile's wording."""
    q = item.question
    messages = item.profile.judge.prompt(
        q["question"], q["answers"], item.response.raw_text, q.get("question_type"), q["question_id"]
    )
    return ReaderRequest(tuple((m["role"], m["content"]) for m in messages), config.judge_sampling)


def set_verdict(item: QuestionItem, reply: ReaderResponse) -> None:
    """The question's score from the judge's reply, by its profile's verdict rule."""
    item.score = item.profile.judge.verdict(reply.raw_text)


def judge(
    items: Sequence[QuestionItem],
    judge_reader: Reader,
    config: ScorerConfig,
    on_result: Callable[[int, ReaderResponse], None] | None,
) -> None:
    """LLM-judge questions: a yes/no verdict per (question, gold, response)."""
    pending = [it for it in items if judged(it)]
    if not pending:
        return
    requests = [judge_request(it, config) for it in pending]
    for item, verdict in zip(pending, judge_reader.generate(requests, on_result=on_result), strict=True):
        set_verdict(item, verdict)


def score_items(items: Sequence[QuestionItem]) -> None:
    for item in items:
        scorer = item.profile.scorer_for(item.record.task)
        if not scorer.judged:
            item.score = scorer.score(item.response.raw_text, item.question["answers"])


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else 0.0


def aggregate(
    items: Sequence[QuestionItem],
    records: Sequence[MemoryRecord],
    tasks: dict[str, TaskData],
    counter: TokenCounter,
    profile: Profile | str | None = None,
) -> dict[str, Any]:
    """Task, competency and overall scores; `averages` holds every averaging rule of the profile (the
    first is `overall`)."""
    profile = get_profile(profile)
    per_instance: dict[tuple[str, str], list[float]] = defaultdict(list)
    for it in items:
        per_instance[(it.record.task, it.record.instance_id)].append(it.score)
    task_scores: dict[str, dict[str, Any]] = {}
    instance_means: dict[str, list[float]] = {}
    for name in sorted({r.task for r in records}):
        recs = [r for r in records if r.task == name]
        inst_means = instance_means[name] = [_mean(per_instance[(name, r.instance_id)]) for r in recs]
        sizes = [sum(counter.count_many(r.memory.texts())) for r in recs]
        spec = get_task(name)
        task_scores[name] = {
            "score": round(_mean(inst_means), 6),
            "metric": profile.scorer_for(name).id,
            "origin": tasks[name].manifest.get("origin"),
            "competency": spec.competency,
            "instances": len(recs),
            "questions": sum(len(per_instance[(name, r.instance_id)]) for r in recs),
            "memory_tokens_mean": round(_mean(sizes), 2),
            "missing_instances": missing_instances(tasks[name], recs),
        }
    competency_of = {name: t["competency"] for name, t in task_scores.items()}
    task_means = {name: t["score"] for name, t in task_scores.items()}
    competencies, averages = aggregation.means(task_means, competency_of, profile.averages)
    spread = aggregation.uncertainty(
        {name: aggregation.task_standard_error(v) for name, v in instance_means.items()},
        competency_of,
        profile.averages,
        instance_means,
    )
    return {
        "overall": averages[profile.averages[0]],
        "averages": averages,
        "competencies": competencies,
        "tasks": task_scores,
        "uncertainty": spread,
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
        "profile": item.profile.id,
    }


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def scorer_record(
    config: ScorerConfig,
    prompt: ReaderPrompt,
    reader: Reader,
    judge_reader: Reader | None,
    counter: TokenCounter,
    profile: Profile | str | None = None,
    tasks: Sequence[str] = (),
    questions_per_instance: int | None = None,
) -> dict[str, Any]:
    """The settings a score was computed with: what `scores.json` records as `scorer`, and what a re-score
    of the same run is checked against. `questions_per_instance` is recorded only when set."""
    profile = get_profile(profile)
    limit = {"questions_per_instance": questions_per_instance} if questions_per_instance else {}
    return {
        **limit,
        "version": SCORER_VERSION,
        "profile": profile.id,
        "rules": profile.describe(),
        "retriever": {**profile.retrieval.describe(), "top_k": config.top_k},
        "reader": {**reader.describe(), "sampling": config.sampling.as_dict()},
        "judge": {**judge_reader.describe(), "sampling": config.judge_sampling.as_dict()} if judge_reader else None,
        "budget": {"tokens": config.budget_tokens, "counter": counter.describe(), **profile.budget.describe()},
        "template": prompt.describe(),
        "metrics": {task: profile.scorer_for(task).id for task in sorted(tasks)},
        "aggregation": AVERAGES[profile.averages[0]],
    }


def expected_scorer_record(
    reader: Reader,
    judge_reader: Reader | None,
    tasks: Sequence[str],
    counter: TokenCounter,
    *,
    config: ScorerConfig | None = None,
    profile: Profile | str | None = None,
    template_file: str | Path | None = None,
    questions_per_instance: int | None = None,
) -> dict[str, Any]:
    """The `scorer` record a score of `tasks` with these settings will carry, known before any reader
    call (what a re-score and a leaderboard pin are checked against): `score_run`'s defaults, and the
    judge only where the profile judges one of the tasks."""
    profile = get_profile(profile)
    judged = any(profile.scorer_for(t).judged for t in tasks)
    return scorer_record(
        config or profile.defaults,
        ReaderPrompt.for_profile(profile, template_file),
        reader,
        (judge_reader or reader) if judged else None,
        counter,
        profile,
        tasks,
        questions_per_instance,
    )


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
    profile: Profile | str | None = None,
    template_file: str | Path | None = None,
    questions_per_instance: int | None = None,
) -> ScoreResult:
    """Score `run_dir/memories.jsonl`; writes predictions.jsonl, scores.json and report.md beside it.

    `profile` (default `v1`) fixes the pipeline and gives the defaults of `config`; `template_file` replaces
    the profile's reader template by a user's (its sha256 is recorded). `questions_per_instance` asks only
    the first N questions of each instance (a smoke run).
    """
    from tqdm.auto import tqdm

    from .report import run_provenance, write_report

    run_dir, data_dir = Path(run_dir), Path(data_dir)
    profile = get_profile(profile)
    config = config or profile.defaults
    prompt = ReaderPrompt.for_profile(profile, template_file)
    records, tasks = load_run(run_dir, data_dir)
    if questions_per_instance:
        limit_questions(tasks, questions_per_instance)
    items = prepare(records, tasks, config, prompt, counter, profile)
    judge_reader = judge_reader or reader
    needs_judge = any(judged(it) for it in items)

    failures: list[failed_questions.QuestionFailure] = []
    with tqdm(total=len(items), desc="reader", unit="q", disable=not show_progress) as bar:

        def answered(i: int, response: ReaderResponse) -> None:
            items[i].response = response
            bar.update(1)

        try:
            answer(items, reader, on_result=answered)
        except RequestsFailed as failed:
            failures += failed_questions.from_requests_failed(items, failed, "reader")
    to_judge = [it for it in items if judged(it) and it.response is not None]
    if to_judge:
        with tqdm(total=len(to_judge), desc="judge", unit="q", disable=not show_progress) as bar:
            try:
                judge(to_judge, judge_reader, config, on_result=lambda i, r: bar.update(1))
            except RequestsFailed as failed:
                failures += failed_questions.from_requests_failed(to_judge, failed, "judge")
    failed_questions.record(run_dir, failures, len(items))
    score_items(items)

    scores = {"format": SCORES_FORMAT, **aggregate(items, records, tasks, counter, profile)}
    scores["scorer"] = scorer_record(
        config,
        prompt,
        reader,
        judge_reader if needs_judge else None,
        counter,
        profile,
        sorted(tasks),
        questions_per_instance,
    )
    scores["task_hashes"] = {name: tasks[name].sha256 for name in sorted(tasks)}
    scores["run"] = run_provenance(run_dir)
    scores["warnings"] = run_warnings(profile, tasks, items)
    for warning in scores["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    with open(run_dir / "predictions.jsonl", "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(prediction_line(item), ensure_ascii=False, sort_keys=True) + "\n")
    write_json(run_dir / "scores.json", check_scores(scores, str(run_dir / "scores.json")))
    result = ScoreResult(scores, items, records)
    write_report(run_dir / "report.md", result, reader)
    return result


def run_warnings(profile: Profile, tasks: dict[str, TaskData], items: Sequence[QuestionItem]) -> list[str]:
    """What makes a run's numbers not the original's: tasks not built from the paper's release, and (for a
    profile with the original's budget floor) questions whose prompt only fitted below it."""
    out = release_warnings(profile, {name: data.manifest for name, data in tasks.items()})
    over = sum(it.over_floor for it in items)
    if over and profile.budget.min_k > 0:
        out.append(
            f"{over} question(s) fitted the {profile.id} budget only below k = {profile.budget.min_k}, where the "
            "original raised; they were scored with fewer entries or a cut core memory (predictions: core_truncated)"
        )
    return out
