"""Mem-α's training rewards over whole rollouts, batched: one call scores every rollout of a step.

Per chunk step t of a rollout i:

    R(i, t) = r1(i) + β·r3(i) + r2(i, t) + γ·r4(i, t)        (β = 0.05, γ = 0.1)

- r1, QA accuracy: the final memory answers all of the instance's questions through the harness's
  scorer (BM25 retrieval, reader prompt, metrics), in-process, every question of every rollout in one
  reader batch through the caller's (cached) reader. The scorer profile decides how: the default,
  `memalpha-train`, is the original reward's (its retrieval, reader prompt and per-source metrics,
  quirks included; `benchmark/profiles.py`); `v1` scores as `memalpha score` does by default;
- r3, compression: 1 − memory tokens / input tokens, both counted with the same counter;
- r2, format: the share of the step's tool calls that executed;
- r4, content: the share of the step's inserts and updates the content judge finds valid for their
  memory type (`content_judge`).

r1 and r3 are per rollout and broadcast to every step; r2 and r4 are per step. A reader or judge that
still fails after its own retries never raises out of `RewardScorer.score`: the rollout it belongs
to gets r1 = 0 (or its unanswered writes count invalid for r4), with a log line.

Where the original implementation has a quirk, the default keeps it (faithfulness) and a named
option in `RewardConfig` turns it off.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from benchmark.memory import Memory, MemoryRecord
from benchmark.profiles import Profile, get_profile
from benchmark.prompting import ReaderPrompt
from benchmark.readers.base import Reader, ReaderError, ReaderRequest, SamplingParams
from benchmark.scoring import ScorerConfig, TaskData, answer, judge, judged, prepare, score_items
from tasks.tokenization import TokenCounter

from .content_judge import content_judge_prompt, parse_content_verdict
from .environment import Status, ToolResult, normalize_memory_type
from .toolcalls import ToolCall

logger = logging.getLogger(__name__)

R1_PROFILE = "memalpha-train"
"""The scorer profile r1 scores with unless told otherwise: the original training reward's."""

STEP_REWARDS = "step_rewards"  # the per-step terms in `RolloutReward.info()`, as a JSON string
JUDGED_TOOLS = {"new_memory_insert": "content", "memory_update": "new_content"}
DELETE_TOOL = "memory_delete"


@dataclass(frozen=True)
class RewardConfig:
    """The reward weights and every quirk of the original reward, each as a named option.

    - `beta`, `gamma`: weights of r3 and r4 (r1 and r2 weigh 1). Paper and code: 0.05 and 0.1
      (the paper's §4.1 prints γ = 1, a typo: §4.4, the README and every script use 0.1).
    - `clip_r3`: the original leaves r3 unclipped, so a memory larger than its input gives r3 < 0;
      True clips r3 to [0, 1].
    - `r2_no_calls`: r2 of a step with no tool call. The original gives 0, which pushes the model to
      call a tool on every chunk.
    - `r2_skipped_is_failure`: the original counts an insert skipped as an exact duplicate as a
      failed call; False counts it as executed (it is a valid call that changed nothing).
    - `r4_deletes`: "zero" (original) scores every `memory_delete` 0 in r4's mean, so a step that
      deletes is penalised; "exclude" leaves deletes out of r4.
    - `r4_no_calls`: r4 of a step with nothing to judge (no call; with "exclude", only deletes).
      The original gives 0.
    - `r4_judge_failed_calls`: the original judges a write's content even when the call itself
      failed (a bad id, say); False scores failed writes 0 without asking the judge.
    - `r1_threshold`: the original's optional binarisation (r1 < threshold → 0, else 1) before β·r3
      is added; None (the default, as in the published runs) keeps r1 as it is.
    """

    beta: float = 0.05
    gamma: float = 0.1
    clip_r3: bool = False
    r2_no_calls: float = 0.0
    r2_skipped_is_failure: bool = True
    r4_deletes: Literal["zero", "exclude"] = "zero"
    r4_no_calls: float = 0.0
    r4_judge_failed_calls: bool = True
    r1_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.r4_deletes not in ("zero", "exclude"):
            raise ValueError(f"r4_deletes must be 'zero' or 'exclude', got {self.r4_deletes!r}")
        if self.r1_threshold is not None and not 0.0 <= self.r1_threshold <= 1.0:
            raise ValueError(f"r1_threshold must lie in [0, 1], got {self.r1_threshold}")


