"""`memalpha train dry-run`: the recipe up to the optimiser step, on CPU, in about a minute.

1. Compose the training config exactly as the launch scripts would (recipe + reward weights + the
   user's overrides), check every key against verl's schema and run verl's own validation; print it.
2. Export one instance of the built tasks to parquet and load it with verl's dataset class.
3. Roll it out `--n` times through verl's agent-loop worker, score it with verl's reward worker running
   our reward manager, sample it from verl's replay buffer and compute the advantages with verl's
   code (`local_rollout`), the policy, reader and judge behind OpenAI-compatible servers.
4. Print and save every row: its step, tool calls, reward and advantage.

What it leaves out: the log-probs, batch balancing and the update, which need the model on a GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from tasks.errors import TaskError
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
            raise TaskError(f"task {task!r} is not in suite {suite}")
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
            raise TaskError(f"{data_dir / name}: no instance {instance!r} in split {split}")
    if not rows:
        raise TaskError(f"{data_dir / name}: split {split} is empty")
    return training_row(rows[0], split, 0, manifest["sha256"])


def training_overrides(args: argparse.Namespace) -> list[str]:
    """The overrides a launch script would pass for these options (the config that gets printed)."""
    if args.weights and args.weights not in weight_options():
        raise TaskError(f"--weights {args.weights}: not one of {', '.join(weight_options())}")
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


def runtime_overrides(parquet: Path, n: int, out: Path) -> list[str]:
    """What the dry run changes for itself: one instance, `n` rollouts, one worker each, its own cache."""
    return [
        f"data.train_files={parquet}",
        f"data.val_files={parquet}",
        "data.train_batch_size=1",
        "data.dataloader_num_workers=0",
        f"actor_rollout_ref.rollout.n={n}",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "reward.num_workers=1",
        "memalpha.batch.window_s=0.5",
        f"memalpha.cache={out / 'reward_cache.sqlite'}",
    ]


def run_from_args(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise TaskError(f"--n must be at least 1, got {args.n}")
    if not args.data.is_dir():
        raise TaskError(f"--data {args.data}: no such folder")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    overrides = training_overrides(args)
    # checked: keys, verl's validation, our settings, the agent-loop file (the data is the dry run's own)
    cfg = compose_recipe(overrides, files=[AGENT_LOOP_FILE])
    text = OmegaConf.to_yaml(cfg)
    (out / "config.yaml").write_text(text, encoding="utf-8")
    print(text)
    print(
        f"config: every key checked against verl {_verl_version()}; verl's validation passed -> {out / 'config.yaml'}"
    )

    row = pick_instance(args.data, args.suite, args.task, args.instance)
    if args.max_chunks:
        row["chunks"] = json.dumps(json.loads(row["chunks"])[: args.max_chunks], ensure_ascii=False)
    parquet = out / "train.parquet"
    write_parquet([row], parquet)
    info = row["extra_info"]
    print(
        f"instance: {info['task']}/{info['instance_id']}, {len(json.loads(row['chunks']))} chunks, "
        f"{info['num_questions']} questions"
    )

    runtime = compose_recipe(overrides + runtime_overrides(parquet, args.n, out), check=False)
    policy = OpenAICompletionsPolicy(
        args.policy_base_url or args.reader_base_url,
        args.policy_model or runtime.memalpha.reader.model,
        str(runtime.actor_rollout_ref.model.path),
        max_tokens=runtime.data.max_response_length,
    )
    start = time.perf_counter()
    rows = rollout_batch(runtime, policy)
    seconds = time.perf_counter() - start
    _report(rows, out)
    print(f"dry run: {len(rows)} rows from {args.n} rollouts in {seconds:.0f} s -> {out / 'rows.jsonl'}")
    return 0


def _report(rows: list[Row], out: Path) -> None:
    with open(out / "rows.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.__dict__, ensure_ascii=False, default=str) + "\n")
    print(f"{'rollout':>7} {'step':>4} {'prompt':>6} {'resp':>5} {'calls':>5} {'R':>8} {'adv':>8}")
    for row in rows:
        print(
            f"{row.session:>7} {row.step:>4} {row.prompt_tokens:>6} {row.response_tokens:>5} "
            f"{len(row.extra_fields.get('calls', [])):>5} {row.score:>8.4f} {row.advantage:>8.4f}"
        )
    finals = {}
    for row in rows:
        finals[row.session] = row.extra_fields.get("reward_extra_info", {})
    for session, info in sorted(finals.items()):
        terms = ", ".join(f"{k} {info[k]:.4f}" for k in ("r1", "r3", "r2_mean", "r4_mean") if k in info)
        print(f"rollout {session}: {terms}")


def _verl_version() -> str:
    import verl

    return verl.__version__
