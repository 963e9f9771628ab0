"""The main job, one step after another, for `memalpha run/score/eval` and the Python API alike.

1. plan: task names, the data folder, the token counter, the tasks to build on first use and the
   LLM steps their builds need. Nothing heavy is loaded, and a job that cannot end in a score stops
   here, saying what to pass;
2. preflight: every model the job will ask (reader, judge, builder LLM) answers a one-token request,
   each of its servers when it has several, with the key it will use, so a missing backend, a dead
   server, a refused key or a model it does not serve is reported with the server's own words
   before any agent or reader work;
3. first-use builds of the tasks missing from the data folder (hub, pinned revisions), with the
   builder LLM where a task's metric needs one;
4. run: the agent over every instance (benchmark.running);
5. score: the memories through the fixed pipeline of a scorer profile (benchmark.scoring). A run
   folder scored before with other settings (profile and reader template included) is not
   overwritten without `force`.

One token counter (`tokenizer`) serves the builds, the agents (their `tokenizer` option, unless
set) and the scorer.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.argtypes import check_count
from tasks.errors import TaskError, UsageError
from tasks.llm import BuilderLLM, required_step, skipped_required_step
from tasks.manifest import MANIFEST, read_manifest
from tasks.registry import get_suite, get_task, resolve_names
from tasks.strict_json import JsonProblem, decode
from tasks.tokenization import get_counter

from .agents import Agent, make_agent
from .cache import NOT_IDENTITY, CachedReader, ResponseCache
from .compare import as_json, differences
from .readers.base import Reader, ReaderError, ReaderRequest, SamplingParams
from .running import MEMORIES, RunSummary, run_agent

DATA_ENV = "MEMALPHA_DATA"
DEFAULT_TOKENIZER = "qwen3"
SCORER_CACHE = Path(".cache") / "responses.sqlite"
SCORES = "scores.json"
PROBE = ReaderRequest((("user", "Reply with the word ready."),), SamplingParams(max_tokens=1))
_PROBE_TIMEOUT_S = 10.0


def note(message: str) -> None:
    """A line for the user on stderr (results go to stdout)."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- plan


def default_data_dir() -> Path:
    """Where tasks are built on first use when no data folder is given."""
    from .paths import cache_root

    return Path(os.environ.get(DATA_ENV) or cache_root() / "tasks")


def resolve_members(
    tasks: Sequence[str] | None = None, suite: str | None = None, split: str | None = None
) -> list[tuple[str, str | None]]:
    """(task, split) pairs: a suite's own splits, or the tasks at `split` (default: test, else validation)."""
    if suite and tasks:
        raise UsageError("name either tasks or a suite, not both")
    if suite:
        return [(t, split or s) for t, s in get_suite(suite).members]
    if not tasks:
        raise UsageError("name the tasks to run: --tasks NAME... or --suite S")
    out = []
    for name in resolve_names(list(tasks)):
        splits = get_task(name).splits
        chosen = split or ("test" if "test" in splits else "validation")
        if chosen not in splits:
            raise UsageError(f"task {name!r} has no split {chosen!r} (it has {', '.join(splits)})")
        out.append((name, chosen))
    return out


@dataclass
class Plan:
    """A job checked before anything heavy runs."""

    members: list[tuple[str, str | None]]
    data_dir: Path
    tokenizer: str
    to_build: list[str] = field(default_factory=list)  # missing tasks, built on first use
    llm_steps: dict[str, str] = field(default_factory=dict)  # task to build -> the LLM step it needs

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(task for task, _ in self.members))


