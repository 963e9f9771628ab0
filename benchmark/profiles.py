"""Scorer profiles: named, versioned bundles of every choice of the scoring pipeline that moves a score.

A profile fixes the retrieval (idf floor, query string), the reader template and how the budget is
counted, the metric of every task, the LLM judge's prompt and verdict rule, the sampling defaults and
the averages reported. `memalpha score/eval --profile NAME[@VERSION]` picks one (default `v1`, its
latest version); `scores.json`, every prediction line and every leaderboard record name the profile
as `name@version`. A version, once published, never changes: a change is a new version, and old
versions stay selectable so that old scores can be reproduced.

- `memalpha-paper`: the original Mem-alpha evaluation (`evaluate_agent_results.py` behind the memory
  server) mechanism by mechanism, and MemoryAgentBench's own scorers for the tasks Mem-alpha did not
  evaluate. docs/fidelity.md lists each mechanism and the test that holds it.
- `memalpha-train`: the same pipeline with the training reward's per-source metrics (r1).
- `v1`: ours. Each difference from `memalpha-paper` is a named choice with its measured effect
  (docs/fidelity.md).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tasks.argtypes import check_count
from tasks.errors import TaskError, UsageError, quoted
from tasks.registry import all_tasks, get_suite

from . import metrics, original_metrics
from .readers.base import SamplingParams

DEFAULT_PROFILE = "v1"
PAPER_PROFILE = "memalpha-paper"
RELEASES = ("YuWangX/Memalpha", "YuWangX/Memalpha-Memoryagentbench")
"""The processed releases the paper's numbers were computed on."""


class ProfileError(TaskError):
    """A profile that cannot score something (a task it has no metric for, a judged task without a reply)."""


class UnknownProfileError(ProfileError, UsageError):
    """A profile name that names no profile (a usage error: exit code 2)."""


@dataclass(frozen=True)
class ScorerConfig:
    """The numeric settings of a scoring run: k per memory type, the reader budget, the sampling of the
    reader and of the judge. A profile gives the defaults (`Profile.defaults`)."""

    top_k: int = 20
    budget_tokens: int = 30_000
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=2048))
    judge_sampling: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=16))

    def __post_init__(self) -> None:
        check_count("top_k", self.top_k)
        check_count("budget_tokens", self.budget_tokens)
        check_count("sampling.max_tokens", self.sampling.max_tokens)
        check_count("judge_sampling.max_tokens", self.judge_sampling.max_tokens)


QueryRule = Literal["question", "user_message", "labelled_sentence"]
QUERY_RULES: dict[str, str] = {
    "question": "the question alone",
    "user_message": "the reader's user message: the task's query prompt, a blank line, the question",
    "labelled_sentence": "the question alone; for label tasks, the sentence to label (the question's first "
    'line without its "Sentence:" lead)',
}
LABEL_METRIC = "boxed_label_accuracy"


@dataclass(frozen=True)
class Retrieval:
    """BM25's idf floor (`benchmark.retrieval.floored_idf`) and the string each question retrieves with."""

    epsilon: float | None
    query: QueryRule

    def query_text(self, question: str, user_message: str, metric: str) -> str:
        if self.query == "user_message":
            return user_message
        if self.query == "labelled_sentence" and metric == LABEL_METRIC:
            first = question.split("\n", 1)[0].strip()
            return first.removeprefix("Sentence:").strip() or question
        return question

    def describe(self) -> dict[str, Any]:
        from .retrieval import settings  # numpy and scipy: not for `memalpha --help`

        return {**settings(self.epsilon), "query": QUERY_RULES[self.query]}


@dataclass(frozen=True)
class Budget:
    """What the reader budget counts, and the smallest k the original's loop went down to.

    `counts="prompt"`: every message of the prompt; `"system"`: the system message alone (the original
    counted that). k shrinks one step at a time while the count exceeds the budget; below `min_k` the
    original had no answer (it raised), so the scorer goes on to k = 0 and then cuts the core memory,
    and marks the question as over the original's budget.
    """

    counts: Literal["prompt", "system"]
    min_k: int

    def describe(self) -> dict[str, Any]:
        return {"counts": "the whole prompt" if self.counts == "prompt" else "the system message", "min_k": self.min_k}


