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
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.atomic import replace_together
from tasks.errors import TaskError, shortened
from tasks.llm import skipped_required_step
from tasks.manifest import load_built
from tasks.registry import get_task
from tasks.tokenization import TokenCounter

from . import aggregation, failed_questions
from .input_limits import InputLimits, check_memories_file
from .memory import MemoryRecord, read_memories
from .memory_tokens import MemoryTokens
from .profiles import AVERAGES, Profile, ScorerConfig, get_profile, release_warnings
from .prompting import ReaderPrompt
from .readers.base import Reader, ReaderRequest, ReaderResponse, RequestsFailed, SamplingParams
from .results_schema import SCORES_FORMAT, check_scores
from .retrieval import MemoryIndex
from .timings import Timings

__all__ = ["QuestionItem", "ScorerConfig", "aggregate", "answer", "judge", "prepare", "score_items", "score_run"]

PREDICTIONS, REPORT, SCORES = "predictions.jsonl", "report.md", "scores.json"  # written in this order
SCORER_VERSION = "2.0"  # 2.0: scorer profiles (scores.json `scorer.profile`)
AGGREGATION_RULE = AVERAGES["mean_of_competencies"]


@dataclass
class Instance:
    """One memory and its task row, shared by the instance's questions; its tokens are counted once."""

    record: MemoryRecord
    row: dict[str, Any]
    query_prompt: str | None
    tokens: MemoryTokens


@dataclass(frozen=True)
class PromptMaker:
    """What turns a retrieved question into its reader request; one per scoring run, shared by its items."""

    prompt: ReaderPrompt
    counter: TokenCounter
    budget: int
    sampling: SamplingParams


@dataclass(frozen=True)
class Shown:
    """What a built prompt showed, kept after the prompt itself is dropped."""

    retrieved: dict[str, list[str]]
    core_truncated: bool
    over_floor: bool  # the prompt needed k below the original's floor (its budget loop raised)


@dataclass
class QuestionItem:
    """One (instance, question) with its retrieval, waiting for the reader; `profile` scores it.

    The prompt is built when `request` is read and is not kept (with a 30k-token budget one is ~100 KB):
    the scorer builds the requests of one window of questions at a time, just before sending them. What
    the prompt showed (`retrieved`, `core_truncated`, `over_floor`) is kept from the first build.
    """

    instance: Instance
    question: dict[str, Any]
    metric: str  # the profile's scorer id for the task ("llm_judge" for a judged one)
    semantic_rank: tuple[int, ...]
    episodic_rank: tuple[int, ...]
    maker: PromptMaker
    question_tokens: int | None = None
    response: ReaderResponse | None = None
    score: float | None = None
    profile: Profile = field(default_factory=get_profile)
    shown: Shown | None = None

    @property
    def record(self) -> MemoryRecord:
        return self.instance.record

    @property
    def row(self) -> dict[str, Any]:
        return self.instance.row

    @property
    def request(self) -> ReaderRequest:
        """The reader request, its prompt built now (and fitted to the budget); not kept."""
        maker, memory = self.maker, self.instance.record.memory
        built = maker.prompt.build(
            memory,
            self.semantic_rank,
            self.episodic_rank,
            self.question["question"],
            self.instance.query_prompt,
            counter=maker.counter,
            budget=maker.budget,
            entry_tokens=(self.instance.tokens.semantic, self.instance.tokens.episodic),
            task=self.instance.record.task,
            question_tokens=self.question_tokens,
        )
        if self.shown is None:
            retrieved = {
                "semantic": [memory.semantic[i].id for i in built.semantic],
                "episodic": [memory.episodic[i].id for i in built.episodic],
            }
            self.shown = Shown(retrieved, built.core_truncated, built.over_floor)
        return ReaderRequest(built.messages, maker.sampling)

    def _shown(self) -> Shown:
        if self.shown is None:
            self.request  # noqa: B018 - building the prompt records what it shows
        assert self.shown is not None
        return self.shown

    @property
    def retrieved(self) -> dict[str, list[str]]:
        return self._shown().retrieved

    @property
    def core_truncated(self) -> bool:
        return self._shown().core_truncated

    @property
    def over_floor(self) -> bool:
        return self._shown().over_floor


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
    unknown = [r for r in records if r.instance_id not in tasks[r.task].rows]
    if unknown:
        shown = [f"{r.task}/{shortened(r.instance_id)}" for r in unknown[:20]]
        listed = ", ".join(shown) + (f" ... ({len(unknown)} in all)" if len(unknown) > 20 else "")
        raise TaskError(f"{memories_path}: instance ids not in the task data: {listed}")


