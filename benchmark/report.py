"""`report.md`: the human-readable summary of a scored run (tables via tabulate)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from tasks.strict_json import load_file

from .timings import peak_memory_bytes

if TYPE_CHECKING:
    from .readers.base import Reader
    from .scoring import ScoreResult


def interval_text(estimate: Mapping[str, Any]) -> str:
    """A score's interval as '[low, high]', or '' where it has none (the report and the site show it so)."""
    ci = estimate.get("ci")
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _spread(estimate: dict | None) -> list[str]:
    """The SE and interval cells of one score ("" where there is none, as in files of an older format)."""
    estimate = estimate or {}
    se = estimate.get("se")
    return ["" if se is None else f"{se:.3f}", interval_text(estimate)]


def summary_table(scores: dict) -> str:
    """One row per task plus competency and overall rows, each with its standard error and bootstrap
    interval: the table `score` prints too."""
    spread = scores.get("uncertainty") or {}
    level = (spread.get("interval") or {}).get("confidence", 0.95)
    rows = [
        [
            name,
            t["competency"],
            t["metric"],
            f"{t['score']:.3f}",
            *_spread(spread.get("tasks", {}).get(name)),
            t["instances"],
            t["questions"],
            f"{t['memory_tokens_mean']:,.0f}",
        ]
        for name, t in scores["tasks"].items()
    ]
    rows += [
        [f"[{c}]", c, "mean of tasks", f"{v:.3f}", *_spread(spread.get("competencies", {}).get(c)), "", "", ""]
        for c, v in scores["competencies"].items()
    ]
    rows.append(
        ["OVERALL", "", "mean of competencies", f"{scores['overall']:.3f}", *_spread(spread.get("overall")), "", "", ""]
    )
    plain = scores.get("averages", {}).get("mean_of_tasks")
    if plain is not None and plain != scores["overall"]:
        estimate = spread.get("averages", {}).get("mean_of_tasks")
        rows.append(["(paper's Avg.)", "", "plain mean of tasks", f"{plain:.3f}", *_spread(estimate), "", "", ""])
    return tabulate(
        rows,
        headers=[
            "task",
            "comp.",
            "metric",
            "score",
            "SE",
            f"{level:.0%} interval",
            "instances",
            "questions",
            "memory tokens",
        ],
        tablefmt="github",
    )


def uncertainty_note(spread: dict | None) -> list[str]:
    """How the SE and interval columns were computed, as report lines."""
    if not spread:
        return ["Standard errors and intervals: none (scores written before they were recorded).", ""]
    lines = [f"Standard errors: {spread['standard_error']}."]
    interval = spread.get("interval")
    if interval:
        lines.append(
            f"Intervals: {interval['method']}; {interval['resamples']:,} resamples, seed {interval['seed']}, "
            f"{interval['confidence']:.0%} ({interval['implementation']})."
        )
    return [*lines, ""]


def timings_table(result: ScoreResult) -> str:
    rows = [[name, f"{wall:,.2f}", f"{cpu:,.2f}"] for name, wall, cpu in result.timings.rows()]
    return tabulate(rows, headers=["phase", "wall", "CPU"], tablefmt="github", disable_numparse=True)


def run_provenance(run_dir: Path) -> dict[str, Any]:
    """What was scored: the sha256 of memories.jsonl and, when `memalpha run` wrote it, the agent with
    its options as the run's config.json records them (None for a memories file made elsewhere)."""
    from .running import CONFIG, MEMORIES

    digest = hashlib.sha256()
    with open(run_dir / MEMORIES, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    config = run_dir / CONFIG
    recorded = load_file(config, "run config") if config.is_file() else None
    agent = recorded.get("agent") if isinstance(recorded, dict) else None
    return {"memories_sha256": digest.hexdigest(), "agent": agent}


def _agent_line(agent: dict[str, Any] | None) -> str:
    if agent is None:
        return "not recorded (the memories were not written by `memalpha run`)"
    options = ", ".join(f"{k}={v}" for k, v in sorted(agent.get("options", {}).items()) if v is not None)
    return f"{agent.get('name')}" + (f" ({options})" if options else "")


def report_text(result: ScoreResult, reader: Reader) -> str:
    scores = result.scores
    prompt_tokens = sum(it.response.prompt_tokens for it in result.items)
    completion_tokens = sum(it.response.completion_tokens for it in result.items)
    cached = sum(it.response.cached for it in result.items)
    scorer = scores["scorer"]
    run = scores["run"]
    limit = scorer.get("questions_per_instance")
    lines = [
        "# Scoring report",
        "",
        *(
            [f"**Smoke run: at most {limit} question(s) per instance were asked; not a full score.**", ""]
            if limit
            else []
        ),
        f"Scorer profile: {scorer['profile']} ({scorer['rules']['description']}).",
        "",
        summary_table(scores),
        "",
        f"Aggregation: {scorer['aggregation']}.",
        "",
        *uncertainty_note(scores.get("uncertainty")),
        "## Warnings",
        "",
        *([f"- {w}" for w in scores.get("warnings", [])] or ["- none"]),
        "",
        "## Memories",
        "",
        f"- agent: {_agent_line(run['agent'])}",
        f"- memories.jsonl sha256: {run['memories_sha256']}",
        "",
        "## Reader",
        "",
        f"- backend/model: {reader.describe()}",
        f"- questions answered: {len(result.items)} ({cached} from the response cache)",
        f"- prompt tokens: {prompt_tokens:,}; completion tokens: {completion_tokens:,}",
        f"- prompt template: {scorer['template']['name']} sha256 {scorer['template']['sha256']}",
        f"- questions whose core memory was cut to fit the budget: {sum(it.core_truncated for it in result.items)}",
        "",
        "## Timings",
        "",
        "Where this run's time went (seconds; CPU: of this process, all its threads). Prompts are built a window "
        "of questions at a time while the reader runs; their time counts under retrieval and prompts.",
        "",
        timings_table(result),
        "",
        f"Peak memory of the process: {peak_memory_bytes() / 2**20:,.0f} MB.",
        "",
        "## Task data",
        "",
        tabulate(
            [[t, scores["tasks"][t].get("origin"), h] for t, h in scores["task_hashes"].items()],
            headers=["task", "built from", "sha256"],
            tablefmt="github",
        ),
        "",
        "## Instances without a memory",
        "",
        "The scorer scores the instances in `memories.jsonl`; these instances of the same tasks and splits "
        "have none (completeness is checked by the leaderboard, not here).",
        "",
    ]
    missing = [(t, i) for t, v in scores["tasks"].items() for i in v["missing_instances"]]
    lines += [f"- {t}: {i}" for t, i in missing] or ["- none"]
    return "\n".join(lines) + "\n"