@dataclass(frozen=True)
class TaskScorer:
    """How one task's answers are scored: `score(raw reply, golds)`, or a judge (`judged`)."""

    id: str
    function: Callable[[str, Sequence[Any]], float] | None = None

    @property
    def judged(self) -> bool:
        return self.function is None

    def score(self, prediction: str, golds: Sequence[Any]) -> float:
        if self.function is None:
            raise ProfileError(f"{self.id} is an LLM judge's verdict: it needs the judge's reply")
        return self.function(prediction, golds)


JudgePrompt = Callable[[str, Sequence[Any], str, str | None, str], list[dict[str, str]]]


@dataclass(frozen=True)
class Judge:
    """The LLM judge of LongMemEval-style tasks: its prompt and how its reply becomes a verdict."""

    id: str
    description: str
    prompt: JudgePrompt
    verdict: Callable[[str], float]


@dataclass(frozen=True)
class Profile:
    name: str
    version: int
    description: str
    template: str  # the reader template version: benchmark/templates/reader_{system,user}_<template>.jinja
    retrieval: Retrieval
    episodic_order: Literal["memory", "rank"]
    budget: Budget
    scorers: Mapping[str, TaskScorer]  # by task name
    judge: Judge
    defaults: ScorerConfig
    averages: tuple[str, ...]  # keys of AVERAGES, the first is `overall`
    check_release: bool = False  # warn when a paper task was not built from the paper's release

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def scorer_for(self, task: str) -> TaskScorer:
        try:
            return self.scorers[task]
        except KeyError:
            raise ProfileError(f"profile {self.id} has no metric for task {quoted(task)}") from None

    def describe(self) -> dict[str, Any]:
        """What scores.json records about the profile (beside the retriever, template and reader)."""
        return {
            "id": self.id,
            "description": self.description,
            "episodic_order": EPISODIC_ORDERS[self.episodic_order],
            "budget": self.budget.describe(),
            "judge": {"id": self.judge.id, "rule": self.judge.description},
            "averages": {key: AVERAGES[key] for key in self.averages},
        }


EPISODIC_ORDERS = {"memory": "memory (chronological) order", "rank": "retrieval rank order"}
AVERAGES = {
    "mean_of_competencies": "question -> mean per instance -> mean over a task's instances -> mean over a "
    "competency's tasks -> mean over competencies",
    "mean_of_tasks": "question -> mean per instance -> mean over a task's instances -> plain mean over tasks "
    "(the papers' Avg. columns)",
}


# ---------------------------------------------------------------- judges


def _v1_judge_prompt(
    question: str, golds: Sequence[Any], prediction: str, question_type: str | None, question_id: str
) -> list[dict[str, str]]:
    return metrics.judge_prompt(question, list(golds), prediction, question_type, question_id=question_id)


def _rubric_prompt(think: Callable[[str], str]) -> JudgePrompt:
    def prompt(
        question: str, golds: Sequence[Any], prediction: str, question_type: str | None, question_id: str
    ) -> list[dict[str, str]]:
        return original_metrics.rubric_judge_prompt(question, golds, think(prediction))

    return prompt


V1_JUDGE = Judge(
    "v1:per-type",
    "LongMemEval's rule for each question type (abstention by the `_abs` id), our wording; the verdict is "
    "the reply's first whole word yes or no",
    _v1_judge_prompt,
    metrics.parse_judge_verdict,
)
PAPER_JUDGE = Judge(
    "memalpha-eval:rubric",
    "one lenient rubric prompt for every question (our wording of Mem-alpha's); verdict: 1 when the "
    'lower-cased reply contains "yes" and not "no"',
    _rubric_prompt(original_metrics.eval_think),
    original_metrics.memalpha_verdict,
)
TRAIN_JUDGE = Judge(
    "memalpha-train:rubric",
    PAPER_JUDGE.description + " (the training reward's think handling)",
    _rubric_prompt(original_metrics.train_think),
    original_metrics.memalpha_verdict,
)


# ---------------------------------------------------------------- per-task metrics

JUDGED = TaskScorer("llm_judge")


def flat_golds(golds: Sequence[Any]) -> list[str]:
    """A gold list with MemoryAgentBench-style lists of lists flattened (v1 takes every alias)."""
    return [g for item in golds for g in (item if isinstance(item, list | tuple) else [item])]