# -- what a rollout hands to the reward ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One tool call of a chunk step as the rewards see it.

    `arguments` is None when they could not be read; `status` is the environment's verdict.
    """

    tool: str
    arguments: dict[str, Any] | None
    status: Status

    @classmethod
    def of(cls, call: ToolCall, result: ToolResult) -> CallRecord:
        return cls(call.name, call.arguments, result.status)

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "arguments": self.arguments, "status": self.status}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CallRecord:
        return cls(obj["tool"], obj["arguments"], obj["status"])


@dataclass(frozen=True)
class Rollout:
    """One rollout of one instance: its questions and chunks, the final memory, each step's calls."""

    task: str
    instance_id: str
    questions: Sequence[Mapping[str, Any]]
    chunks: Sequence[str]
    memory: Memory
    steps: Sequence[Sequence[CallRecord]]


@dataclass(frozen=True)
class RolloutReward:
    """Every term of one rollout's reward; `totals()` gives R per step."""

    r1: float
    r3: float
    r2: tuple[float, ...]
    r4: tuple[float, ...]
    trajectory: float  # r1 (after any threshold) + β·r3, shared by every step
    steps: tuple[float, ...]  # r2 + γ·r4, one per step
    memory_tokens: int
    input_tokens: int
    r1_failed: bool = False
    r4_failed: bool = False

    def totals(self) -> tuple[float, ...]:
        return tuple(self.trajectory + s for s in self.steps)

    def info(self) -> dict[str, float | str]:
        """Scalars for logging, plus the per-step terms as a JSON string (loggers skip strings)."""
        return {
            "r1": self.r1,
            "r3": self.r3,
            "r2_mean": _mean(self.r2),
            "r4_mean": _mean(self.r4),
            "memory_tokens": float(self.memory_tokens),
            "input_tokens": float(self.input_tokens),
            "r1_failed": float(self.r1_failed),
            "r4_failed": float(self.r4_failed),
            STEP_REWARDS: json.dumps(list(self.steps)),
        }


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else 0.0


# -- the formulas ---------------------------------------------------------------------------------


def format_reward(calls: Sequence[CallRecord], config: RewardConfig) -> float:
    """r2: the share of the step's calls that executed (unreadable calls count, as failures)."""
    if not calls:
        return config.r2_no_calls
    succeeded = ("ok",) if config.r2_skipped_is_failure else ("ok", "skipped")
    return sum(c.status in succeeded for c in calls) / len(calls)


def compression_reward(memory_tokens: int, input_tokens: int, config: RewardConfig) -> float:
    """r3 = 1 − memory tokens / input tokens (clipped to [0, 1] only with `clip_r3`)."""
    if input_tokens <= 0:
        raise ValueError(f"r3 needs a positive input length, got {input_tokens} tokens")
    r3 = 1.0 - memory_tokens / input_tokens
    return min(1.0, max(0.0, r3)) if config.clip_r3 else r3


JudgeTarget = tuple[str, str]  # (memory type, content) to ask the judge about


def content_targets(calls: Sequence[CallRecord], config: RewardConfig) -> list[JudgeTarget | float | None]:
    """Per call: what r4 makes of it. A target for the judge, a fixed score, or None (left out).

    Fixed 0 without a judge call, as the original: a delete (unless excluded), any other tool, a call
    without readable arguments, an unknown memory type, empty content; with `r4_judge_failed_calls`
    off, a write that failed to execute.
    """
    out: list[JudgeTarget | float | None] = []
    for call in calls:
        if call.tool == DELETE_TOOL:
            out.append(None if config.r4_deletes == "exclude" else 0.0)
            continue
        key = JUDGED_TOOLS.get(call.tool)
        args = call.arguments
        if key is None or args is None or (call.status == "error" and not config.r4_judge_failed_calls):
            out.append(0.0)
            continue
        kind = normalize_memory_type(args.get("memory_type"))
        content = args.get(key)
        if kind is None or not isinstance(content, str) or not content.strip():
            out.append(0.0)
            continue
        out.append((kind, content.strip()))
    return out


