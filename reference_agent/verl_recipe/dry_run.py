"""`memalpha train dry-run`: the recipe up to the optimiser step, on CPU, in minutes against a small server.

1. Compose the training config exactly as the launch scripts would (recipe + reward weights + the
   user's overrides), check every key against verl's schema and run verl's own validation; write it
   to OUT/config.yaml and print a summary table of what matters.
2. Export one instance of the built tasks to parquet (its first `--max-chunks` chunks and
   `--max-questions` questions) and load it with verl's dataset class.
3. Roll it out `--n` times through verl's agent-loop worker, score it with verl's reward worker running
   our reward manager, sample it from verl's replay buffer and compute the advantages with verl's
   code (`local_rollout`), the policy, reader and judge behind OpenAI-compatible servers, every
   generation capped short (`--max-tokens`, `--reader-max-tokens`, `--judge-max-tokens`). A line per
   rollout step shows the progress.
4. Print the rows (step, tool calls, reward, advantage), the reward terms per rollout and the metrics
   training would log for this step; save the rows, with their token ids, to OUT/rows.jsonl
   (`memalpha train step-check` runs one update on them).

What it leaves out: the log-probs, batch balancing and the update on the GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tasks.atomic import replace_file
from tasks.errors import TaskError, UsageError
from tasks.manifest import find_task_dir, load_built
from tasks.registry import get_suite

from ..training_data import training_row, write_parquet
from .compose import AGENT_LOOP_FILE, RECIPE_CONFIG_DIR, WEIGHTS_GROUP, compose_recipe, weight_options
from .local_rollout import Row, rollout_batch
from .openai_policy import OpenAICompletionsPolicy


def pick_instance(data_dir: Path, suite: str, task: str | None, instance: str | None) -> dict[str, Any]:
    """The verl row of the chosen instance (default: the first of the suite's first task built)."""
    members = list(get_suite(suite).members)
    if task is not None:
        members = [(t, s) for t, s in members if t == task]
        if not members:
            raise UsageError(f"task {task!r} is not in suite {suite}")
    else:
        built = [(t, s) for t, s in members if (data_dir / t / "manifest.json").is_file()]
        if not built:
            raise TaskError(
                f"{data_dir}: none of suite {suite}'s tasks is built there ({', '.join(t for t, _ in members)})"
            )
        members = built[:1]
    name, split = members[0]
    data, manifest = load_built(find_task_dir(data_dir, name))
    rows = data[split].to_list()
    if instance is not None:
        rows = [r for r in rows if r["instance_id"] == instance]
        if not rows:
            raise UsageError(f"{data_dir / name}: no instance {instance!r} in split {split}")
    if not rows:
        raise TaskError(f"{data_dir / name}: split {split} is empty")
    return training_row(rows[0], split, 0, manifest["sha256"])


def training_overrides(args: argparse.Namespace) -> list[str]:
    """The overrides a launch script would pass for these options (the config that gets printed)."""
    if args.weights and args.weights not in weight_options():
        raise UsageError(f"--weights {args.weights}: not one of {', '.join(weight_options())}")
    overrides = [f"{WEIGHTS_GROUP}={args.weights}"] if args.weights else []
    overrides.append(f"{AGENT_LOOP_FILE}={RECIPE_CONFIG_DIR / 'agent_loop.yaml'}")
    if args.model:
        overrides.append(f"actor_rollout_ref.model.path={args.model}")
    overrides.append(f"memalpha.reader.base_url={args.reader_base_url}")
    for option, key in (
        ("reader_model", "memalpha.reader.model"),
        ("judge_base_url", "memalpha.judge.base_url"),
        ("judge_model", "memalpha.judge.model"),
        ("tokenizer", "memalpha.tokenizer"),
    ):
        if getattr(args, option):
            overrides.append(f"{key}={getattr(args, option)}")
    return overrides + list(args.overrides)


def runtime_overrides(parquet: Path, args: argparse.Namespace, out: Path) -> list[str]:
    """What the dry run changes for itself: one instance, `--n` rollouts, one worker each, its own
    cache, short reader and judge replies, a progress line per rollout step."""
    return [
        f"data.train_files={parquet}",
        f"data.val_files={parquet}",
        "data.train_batch_size=1",
        "data.dataloader_num_workers=0",
        f"actor_rollout_ref.rollout.n={args.n}",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "reward.num_workers=1",
        "memalpha.batch.window_s=0.5",
        f"memalpha.cache={out / 'reward_cache.sqlite'}",
        f"memalpha.scorer.max_tokens={args.reader_max_tokens}",
        f"memalpha.judge.max_tokens={args.judge_max_tokens}",
        "memalpha.progress=true",
    ]


def run_from_args(args: argparse.Namespace) -> int:
    """The dry run of `memalpha-agent train dry-run` (its counts are positive: the parser checks them)."""
    if not args.data.is_dir():
        raise UsageError(f"--data {args.data}: no such folder")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    overrides = training_overrides(args)
    # checked: keys, verl's validation, our settings, the agent-loop file (the data is the dry run's own)
    cfg = compose_recipe(overrides, files=[AGENT_LOOP_FILE])
    replace_file(out / "config.yaml", OmegaConf.to_yaml(cfg))  # what training would run
    args.recipe_n = cfg.actor_rollout_ref.rollout.n

    row = pick_instance(args.data, args.suite, args.task, args.instance)
    used = shorten(row, args.max_chunks, args.max_questions)
    parquet = out / "train.parquet"
    write_parquet([row], parquet)

    runtime = compose_recipe(overrides + runtime_overrides(parquet, args, out), check=False)
    print(summary_table(runtime, args, row, used))
    print(
        f"config: every key checked against verl {_verl_version()}, verl's validation passed; "
        f"in full: {out / 'config.yaml'}"
    )
    policy = OpenAICompletionsPolicy(
        args.policy_base_url or args.reader_base_url,
        args.policy_model or runtime.memalpha.reader.model,
        str(runtime.actor_rollout_ref.model.path),
        max_tokens=args.max_tokens,
    )
    start = time.perf_counter()
    rows = rollout_batch(runtime, policy)
    seconds = time.perf_counter() - start
    _report(rows, out)
    print(f"dry run: {len(rows)} rows from {args.n} rollouts in {seconds:.0f} s -> {out / 'rows.jsonl'}")
    return 0


def shorten(row: dict[str, Any], max_chunks: int | None, max_questions: int | None) -> tuple[int, int]:
    """Keep the instance's first chunks and questions (in place); returns how many of each it had."""
    chunks, questions = json.loads(row["chunks"]), json.loads(row["questions"])
    row["chunks"] = json.dumps(chunks[:max_chunks] if max_chunks else chunks, ensure_ascii=False)
    row["questions"] = json.dumps(questions[:max_questions] if max_questions else questions, ensure_ascii=False)
    info = row["extra_info"]
    info["num_chunks"] = len(json.loads(row["chunks"]))
    info["num_questions"] = len(json.loads(row["questions"]))
    return len(chunks), len(questions)


def summary_table(cfg: DictConfig, args: argparse.Namespace, row: dict[str, Any], used: tuple[int, int]) -> str:
    """What the dry run runs with, and what training would (the recipe's values beside the caps)."""
    from tabulate import tabulate

    actor, rollout, settings = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout, cfg.memalpha
    info = row["extra_info"]
    judge = settings.judge.base_url or settings.reader.base_url
    table = [
        ["instance", f"{info['task']}/{info['instance_id']}"],
        ["chunks, questions", f"{info['num_chunks']} of {used[0]}, {info['num_questions']} of {used[1]}"],
        ["rollouts (GRPO group)", f"{args.n} (training: {args.recipe_n})"],
        ["policy", f"{args.policy_base_url or args.reader_base_url} (tokenizer {cfg.actor_rollout_ref.model.path})"],
        ["policy tokens per chunk", f"<= {args.max_tokens} (training: {cfg.data.max_response_length})"],
        ["reader", f"{settings.reader.model} at {settings.reader.base_url}, <= {settings.scorer.max_tokens} tokens"],
        ["judge", f"{settings.judge.model or settings.reader.model} at {judge}, <= {settings.judge.max_tokens} tokens"],
        ["reward", f"r1 + {settings.reward.beta}*r3 + r2 + {settings.reward.gamma}*r4, tokens: {settings.tokenizer}"],
        ["advantage", f"{cfg.algorithm.adv_estimator}"],
        [
            "actor loss",
            f"{actor.loss_agg_mode}, clip {actor.clip_ratio}, KL {actor.kl_loss_coef if actor.use_kl_loss else 'off'}",
        ],
        ["optimiser", f"lr {actor.optim.lr}, {actor.ppo_mini_batch_size} x {args.recipe_n} rows per step"],
        ["rollout prompt limit", f"{rollout.prompt_length} tokens"],
    ]
    return tabulate(table, tablefmt="plain")


def write_rows(rows: list[Row], path: Path) -> None:
    """rows.jsonl: one training row per line, token ids included (what `train step-check` reads)."""
    replace_file(path, (json.dumps(asdict(row), ensure_ascii=False, default=str) + "\n" for row in rows))


def _report(rows: list[Row], out: Path) -> None:
    from tabulate import tabulate

    from .trainer import reward_metrics

    write_rows(rows, out / "rows.jsonl")
    table = [
        [
            r.session,
            r.step,
            r.prompt_tokens,
            r.response_tokens,
            len(r.extra_fields.get("calls", [])),
            r.score,
            r.advantage,
        ]
        for r in rows
    ]
    headers = ["rollout", "step", "prompt", "response", "calls", "R", "advantage"]
    print(tabulate(table, headers=headers, floatfmt=".4f"))
    finals = {r.session: r.extra_fields.get("reward_extra_info", {}) for r in rows}
    terms = ("r1", "r3", "r2_mean", "r4_mean", "memory_tokens")
    print(
        tabulate(
            [[s, *(info.get(k) for k in terms)] for s, info in sorted(finals.items())], headers=["rollout", *terms]
        )
    )
    metrics = reward_metrics([r.key for r in rows], [r.extra_fields for r in rows])
    print("training would log: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


def _verl_version() -> str:
    import verl

    return verl.__version__