def _v1_scorer(metric: str) -> TaskScorer:
    if metric == metrics.JUDGE_METRIC:
        return JUDGED
    return TaskScorer(metric, lambda prediction, golds: metrics.score(metric, prediction, flat_golds(golds)))


def _original(scorer_id: str) -> TaskScorer:
    return TaskScorer(scorer_id, original_metrics.SCORERS[scorer_id])


def v1_scorers() -> dict[str, TaskScorer]:
    """v1 scores every task by its registry metric (benchmark/metrics.py)."""
    return {spec.name: _v1_scorer(spec.metric) for spec in all_tasks()}


PAPER_METRICS = {
    "squad": "memalpha-eval:squad_hotpotqa",
    "hotpotqa": "memalpha-eval:squad_hotpotqa",
    "perltqa": "memalpha-eval:perltqa_keywords",
    "lme_train": JUDGED.id,
    "booksum": "memalpha-eval:booksum_infbench_keywords",
    "pubmed_rct": "memalpha-eval:icl_label",
    "ttl_trec_coarse": "memalpha-eval:icl_label",
    "ttl_nlu": "memalpha-eval:icl_label",
    "ruler_qa1_197k": "memalpha-eval:ruler_qa",
    "ruler_qa2_421k": "memalpha-eval:ruler_qa",
    "longmemeval_s": JUDGED.id,
    "icl_banking77": "memalpha-eval:icl_label",
    "icl_clinic150": "memalpha-eval:icl_label",
    "icl_nlu": "memalpha-eval:icl_label",
    "icl_trec_coarse": "memalpha-eval:icl_label",
    "icl_trec_fine": "memalpha-eval:icl_label",
    "infbench_sum": "memalpha-eval:booksum_infbench_keywords",
    # beyond the paper: MemoryAgentBench's own scorers (its README's metric table)
    "eventqa": "mab:eventqa_parsed",
    "detective_qa": "mab:exact_match",
    "factconsolidation_sh": "mab:substring_exact_match",
    "factconsolidation_mh": "mab:substring_exact_match",
    "locomo": "mab:f1",
    # the original maps titles to entity2id.json names by edit distance; our tasks keep titles only
    "recsys_redial": "v1:recall_at_5",
}
"""Mem-alpha's eval metric per source; the length-scaling tasks (SQuAD questions over a RULER-style
haystack) take MemoryAgentBench's ruler scorer."""
TRAIN_METRICS = {
    **PAPER_METRICS,
    "squad": "memalpha-train:squad_hotpotqa",
    "hotpotqa": "memalpha-train:squad_hotpotqa",
    "perltqa": "memalpha-train:perltqa_keywords",
    "booksum": "memalpha-train:booksum_keywords",
    "pubmed_rct": "memalpha-train:pubmed_rct_label",
    **{t: "memalpha-train:ttl_icl_label" for t in ("ttl_trec_coarse", "ttl_nlu")},
    **{
        f"icl_{s}": "memalpha-train:ttl_icl_label"
        for s in ("banking77", "clinic150", "nlu", "trec_coarse", "trec_fine")
    },
    "ruler_qa1_197k": "memalpha-train:default_substring",
    "ruler_qa2_421k": "memalpha-train:default_substring",
    "longmemeval_s": "memalpha-train:default_substring",  # the reward had no judge branch for it
    "infbench_sum": "memalpha-train:infbench_sum_rougeL",
}
"""The training reward's metric per source (r1)."""


def original_scorers(table: Mapping[str, str]) -> dict[str, TaskScorer]:
    out = {}
    for spec in all_tasks():
        scorer_id = table.get(spec.name, "mab:substring_exact_match" if spec.name.startswith("scaling_") else None)
        if scorer_id is None:
            continue
        if scorer_id == JUDGED.id:
            out[spec.name] = JUDGED
        elif scorer_id.startswith("v1:"):
            out[spec.name] = _v1_scorer(scorer_id.removeprefix("v1:"))
        else:
            out[spec.name] = _original(scorer_id)
    return out


# ---------------------------------------------------------------- the profiles