def content_reward(scores: Sequence[float], config: RewardConfig) -> float:
    """r4: the mean of the step's call scores; `r4_no_calls` when nothing counts."""
    return _mean(scores) if scores else config.r4_no_calls


def trajectory_reward(r1: float, r3: float, config: RewardConfig) -> float:
    if config.r1_threshold is not None:
        r1 = float(r1 >= config.r1_threshold)
    return r1 + config.beta * r3


def step_reward(r2: float, r4: float, config: RewardConfig) -> float:
    return r2 + config.gamma * r4


# -- batched scoring ------------------------------------------------------------------------------


def _run_isolated(
    what: str,
    groups: Mapping[int, Sequence[int]],
    run: Callable[[list[int]], None],
    done: Callable[[int], bool],
    describe: Callable[[int], str],
) -> set[int]:
    """Run every unit in one batch. If the batch fails, run each group's unfinished units on their
    own, so one failing rollout cannot take the others down; return the groups that failed again."""
    everything = [u for units in groups.values() for u in units]
    if not everything:
        return set()
    try:
        run(everything)
        return set()
    except ReaderError as exc:
        logger.warning(
            "%s: the batch of %d requests failed (%s); retrying rollout by rollout", what, len(everything), exc
        )
    failed = set()
    for group, units in groups.items():
        rest = [u for u in units if not done(u)]
        if not rest:
            continue
        try:
            run(rest)
        except ReaderError as exc:
            failed.add(group)
            logger.warning("%s: %s failed after retries and scores 0: %s", what, describe(group), exc)
    return failed


@dataclass
class _Verdicts:
    """The content judge's requests for a batch and their scores as they arrive."""

    requests: list[ReaderRequest] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)  # rollout index per request
    scores: list[float | None] = field(default_factory=list)

    def add(self, rollout: int, request: ReaderRequest) -> int:
        self.requests.append(request)
        self.owner.append(rollout)
        self.scores.append(None)
        return len(self.requests) - 1