def prepare(
    records: Sequence[MemoryRecord],
    tasks: dict[str, TaskData],
    config: ScorerConfig,
    prompt: ReaderPrompt,
    counter: TokenCounter,
    profile: Profile | str | None = None,
) -> list[QuestionItem]:
    """Retrieval for every question; prompts are built later, when each item's `request` is read.

    Per instance: its memory's tokens counted once (`MemoryTokens`), then `retrieve`.
    """
    profile = get_profile(profile)
    maker = PromptMaker(prompt, counter, config.budget_tokens, config.sampling)
    items = []
    for record in records:
        row = tasks[record.task].rows[record.instance_id]
        instance = Instance(record, row, get_task(record.task).query_prompt, MemoryTokens.count(record.memory, counter))
        items += retrieve(instance, config.top_k, maker, profile)
    return items


def retrieve(instance: Instance, top_k: int, maker: PromptMaker, profile: Profile) -> list[QuestionItem]:
    """An instance's questions with their retrieval: its two indexes built once, searched with all of its
    questions together, then dropped."""
    record, rule = instance.record, profile.retrieval
    metric = get_task(record.task).metric
    questions = [q["question"] for q in instance.row["questions"]]
    texts = [
        rule.query_text(
            q,
            maker.prompt.render_user(q, instance.query_prompt, record.task) if rule.query == "user_message" else q,
            metric,
        )
        for q in questions
    ]
    sem_ranks, epi_ranks = (
        MemoryIndex([e.content for e in entries], epsilon=rule.epsilon).search_many(texts, top_k)
        for entries in (record.memory.semantic, record.memory.episodic)
    )
    counted = maker.prompt.rule.counts == "prompt"  # the question counts toward the budget
    question_tokens = maker.counter.count_many(questions) if counted else [None] * len(questions)
    scorer = profile.scorer_for(record.task).id
    return [
        QuestionItem(instance, q, scorer, tuple(sem), tuple(epi), maker, tokens, profile=profile)
        for q, sem, epi, tokens in zip(instance.row["questions"], sem_ranks, epi_ranks, question_tokens, strict=True)
    ]


PROMPT_WINDOW = 512
"""Questions whose prompts exist at a time, at least (`prompt_window`)."""


def prompt_window(concurrency: int) -> int:
    """How many requests go to the reader per call: four times what it has in flight (so that the calls'
    tails, where fewer are in flight, cost little), and at least PROMPT_WINDOW."""
    return max(PROMPT_WINDOW, 4 * concurrency)


def _generate_in_windows(
    reader: Reader,
    count: int,
    request: Callable[[int], ReaderRequest],
    on_result: Callable[[int, ReaderResponse], None],
    window: int | None,
    timings: Timings | None,
) -> None:
    """Ask `reader` for requests 0 .. count-1, `window` of them per call (None: all in one call), each request
    made (by `request(i)`) just before its window is sent and dropped after. Requests that fail for good are
    gathered over every window and raised together (RequestsFailed, indices of the whole run) once all others
    are answered."""
    window = window or count or 1
    failures: dict[int, str] = {}
    for start in range(0, count, window):
        end = min(count, start + window)
        with timings.phase("retrieval and prompts") if timings else nullcontext():
            requests = [request(i) for i in range(start, end)]

        def report(i: int, response: ReaderResponse, start: int = start) -> None:
            on_result(start + i, response)

        try:
            reader.generate(requests, on_result=report)
        except RequestsFailed as failed:
            failures.update((start + i, reason) for i, reason in failed.failures.items())
        del requests
    if failures:
        raise RequestsFailed(failures, count)


def answer(
    items: Sequence[QuestionItem],
    reader: Reader,
    on_result: Callable[[int, ReaderResponse], None] | None,
    *,
    window: int | None = None,
    timings: Timings | None = None,
) -> None:
    """Every item's answer (`item.response`, set as each arrives), `window` prompts at a time (default:
    all)."""

    def answered(i: int, response: ReaderResponse) -> None:
        items[i].response = response
        if on_result is not None:
            on_result(i, response)

    _generate_in_windows(reader, len(items), lambda i: items[i].request, answered, window, timings)


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
    *,
    window: int | None = None,
) -> None:
    """LLM-judge questions: a yes/no verdict per (question, gold, response), `window` requests at a time.
    `on_result` gets indices into the judged items."""
    pending = [it for it in items if judged(it)]

    def verdict(i: int, reply: ReaderResponse) -> None:
        set_verdict(pending[i], reply)
        if on_result is not None:
            on_result(i, reply)

    _generate_in_windows(judge_reader, len(pending), lambda i: judge_request(pending[i], config), verdict, window, None)


def score_items(items: Sequence[QuestionItem]) -> None:
    for item in items:
        scorer = item.profile.scorer_for(item.record.task)
        if not scorer.judged:
            item.score = scorer.score(item.response.raw_text, item.question["answers"])


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else 0.0