V1_DEFAULTS = ScorerConfig()
PAPER_DEFAULTS = ScorerConfig(
    sampling=SamplingParams(max_tokens=2048, temperature=0.7, top_p=0.95),
    judge_sampling=SamplingParams(max_tokens=512, temperature=0.6, top_p=0.95),
)
"""The memory server's reader: temperature 0.7, 2048 tokens, thinking off; top_p unset, so a vLLM server
takes Qwen3-32B's generation config (0.95; its top_k 20 is the server's too). The judge call set
nothing: the generation config's 0.6 / 0.95; a reply is a word, so 512 tokens never cut one."""


def _v1(version: int, description: str, template: str, retrieval: Retrieval) -> Profile:
    return Profile(
        name="v1",
        version=version,
        description=description,
        template=template,
        retrieval=retrieval,
        episodic_order="memory",
        budget=Budget("prompt", 0),
        scorers=v1_scorers(),
        judge=V1_JUDGE,
        defaults=V1_DEFAULTS,
        averages=("mean_of_competencies",),
    )


def _memalpha(name: str, description: str, table: Mapping[str, str], judge: Judge) -> Profile:
    return Profile(
        name=name,
        version=1,
        description=description,
        template="paper",
        retrieval=Retrieval(0.25, "user_message"),
        episodic_order="rank",
        budget=Budget("system", 1),
        scorers=original_scorers(table),
        judge=judge,
        defaults=PAPER_DEFAULTS,
        averages=("mean_of_competencies", "mean_of_tasks"),
        check_release=True,
    )


def _build_profiles() -> dict[str, Profile]:
    profiles = [
        _v1(
            1,
            "ours, first version: idf floored at 0, retrieval on the question, a reader asked for brief answers",
            "v1",
            Retrieval(None, "question"),
        ),
        _v1(
            2,
            "ours: rank-bm25's idf floor, retrieval on the question (the bare sentence for label tasks), a "
            "reader asked for the length the request calls for",
            "v2",
            Retrieval(0.25, "labelled_sentence"),
        ),
        _memalpha(
            PAPER_PROFILE,
            "the original Mem-alpha evaluation (memory server + evaluate_agent_results.py), mechanism by "
            "mechanism; MemoryAgentBench's own scorers for the tasks beyond the paper",
            PAPER_METRICS,
            PAPER_JUDGE,
        ),
        _memalpha(
            "memalpha-train",
            "the original Mem-alpha training reward r1: memalpha-paper's pipeline with the reward's "
            "per-source metrics (naive.py)",
            TRAIN_METRICS,
            TRAIN_JUDGE,
        ),
    ]
    return {p.id: p for p in profiles}


_PROFILES: dict[str, Profile] = {}


def all_profiles() -> list[Profile]:
    if not _PROFILES:
        _PROFILES.update(_build_profiles())
    return list(_PROFILES.values())


def get_profile(name: str | Profile | None = None) -> Profile:
    """A profile by `name@version`, or by name alone (its latest version); None: the default profile."""
    if isinstance(name, Profile):
        return name
    name = name or DEFAULT_PROFILE
    profiles = {p.id: p for p in all_profiles()}
    if name in profiles:
        return profiles[name]
    versions = [p for p in profiles.values() if p.name == name]
    if not versions:
        known = list(dict.fromkeys(p.name for p in profiles.values())) + list(profiles)
        close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownProfileError(f"unknown scorer profile {name!r}{hint} (known: {', '.join(profiles)})")
    return max(versions, key=lambda p: p.version)


def profile_ids() -> list[str]:
    return [p.id for p in all_profiles()]


def is_paper_task(task: str) -> bool:
    """A task whose numbers the Mem-alpha paper reports (its validation sources and MemoryAgentBench subset)."""
    return any(task in get_suite(s).tasks for s in ("memalpha-train", "mab-paper"))


def release_warnings(profile: Profile, manifests: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """For a profile that reproduces the paper: each paper task not built from the release the paper used."""
    if not profile.check_release:
        return []
    out = []
    for task, manifest in sorted(manifests.items()):
        source = (manifest.get("source") or {}).get("id")
        if is_paper_task(task) and (manifest.get("origin") != "release" or source not in RELEASES):
            out.append(
                f"{task}: built --from {manifest.get('origin')} ({source}), not from the release the paper "
                f"used ({' / '.join(RELEASES)}); {profile.id} scores it, but its numbers are not the paper's data"
            )
    return out