class RewardScorer:
    """Scores batches of rollouts: r1 through the harness's scorer, r4 through the content judge.

    `reader` answers the questions (wrap it in a `CachedReader`: rollouts that end with equal
    memories then cost nothing extra); `judge` judges LLM-judged questions and memory writes
    (default: the reader). `counter` counts memory and input tokens and the reader budget.
    `profile` scores r1 (default `memalpha-train`); `scorer_config` defaults to the profile's.
    """

    def __init__(
        self,
        reader: Reader,
        counter: TokenCounter,
        *,
        judge: Reader | None = None,
        config: RewardConfig | None = None,
        scorer_config: ScorerConfig | None = None,
        content_sampling: SamplingParams | None = None,
        profile: Profile | str = R1_PROFILE,
    ):
        self.reader = reader
        self.judge = judge or reader
        self.counter = counter
        self.config = config or RewardConfig()
        self.profile = get_profile(profile)
        self.scorer_config = scorer_config or self.profile.defaults
        self.content_sampling = content_sampling or SamplingParams(max_tokens=256)
        self._prompt = ReaderPrompt.for_profile(self.profile)
        self._input_tokens: dict[tuple[str, str], int] = {}

    def score(self, rollouts: Sequence[Rollout]) -> list[RolloutReward]:
        r1, r1_failed = self.qa_accuracy(rollouts)
        step_scores, r4_failed = self.content_scores(rollouts)
        config = self.config
        out = []
        for i, rollout in enumerate(rollouts):
            memory_tokens = sum(self.counter.count_many(rollout.memory.texts()))
            input_tokens = self.input_tokens(rollout)
            r3 = compression_reward(memory_tokens, input_tokens, config)
            r2 = tuple(format_reward(calls, config) for calls in rollout.steps)
            r4 = tuple(content_reward(scores, config) for scores in step_scores[i])
            out.append(
                RolloutReward(
                    r1=r1[i],
                    r3=r3,
                    r2=r2,
                    r4=r4,
                    trajectory=trajectory_reward(r1[i], r3, config),
                    steps=tuple(step_reward(a, b, config) for a, b in zip(r2, r4, strict=True)),
                    memory_tokens=memory_tokens,
                    input_tokens=input_tokens,
                    r1_failed=i in r1_failed,
                    r4_failed=i in r4_failed,
                )
            )
        return out

    def input_tokens(self, rollout: Rollout) -> int:
        """Tokens of the instance's chunks (counted once per instance, shared by its rollouts)."""
        key = (rollout.task, rollout.instance_id)
        if key not in self._input_tokens:
            self._input_tokens[key] = sum(self.counter.count_many(list(rollout.chunks)))
        return self._input_tokens[key]

    # -- r1 --------------------------------------------------------------------------------------

    def qa_accuracy(self, rollouts: Sequence[Rollout]) -> tuple[list[float], set[int]]:
        """r1 per rollout (mean question score) and the rollouts whose reader or judge failed."""
        records = [MemoryRecord(r.instance_id, r.task, r.memory) for r in rollouts]
        tasks: dict[str, TaskData] = {}
        for r in rollouts:
            row = {"instance_id": r.instance_id, "questions": [dict(q) for q in r.questions]}
            tasks.setdefault(r.task, TaskData({}, "", {})).rows[r.instance_id] = row
        items = prepare(records, tasks, self.scorer_config, self._prompt, self.counter, self.profile)
        owner = {id(record): i for i, record in enumerate(records)}
        groups: dict[int, list[int]] = defaultdict(list)
        for u, item in enumerate(items):
            groups[owner[id(item.record)]].append(u)

        def describe(i: int) -> str:
            return _describe(rollouts, i)

        def run_answer(units: list[int]) -> None:
            answer([items[u] for u in units], self.reader, on_result=None)  # sets each item's response

        failed = _run_isolated("r1 reader", groups, run_answer, lambda u: items[u].response is not None, describe)
        to_judge = {i: [u for u in units if judged(items[u])] for i, units in groups.items() if i not in failed}

        def run_judge(units: list[int]) -> None:
            judge([items[u] for u in units], self.judge, self.scorer_config, on_result=None)  # sets each score

        failed |= _run_isolated(
            "r1 judge",
            {i: us for i, us in to_judge.items() if us},
            run_judge,
            lambda u: items[u].score is not None,
            describe,
        )
        kept = [items[u] for i, units in groups.items() if i not in failed for u in units]
        score_items([it for it in kept if not judged(it)])
        r1 = [0.0 if i in failed else _mean([items[u].score for u in groups[i]]) for i in range(len(rollouts))]
        return r1, failed

    # -- r4 --------------------------------------------------------------------------------------

    def content_scores(self, rollouts: Sequence[Rollout]) -> tuple[list[list[list[float]]], set[int]]:
        """Per rollout, per step, the scores that count in r4; and the rollouts whose judge failed."""
        prompt = content_judge_prompt()
        verdicts = _Verdicts()
        plans: list[list[list[float | int]]] = []  # a fixed score, or the index of a judge request
        for i, rollout in enumerate(rollouts):
            steps = []
            for calls in rollout.steps:
                step: list[float | int] = []
                for target in content_targets(calls, self.config):
                    if isinstance(target, tuple):
                        request = ReaderRequest(prompt.messages(*target), self.content_sampling)
                        step.append(verdicts.add(i, request))
                    elif target is not None:
                        step.append(float(target))
                steps.append(step)
            plans.append(steps)
        groups: dict[int, list[int]] = defaultdict(list)
        for u, i in enumerate(verdicts.owner):
            groups[i].append(u)

        def run(units: list[int]) -> None:
            def store(k: int, response: Any) -> None:
                verdicts.scores[units[k]] = parse_content_verdict(response.text)

            self.judge.generate([verdicts.requests[u] for u in units], on_result=store)

        failed = _run_isolated(
            "r4 judge",
            groups,
            run,
            lambda u: verdicts.scores[u] is not None,
            lambda i: _describe(rollouts, i),
        )
        scores = [[[_resolve(x, verdicts.scores) for x in step] for step in steps] for steps in plans]
        return scores, failed


def _describe(rollouts: Sequence[Rollout], i: int) -> str:
    return f"rollout {i} of {rollouts[i].task}/{rollouts[i].instance_id}"


def _resolve(x: float | int, judged: list[float | None]) -> float:
    """A fixed score as it is; a judge request's verdict, 0 when it never came back."""
    if isinstance(x, float):
        return x
    verdict = judged[x]
    return 0.0 if verdict is None else verdict