def _memory_size(record: MemoryRecord, counted: dict[tuple[str, str], int], counter: TokenCounter) -> int:
    """The memory's tokens: as `prepare` counted them, or counted now for a memory without questions."""
    key = (record.task, record.instance_id)
    return counted[key] if key in counted else sum(counter.count_many(record.memory.texts()))


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
    memory_tokens: dict[tuple[str, str], int] = {}  # counted by `prepare`, once per memory
    for it in items:
        key = (it.record.task, it.record.instance_id)
        per_instance[key].append(it.score)
        memory_tokens[key] = it.instance.tokens.size
    task_scores: dict[str, dict[str, Any]] = {}
    instance_means: dict[str, list[float]] = {}
    for name in sorted({r.task for r in records}):
        recs = [r for r in records if r.task == name]
        inst_means = instance_means[name] = [_mean(per_instance[(name, r.instance_id)]) for r in recs]
        sizes = [_memory_size(r, memory_tokens, counter) for r in recs]
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


def json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


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


def load_run(
    run_dir: Path, data_dir: Path, limits: InputLimits | None = None
) -> tuple[list[MemoryRecord], dict[str, TaskData]]:
    memories = run_dir / "memories.jsonl"
    check_memories_file(memories, limits or InputLimits())
    records = read_memories(memories)
    tasks = load_tasks(data_dir, sorted({r.task for r in records}))
    check_ids(records, tasks, memories)
    return records, tasks


@dataclass
class ScoreResult:
    scores: dict[str, Any]
    items: list[QuestionItem]
    records: list[MemoryRecord]
    timings: Timings = field(default_factory=Timings)


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
    window: int = PROMPT_WINDOW,
    limits: InputLimits | None = None,
) -> ScoreResult:
    """Score `run_dir/memories.jsonl`; writes predictions.jsonl, scores.json and report.md beside it.

    `profile` (default `v1`) fixes the pipeline and gives the defaults of `config`; `template_file` replaces
    the profile's reader template by a user's (its sha256 is recorded). `questions_per_instance` asks only
    the first N questions of each instance (a smoke run). Prompts are built `window` at a time, just before
    the reader gets them (`prompt_window`), so memory does not grow with the number of questions; `limits`
    caps the size of the memories file.
    """
    from tqdm.auto import tqdm

    from .report import run_provenance

    run_dir, data_dir = Path(run_dir), Path(data_dir)
    profile = get_profile(profile)
    config = config or profile.defaults
    timings = Timings()
    with timings.phase("load"):
        prompt = ReaderPrompt.for_profile(profile, template_file)
        records, tasks = load_run(run_dir, data_dir, limits)
        if questions_per_instance:
            limit_questions(tasks, questions_per_instance)
    with timings.phase("retrieval and prompts"):
        items = prepare(records, tasks, config, prompt, counter, profile)
    judge_reader = judge_reader or reader
    needs_judge = any(judged(it) for it in items)

    failures: list[failed_questions.QuestionFailure] = []
    with tqdm(total=len(items), desc="reader", unit="q", disable=not show_progress) as bar, timings.phase("reader"):
        try:
            answer(items, reader, on_result=lambda i, r: bar.update(1), window=window, timings=timings)
        except RequestsFailed as failed:
            failures += failed_questions.from_requests_failed(items, failed, "reader")
    to_judge = [it for it in items if judged(it) and it.response is not None]
    if to_judge:
        with (
            tqdm(total=len(to_judge), desc="judge", unit="q", disable=not show_progress) as bar,
            timings.phase("judge"),
        ):
            try:
                judge(to_judge, judge_reader, config, on_result=lambda i, r: bar.update(1), window=window)
            except RequestsFailed as failed:
                failures += failed_questions.from_requests_failed(to_judge, failed, "judge")
    failed_questions.record(run_dir, failures, len(items))
    with timings.phase("metrics"):
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
    result = ScoreResult(scores, items, records, timings)
    write_outputs(run_dir, result, reader)
    return result


def write_outputs(run_dir: Path, result: ScoreResult, reader: Reader) -> None:
    """predictions.jsonl, report.md and scores.json, replaced as one set with scores.json as its seal
    (tasks.atomic): scores.json is removed first and written last, so when it is there the two files beside
    it are the ones written with it, and a kill or a full disk never leaves new predictions beside old
    scores."""
    from .report import report_text

    lines = (json.dumps(prediction_line(it), ensure_ascii=False, sort_keys=True) + "\n" for it in result.items)
    replace_together(
        run_dir,
        {
            PREDICTIONS: lines,
            REPORT: report_text(result, reader),
            SCORES: json_text(check_scores(result.scores, str(run_dir / SCORES))),
        },
    )


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