def plan(
    *,
    tasks: Sequence[str] | None = None,
    suite: str | None = None,
    split: str | None = None,
    data: str | Path | None = None,
    tokenizer: str = DEFAULT_TOKENIZER,
    scoring: bool = False,
) -> Plan:
    """Check a job's tasks, data and token counter. Without `data`, missing tasks are built from the hub
    on first use into the default data folder; with it, every task must be built there already. The
    token counter is loaded (and a counter that cannot be had offline reported) when the job builds or
    scores."""
    members = resolve_members(tasks, suite, split)
    job = Plan(members, Path(data) if data else default_data_dir(), tokenizer)
    manifests = {}
    for task in job.tasks:
        manifest_path = job.data_dir / task / MANIFEST
        if manifest_path.is_file():
            manifests[task] = read_manifest(job.data_dir / task)
            _check_scorable(job.data_dir / task, manifests[task])
    missing = [t for t in job.tasks if t not in manifests]
    if missing and data is not None:
        raise TaskError(
            f"not built in {job.data_dir}: {', '.join(missing)}. Build them first (memalpha tasks build "
            f"{' '.join(missing)} --out {job.data_dir} [--from raw --raw-dir DIR] --tokenizer {tokenizer}), "
            "or leave out --data to build them from the hub on first use"
        )
    if scoring or missing:
        spec = get_counter(tokenizer).describe().get("spec")  # offline without it: say so now, not later
        for task, manifest in manifests.items():
            built_with = (manifest.get("tokenizer") or {}).get("spec")
            if built_with and built_with != spec:
                note(
                    f"note: {job.data_dir / task} was built with tokenizer {built_with}; its chunks stay as "
                    f"built, and this job counts tokens with {spec}"
                )
    job.to_build = missing
    job.llm_steps = {t: step for t in missing if (step := required_step(get_task(t).metric))}
    return job


def _check_scorable(task_dir: Path, manifest: dict[str, Any]) -> None:
    step = skipped_required_step(manifest)
    if step:
        raise TaskError(
            f"{task_dir} was built without its LLM step {step}, which its metric needs, so it cannot be "
            f"scored; rebuild it: memalpha tasks build {manifest['task']} --out {task_dir.parent} --llm-model MODEL "
            "[--llm-base-url URL]"
        )


def require_builder_llm(job: Plan, available: bool) -> None:
    """Stop before any work when a task to build needs an LLM step and no LLM was named."""
    if not job.llm_steps or available:
        return
    steps = ", ".join(f"{task} ({step})" for task, step in job.llm_steps.items())
    names = " ".join(job.llm_steps)
    raise UsageError(
        f"building {steps} needs an LLM; name one with --build-llm-model MODEL (with --build-llm-base-url URL "
        "for a served model; `builder_llm=` in Python), or build them first: memalpha tasks build "
        f"{names} --out {job.data_dir} --llm-model MODEL --llm-base-url URL"
    )


# ----------------------------------------------------------------------------------------- preflight


def _inner(reader: Reader) -> Reader:
    return reader.reader if isinstance(reader, CachedReader) else reader


def served_models(base_url: str, role: str, api_key: str | None = None) -> list[str] | None:
    """The model ids an OpenAI-compatible server lists at /models (None if it lists none or answers
    with an error); a server that does not answer at all stops the job here, without retries.
    `api_key` is the reader's (default $OPENAI_API_KEY)."""
    request = urllib.request.Request(base_url.rstrip("/") + "/models", headers={"Accept": "application/json"})
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=_PROBE_TIMEOUT_S) as response:
            body = decode(response.read())
    except urllib.error.HTTPError:
        return None  # it answers: reachable; the one-token request says the rest
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReaderError(
            f"{role}: nothing answers at {base_url} ({reason}); start the server, or fix the address"
        ) from None
    except JsonProblem:
        return None
    models = body.get("data") if isinstance(body, dict) else None
    ids = [m.get("id") for m in models or () if isinstance(m, dict) and m.get("id")]
    return ids or None


def probe(reader: Reader, role: str) -> None:
    """One token from `reader`, past its cache: the backend loads, the server answers, the model is
    served. An openai reader with several servers has each of them answer on its own (a request goes to
    one server only, so one probe through the reader would leave the others untried)."""
    from .readers.openai_reader import OpenAIReader

    inner = _inner(reader)
    for target in inner.one_per_server() if isinstance(inner, OpenAIReader) else [inner]:
        _probe_one(target, role)


