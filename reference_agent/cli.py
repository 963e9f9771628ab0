"""`memalpha train`: the verl GRPO recipe's commands.

- `train prepare` (main environment): built tasks → verl parquet;
- `train dry-run` (the training environment, .venv-train): the whole recipe on CPU up to the
  optimiser step, against OpenAI-compatible servers;
- `train step-check` (the training environment): one optimiser step of the recipe's actor on the
  dry run's rows, through verl's own FSDP2 engine on CPU.

verl is imported only when a command that needs it runs.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from tasks.argtypes import non_negative_int, positive_int, positive_number
from tasks.errors import TaskError

SETUP_HINT = (
    "verl is not installed in this environment; the training stack has its own: run "
    "reference_agent/scripts/setup_train_env.sh, then .venv-train/bin/memalpha train dry-run ... "
    "(or reference_agent/scripts/dry_run.sh, which does both)"
)


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="retrain the reference agent with GRPO on verl (prepare data, dry-run the recipe)",
        description="The verl GRPO recipe of the reference agent; see reference_agent/README.md.",
    )
    sub = train.add_subparsers(dest="train_command", required=True, metavar="COMMAND")
    _register_prepare(sub)
    _register_dry_run(sub)
    _register_step_check(sub)


def _register_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="export built tasks as verl parquet (train.parquet, val.parquet, manifest.json)",
        description="One parquet row per instance, with the columns verl's RLHFDataset and the recipe read.",
    )
    p.add_argument("--data", type=Path, required=True, help="folder of built tasks (`memalpha tasks build --out`)")
    p.add_argument("--out", type=Path, required=True, help="folder to write the parquet files to")
    p.add_argument("--suite", default="memalpha-train", help="training suite (default memalpha-train)")
    p.add_argument(
        "--val-suite",
        default="memalpha-val",
        help="validation suite (default memalpha-val); `none` writes no val.parquet",
    )
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks of the suites")
    p.add_argument("--limit", type=positive_int, help="at most N instances per task and split (for smoke runs)")
    p.set_defaults(func=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    from .training_data import prepare

    summary = prepare(
        args.data,
        args.out,
        suite=args.suite,
        val_suite=None if args.val_suite == "none" else args.val_suite,
        tasks=args.tasks,
        limit=args.limit,
    )
    rows = ", ".join(f"{name}: {n} rows" for name, n in summary.rows.items())
    print(f"wrote {summary.out_dir} ({rows}; tasks {', '.join(summary.tasks)})")
    return 0


def _register_dry_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dry-run",
        help="compose and check the verl config, then run one rollout and its reward on CPU",
        description=(
            "Composes the recipe's full verl config (every key checked against verl's schema) and prints it, "
            "then runs one instance through verl's own agent-loop worker, reward worker, replay buffer and "
            "advantage code on a local Ray cluster, with the policy, reader and judge behind "
            "OpenAI-compatible servers: everything but the log-probs and the optimiser step. Generation is "
            "capped short by default (see the caps below). Prints a summary table first, a line per rollout step, "
            "then the rows with rewards and advantages; writes the full config to OUT/config.yaml and the rows to "
            "OUT/rows.jsonl (the input of `memalpha train step-check`). Needs the training environment (.venv-train)."
        ),
    )
    p.add_argument("--data", type=Path, required=True, help="folder of built tasks")
    p.add_argument("--suite", default="memalpha-train", help="suite to take the instance from (default memalpha-train)")
    p.add_argument("--task", help="task of the instance (default: the suite's first task built under --data)")
    p.add_argument("--instance", help="instance id (default: the task's first instance in the suite's split)")
    p.add_argument("--model", help="the policy's model folder or hub id, for its tokenizer (default: the recipe's)")
    g = p.add_argument_group("servers (OpenAI-compatible)")
    g.add_argument("--reader-base-url", required=True, help="reader server, e.g. http://127.0.0.1:8001/v1")
    g.add_argument("--reader-model", help="reader model name (default: the recipe's, Qwen/Qwen3-32B)")
    g.add_argument("--judge-base-url", help="judge server (default: the reader's)")
    g.add_argument("--judge-model", help="judge model (default: the reader model)")
    g.add_argument("--policy-base-url", help="server that plays the policy, /v1/completions (default: the reader's)")
    g.add_argument("--policy-model", help="model name the policy server serves (default: the reader model)")
    p.add_argument("--tokenizer", help="token counter for the rewards (default: the recipe's, qwen3)")
    p.add_argument(
        "--weights",
        help="reward weights of Table 4, e.g. beta0.2_gamma0.1 (default: the recipe's, beta0.05_gamma0.1)",
    )
    p.add_argument("--n", type=positive_int, default=2, help="rollouts of the instance, one GRPO group (default 2)")
    c = p.add_argument_group("caps, so that a small server on a CPU finishes in minutes (0 for chunks/questions: all)")
    c.add_argument("--max-chunks", type=non_negative_int, default=3, help="feed the first N chunks (default 3)")
    c.add_argument(
        "--max-questions", type=non_negative_int, default=10, help="score r1 on the first N questions (default 10)"
    )
    c.add_argument(
        "--max-tokens", type=positive_int, default=256, help="policy tokens per chunk (default 256; training 2048)"
    )
    c.add_argument("--reader-max-tokens", type=positive_int, default=64, help="tokens per reader answer (default 64)")
    c.add_argument("--judge-max-tokens", type=positive_int, default=128, help="tokens per judge verdict (default 128)")
    p.add_argument("--out", type=Path, default=Path("runs/train-dry-run"), help="where to write the report")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="further Hydra overrides of the recipe")
    p.set_defaults(func=_dry_run)


def _dry_run(args: argparse.Namespace) -> int:
    _need_verl()
    from .verl_recipe.dry_run import run_from_args

    return run_from_args(args)


def _register_step_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "step-check",
        help="one optimiser step of the recipe's actor on the dry run's rows, through verl's FSDP2 engine on CPU",
        description=(
            "Builds verl's own FSDP2 actor engine (FSDPEngineWithLMHead) from the recipe's actor settings on CPU, "
            "computes the rows' log-probs, runs one update with verl's ppo_loss and computes them again. Checks: "
            "the engine's log-probs against a plain transformers forward, the first-step loss against the value "
            "computed by hand (ratio 1, KL 0: minus the row-weighted advantage), and that the update raised the "
            "advantage-weighted log-probability; prints how each row moved. Exit status 1 when a check fails. "
            "Needs the training environment (.venv-train); meant for small models."
        ),
    )
    p.add_argument("--rows", type=Path, required=True, help="rows.jsonl written by `memalpha train dry-run`")
    p.add_argument("--model", help="the policy the rows were tokenised for, a folder or hub id (default: the recipe's)")
    p.add_argument("--lr", type=positive_number, help="learning rate of the step (default: the recipe's, 1e-6)")
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="MODE",
        help="also run the step with this loss_agg_mode, for comparison (e.g. token-mean); repeatable",
    )
    p.add_argument("--json", type=Path, help="write the reports to this JSON file too")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides of the recipe config")
    p.set_defaults(func=_step_check)


def _step_check(args: argparse.Namespace) -> int:
    _need_verl()
    from .verl_recipe.step_check import run_from_args

    return run_from_args(args)


def _need_verl() -> None:
    if importlib.util.find_spec("verl") is None:
        raise TaskError(SETUP_HINT)
