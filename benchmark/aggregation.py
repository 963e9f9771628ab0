"""The aggregation rule and its uncertainty: one implementation for `memalpha score` and the leaderboard.

Scores: question -> mean per instance -> a task's score is the mean of its instance means -> a
competency's score is the mean of its tasks' scores -> `mean_of_competencies` (the overall) is the
mean of the competency scores; `mean_of_tasks` is the plain mean of the task scores (the papers' Avg.
columns). Each average is so a fixed linear combination of task scores, sum over tasks of w_t x
score_t: in the overall a task weighs 1 / (competencies x tasks of its competency).

Standard errors, over instances: a task's SE is the sample standard deviation (n - 1 in the
denominator) of its instance means / sqrt(n). Instances of different tasks are independent, so an
average's SE is sqrt(sum of w_t^2 x SE_t^2). A task with fewer than two instances has no SE, and no
average that includes it has one.

Bootstrap intervals: each task's instance means are resampled with replacement, n of n, within the task
and independently of the other tasks (`scipy.stats.bootstrap` with one sample per task, unpaired,
`BOOTSTRAP.resamples` times, seeded); every resample gives task scores and, through the same weights,
every average; an interval is the central `BOOTSTRAP.confidence` share of those values (percentile
method). Tasks with fewer than two instances are left out, as for the SE.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tasks.schema import COMPETENCIES

DECIMALS = 6  # scores.json's rounding of every score, SE and interval bound
RULES = ("mean_of_competencies", "mean_of_tasks")
SE_RULE = (
    "over instances: a task's SE is the sample standard deviation (n - 1) of its instance means / sqrt(n); "
    "a competency's, the overall's and every average's follow through the means of means, tasks "
    "independent: sqrt(sum of w^2 SE^2) with w each task's weight in the average; none where a task has "
    "fewer than 2 instances"
)


@dataclass(frozen=True)
class Bootstrap:
    """The seeded percentile bootstrap of the intervals (settings recorded in scores.json)."""

    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0
    batch: int = 250  # resamples drawn at a time: bounds memory; part of the random stream, so fixed

    def describe(self) -> dict[str, Any]:
        import scipy  # here, not at the top: `memalpha --help` must not load scipy (tests/test_journey.py)

        return {
            "method": "percentile bootstrap: each task's instance means resampled with replacement, n of n, "
            "within the task; task scores and every average recomputed per resample",
            "resamples": self.resamples,
            "confidence": self.confidence,
            "seed": self.seed,
            "implementation": f"scipy.stats.bootstrap (scipy {scipy.__version__}), batch {self.batch}",
        }


BOOTSTRAP = Bootstrap()


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


def competency_order(competencies: Sequence[str] | set[str]) -> list[str]:
    """AR, TTL, LRU, CR first (the fixed order), anything else after, sorted."""
    present = set(competencies)
    return [c for c in COMPETENCIES if c in present] + sorted(present - set(COMPETENCIES))


def _by_competency(tasks: Iterable[str], competency_of: Mapping[str, str]) -> dict[str, list[str]]:
    """The tasks of each competency, in the order given."""
    by_comp: dict[str, list[str]] = defaultdict(list)
    for task in tasks:
        by_comp[competency_of[task]].append(task)
    return by_comp


def means(
    task_scores: Mapping[str, float], competency_of: Mapping[str, str], rules: Sequence[str] = RULES
) -> tuple[dict[str, float], dict[str, float]]:
    """(competency means, the averages named in `rules`) of task scores by the rule; rounded as scores.json
    rounds (a competency mean first, the overall from the rounded competency means)."""
    by_comp = _by_competency(task_scores, competency_of)
    comps = {c: _round(statistics.fmean(task_scores[t] for t in by_comp[c])) for c in competency_order(by_comp)}
    values = {
        "mean_of_competencies": _round(statistics.fmean(comps.values())) if comps else 0.0,
        "mean_of_tasks": _round(statistics.fmean(task_scores.values())) if task_scores else 0.0,
    }
    return comps, {rule: values[rule] for rule in rules}


def weights(
    tasks: Sequence[str], competency_of: Mapping[str, str], rules: Sequence[str] = RULES
) -> dict[str, dict[str, dict[str, float]]]:
    """Each average's weight on each task: {"tasks": {t: {t: 1}}, "competencies": {c: ...}, "averages":
    {rule: ...}}; the means above are exactly these sums."""
    by_comp = _by_competency(tasks, competency_of)
    comps = {c: {t: 1 / len(by_comp[c]) for t in by_comp[c]} for c in competency_order(by_comp)}
    rule_weights = {
        "mean_of_competencies": {t: w / len(comps) for c in comps for t, w in comps[c].items()},
        "mean_of_tasks": {t: 1 / len(tasks) for t in tasks},
    }
    return {
        "tasks": {t: {t: 1.0} for t in tasks},
        "competencies": comps,
        "averages": {rule: rule_weights[rule] for rule in rules},
    }


def task_standard_error(instance_means: Sequence[float]) -> float | None:
    """SD (n - 1) of the instance means / sqrt(n); None below two instances."""
    if len(instance_means) < 2:
        return None
    return statistics.stdev(instance_means) / math.sqrt(len(instance_means))


def propagated_se(weight: Mapping[str, float], task_se: Mapping[str, float | None]) -> float | None:
    """sqrt(sum w^2 SE^2) over the tasks of an average; None if any of them has no SE."""
    ses = [task_se.get(t) for t in weight]
    if not ses or any(se is None for se in ses):
        return None
    return math.sqrt(sum(w * w * se * se for w, se in zip(weight.values(), ses, strict=True)))


def bootstrap_intervals(
    instance_means: Mapping[str, Sequence[float]],
    targets: Sequence[Mapping[str, float]],
    settings: Bootstrap = BOOTSTRAP,
) -> list[tuple[float, float] | None]:
    """The percentile interval of each target (a task-weight map, see `weights`) over resamples of each
    task's instance means; None for a target with a task of fewer than two instances."""
    import numpy as np  # here, not at the top: the CLI's start-up imports this module
    from scipy import stats

    usable = sorted(t for t, values in instance_means.items() if len(values) >= 2)
    kept = [i for i, w in enumerate(targets) if w and set(w) <= set(usable)]
    out: list[tuple[float, float] | None] = [None] * len(targets)
    if not kept:
        return out
    matrix = np.array([[targets[i].get(t, 0.0) for t in usable] for i in kept])

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        task_means = np.stack([s.mean(axis=axis) for s in samples])  # tasks x resamples
        return np.tensordot(matrix, task_means, axes=1)

    result = stats.bootstrap(
        tuple(np.asarray(instance_means[t], dtype=float) for t in usable),
        statistic,
        n_resamples=settings.resamples,
        batch=settings.batch,
        vectorized=True,
        paired=False,
        confidence_level=settings.confidence,
        method="percentile",
        rng=np.random.default_rng(settings.seed),
    )
    low, high = np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)
    for row, i in enumerate(kept):
        out[i] = (_round(low[row]), _round(high[row]))
    return out