def _probe_one(reader: Reader, role: str) -> None:
    from .readers.openai_reader import OpenAIReader

    described = reader.describe()
    base_url = described.get("base_url")
    key = reader.api_key if isinstance(reader, OpenAIReader) else None
    listed = served_models(base_url, role, key) if base_url else None
    try:
        reader.generate([PROBE])
    except Exception as exc:  # an in-process engine may raise its own errors: each is reported the same way
        where = f" at {base_url}" if base_url else ""
        hint = f"; the server lists: {', '.join(listed)}" if listed and described.get("model") not in listed else ""
        why = str(exc) if isinstance(exc, ReaderError) else f"{type(exc).__name__}: {exc}"
        raise ReaderError(
            f"{role} ({described.get('backend')} model {described.get('model')!r}{where}) failed a one-token "
            f"test request, before any work: {why}{hint}"
        ) from exc


def preflight(reader: Reader | None, judge: Reader | None, builder: Reader | None) -> None:
    """Probe each model the job will ask, once each."""
    for model, role in ((reader, "reader"), (judge, "judge"), (builder, "builder LLM")):
        if model is not None:
            probe(model, role)


def needs_judge(tasks: Sequence[str], profile: Any = None) -> bool:
    """Whether the profile (default v1) scores any of the tasks with an LLM judge."""
    from .profiles import get_profile

    scoring = get_profile(profile)
    return any(scoring.scorer_for(t).judged for t in tasks)


def cached(reader: Reader, run_dir: Path) -> Reader:
    """`reader` answering through the run's response cache (unless it has a cache already)."""
    return reader if isinstance(reader, CachedReader) else CachedReader(reader, ResponseCache(run_dir / SCORER_CACHE))


def builder_from(reader: Reader) -> BuilderLLM:
    """A reader as the LLM of the build steps, answering through the builders' own cache."""
    from .builder_llm import ReaderLLM, default_cache

    return ReaderLLM(CachedReader(_inner(reader), ResponseCache(default_cache())))


# ------------------------------------------------------------------------------------ re-score check


@dataclass(frozen=True)
class ScoringSettings:
    """How memories are scored, besides the reader and judge: the scorer profile and its numbers
    (`config`, default the profile's), a reader template file replacing the profile's, the token
    counter, a smoke run's question limit, the caps on the memories file and the prompt window."""

    tokenizer: str = DEFAULT_TOKENIZER
    config: Any = None  # benchmark.scoring.ScorerConfig | None
    profile: Any = None  # a profile id or benchmark.profiles.Profile; None: the default (v1)
    template_file: str | Path | None = None
    limit_questions: int | None = None
    limits: Any = None  # benchmark.input_limits.InputLimits | None: caps on memories.jsonl (None: the defaults)
    window: int | None = None  # questions whose prompts exist at a time (None: benchmark.scoring.PROMPT_WINDOW)

    def __post_init__(self) -> None:
        check_count("limit_questions", self.limit_questions)
        check_count("window", self.window)


def expected_scorer(
    reader: Reader, judge: Reader | None, tasks: Sequence[str], settings: ScoringSettings
) -> dict[str, Any]:
    """The `scorer` record a score of these tasks with these settings will carry."""
    from .scoring import expected_scorer_record

    return expected_scorer_record(
        reader,
        judge,
        tasks,
        get_counter(settings.tokenizer),
        config=settings.config,
        profile=settings.profile,
        template_file=settings.template_file,
        questions_per_instance=settings.limit_questions,
    )


def check_rescore(run_dir: Path, expected: dict[str, Any], force: bool) -> None:
    """Refuse to overwrite scores made with other settings. Where and how a model is reached (its
    servers, how the template field is sent: `benchmark.cache.NOT_IDENTITY`) does not count."""
    from .results_schema import read_scores  # pydantic: not on the --help path

    path = run_dir / SCORES
    if force or not path.is_file():
        return
    before = read_scores(path)["scorer"]
    found = differences(before, as_json(expected), ignore=NOT_IDENTITY)
    if found:
        raise UsageError(
            f"{path} holds scores made with other settings ({'; '.join(found)}); pass --force to replace "
            "predictions.jsonl, scores.json and report.md, or score a copy of the run folder"
        )


# --------------------------------------------------------------------------------------- run, score


def _agent(agent: str | Agent, options: dict[str, str] | None, tokenizer: str) -> Agent:
    if isinstance(agent, Agent):
        if options:
            raise UsageError("options go to the agent's constructor when an Agent object is given")
        return agent
    return make_agent(agent, options, tokenizer=tokenizer)


def build_missing(job: Plan, llm: BuilderLLM | None, *, show_progress: bool = True) -> None:
    """Build the plan's missing tasks (hub, pinned revisions) with its token counter; the LLM serves the
    tasks whose metric needs an LLM step."""
    from tasks.build import build_task

    for task in job.to_build:
        note(f"building {task} into {job.data_dir} (first use) ...")
        build_task(
            task,
            job.data_dir,
            tokenizer=job.tokenizer,
            llm=llm if task in job.llm_steps else None,
            show_progress=show_progress,
        )
    job.to_build = []


def run_planned(
    job: Plan,
    agent: str | Agent,
    out: str | Path,
    *,
    options: dict[str, str] | None = None,
    builder_llm: Reader | None = None,
    limit: int | None = None,
    concurrency: int = 4,
    show_progress: bool = True,
) -> RunSummary:
    """Steps 2-4 for a planned job: probe the builder LLM if a build needs it, build, run the agent."""
    require_builder_llm(job, builder_llm is not None)
    preflight(None, None, builder_llm if job.llm_steps else None)
    the_agent = _agent(agent, options, job.tokenizer)
    build_missing(
        job, builder_from(builder_llm) if builder_llm and job.llm_steps else None, show_progress=show_progress
    )
    return run_agent(
        the_agent, out, job.data_dir, job.members, limit=limit, concurrency=concurrency, show_progress=show_progress
    )


def memory_tasks(run_dir: str | Path) -> list[str]:
    """The tasks a run's memories.jsonl has memories for (the file checked line by line)."""
    from .memory import read_memories

    return sorted({r.task for r in read_memories(Path(run_dir) / MEMORIES)})


def check_built(data_dir: Path, tasks: Sequence[str]) -> None:
    """Every task built in `data_dir` and scorable."""
    missing = [t for t in tasks if not (data_dir / t / MANIFEST).is_file()]
    if missing:
        raise TaskError(
            f"not built in {data_dir}: {', '.join(missing)} (memalpha tasks build {' '.join(missing)} --out {data_dir})"
        )
    for task in tasks:
        _check_scorable(data_dir / task, read_manifest(data_dir / task))


def check_score_inputs(
    run_dir: str | Path, data: str | Path | None = None, limits: Any = None
) -> tuple[Path, list[str]]:
    """The data folder and the tasks of RUN/memories.jsonl (within `limits`, checked before it is read),
    each built there and scorable."""
    from .input_limits import InputLimits, check_memories_file

    data_dir = Path(data) if data else default_data_dir()
    check_memories_file(Path(run_dir) / MEMORIES, limits or InputLimits())
    tasks = memory_tasks(run_dir)
    check_built(data_dir, tasks)
    return data_dir, tasks