def estimate(se: float | None, ci: tuple[float, float] | None) -> dict[str, Any]:
    return {"se": None if se is None else _round(se), "ci": None if ci is None else list(ci)}


def uncertainty(
    task_se: Mapping[str, float | None],
    competency_of: Mapping[str, str],
    rules: Sequence[str],
    instance_means: Mapping[str, Sequence[float]] | None = None,
    settings: Bootstrap = BOOTSTRAP,
) -> dict[str, Any]:
    """scores.json's `uncertainty`: an `{"se", "ci"}` pair for every task, competency, average and the
    overall (the first rule), mirroring the scores. Without `instance_means` (numbers reported by a paper:
    no instances) there are no intervals."""
    tasks = list(task_se)
    table = weights(tasks, competency_of, rules)
    targets = [(section, key, w) for section, part in table.items() for key, w in part.items()]
    if instance_means is None:
        intervals: list[tuple[float, float] | None] = [None] * len(targets)
    else:
        intervals = bootstrap_intervals(instance_means, [w for _, _, w in targets], settings)
    out: dict[str, Any] = {
        "standard_error": SE_RULE,
        "interval": settings.describe() if instance_means is not None else None,
        "tasks": {},
        "competencies": {},
        "averages": {},
    }
    for (section, key, w), ci in zip(targets, intervals, strict=True):
        out[section][key] = estimate(propagated_se(w, task_se), ci)
    out["overall"] = out["averages"][rules[0]] if rules else estimate(None, None)
    return out