def score(
    run_dir: str | Path,
    *,
    reader: Reader,
    data: str | Path | None = None,
    judge: Reader | None = None,
    tokenizer: str = DEFAULT_TOKENIZER,
    config: Any = None,
    profile: Any = None,
    reader_template: str | Path | None = None,
    limit_questions: int | None = None,
    limits: Any = None,
    window: int | None = None,
    force: bool = False,
    show_progress: bool = True,
):
    """Score RUN/memories.jsonl: data checked, models probed, earlier scores with other settings kept
    unless `force`, then predictions.jsonl, scores.json and report.md written. Returns the ScoreResult.
    `profile` names the scorer profile (default v1); `reader_template` is a template file replacing
    the profile's; `limits` (an InputLimits) caps the memories file; `window` is how many questions'
    prompts exist at a time."""
    data_dir, tasks = check_score_inputs(run_dir, data, limits)
    return score_checked(
        Path(run_dir),
        data_dir,
        tasks,
        reader=reader,
        judge=judge,
        settings=ScoringSettings(tokenizer, config, profile, reader_template, limit_questions, limits, window),
        force=force,
        show_progress=show_progress,
    )


def _score_run(
    run_dir: Path, data_dir: Path, reader: Reader, judge: Reader | None, settings: ScoringSettings, show_progress: bool
):
    from .scoring import PROMPT_WINDOW, score_run

    return score_run(
        run_dir,
        data_dir,
        reader,
        judge_reader=judge,
        counter=get_counter(settings.tokenizer),
        config=settings.config,
        show_progress=show_progress,
        profile=settings.profile,
        template_file=settings.template_file,
        questions_per_instance=settings.limit_questions,
        window=settings.window or PROMPT_WINDOW,
        limits=settings.limits,
    )


def score_checked(
    run_dir: Path,
    data_dir: Path,
    tasks: Sequence[str],
    *,
    reader: Reader,
    judge: Reader | None,
    settings: ScoringSettings,
    force: bool,
    show_progress: bool,
):
    """`score` after `check_score_inputs` (the command line loads its reader in between)."""
    reader = cached(reader, run_dir)
    judge = cached(judge, run_dir) if judge is not None else None
    check_rescore(run_dir, expected_scorer(reader, judge, tasks, settings), force)
    preflight(reader, judge if needs_judge(tasks, settings.profile) else None, None)
    return _score_run(run_dir, data_dir, reader, judge, settings, show_progress)


@dataclass
class Evaluation:
    """What `evaluate` did: the run (memories written, failed, resumed) and the score (None when every
    instance failed, so that there was nothing to score)."""

    run: RunSummary
    score: Any  # benchmark.scoring.ScoreResult | None


def evaluate_planned(
    job: Plan,
    agent: str | Agent,
    out: str | Path,
    *,
    reader: Reader,
    judge: Reader | None = None,
    options: dict[str, str] | None = None,
    builder_llm: Reader | None = None,
    limit: int | None = None,
    limit_questions: int | None = None,
    concurrency: int = 4,
    config: Any = None,
    profile: Any = None,
    reader_template: str | Path | None = None,
    limits: Any = None,
    window: int | None = None,
    force: bool = False,
    show_progress: bool = True,
) -> Evaluation:
    """Steps 2-5 for a planned job. The reader builds what needs an LLM unless `builder_llm` is given."""
    settings = ScoringSettings(job.tokenizer, config, profile, reader_template, limit_questions, limits, window)
    out = Path(out)
    reader = cached(reader, out)
    judge = cached(judge, out) if judge is not None else None
    check_rescore(out, expected_scorer(reader, judge, job.tasks, settings), force)
    preflight(reader, judge if needs_judge(job.tasks, profile) else None, builder_llm if job.llm_steps else None)
    the_agent = _agent(agent, options, job.tokenizer)
    build_missing(job, builder_from(builder_llm or reader) if job.llm_steps else None, show_progress=show_progress)
    summary = run_agent(
        the_agent, out, job.data_dir, job.members, limit=limit, concurrency=concurrency, show_progress=show_progress
    )
    if not (summary.written or summary.resumed):
        return Evaluation(summary, None)
    return Evaluation(summary, _score_run(out, job.data_dir, reader, judge, settings, show_progress))
