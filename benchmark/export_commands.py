"""`memalpha export`: tasks written out for other evaluation tools (for now lm-eval)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasks.argtypes import json_object, positive_int

from .lmeval_export import DEFAULT_BUDGET, DEFAULT_MAX_TOKENS


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("export", help="export tasks for other evaluation tools")
    formats = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    q = formats.add_parser(
        "lm-eval",
        help="the long-context baseline as lm-eval tasks",
        description="Write lm-eval tasks (YAML, JSON-lines docs, utils.py, group YAMLs) holding, for every "
        "question, the reader prompt of the long-context baseline: the tail of the input that fits the "
        "budget, then the question. `lm_eval --include_path OUT --tasks memalpha_<suite>` then scores any "
        "model on the same questions and metrics; the suite row's `overall` is our overall score. LLM-judged "
        "tasks are skipped.",
    )
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", help="a suite: its tasks at its splits")
    which.add_argument("--tasks", nargs="+", metavar="NAME", help="task or suite names")
    q.add_argument("--split", help="split to export (default: the suite's; for --tasks: test, else validation)")
    q.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the lm-eval tasks")
    q.add_argument(
        "--data", type=Path, help="folder of built tasks; default as `memalpha run` (built from the hub on first use)"
    )
    q.add_argument("--limit", type=positive_int, help="at most N instances per task")
    q.add_argument("--tokenizer", default="qwen3", help="token counter for the budget (default qwen3, as the scorer)")
    q.add_argument(
        "--budget",
        type=positive_int,
        default=DEFAULT_BUDGET,
        help=f"reader prompt budget in tokens (default {DEFAULT_BUDGET})",
    )
    q.add_argument(
        "--memory-tokens", type=positive_int, help="size of the long-context memory (default: the agent's, 28000)"
    )
    q.add_argument(
        "--max-tokens",
        type=positive_int,
        default=DEFAULT_MAX_TOKENS,
        help=f"answer length limit (default {DEFAULT_MAX_TOKENS})",
    )
    q.add_argument(
        "--chat-template-kwargs",
        type=json_object,
        metavar="JSON",
        help="chat template switches sent with every request by lm-eval's API models, e.g. "
        "'{\"enable_thinking\": false}' for Qwen3 with thinking off (as the scorer's reader) on vLLM, SGLang "
        "or transformers serve; the OpenAI API rejects the field, so the default sends none",
    )
    q.add_argument("--quiet", action="store_true", help="no build progress")
    q.set_defaults(func=cmd_export_lmeval)


def cmd_export_lmeval(args: argparse.Namespace) -> int:
    from . import journey
    from .lmeval_export import ExportSettings, export_lmeval

    if args.data is None:  # build what is missing, as `memalpha run` does
        job = journey.plan(tasks=args.tasks, suite=args.suite, split=args.split, tokenizer=args.tokenizer)
        journey.require_builder_llm(job, available=False)
        journey.build_missing(job, None, show_progress=not args.quiet)
        data_dir, members = job.data_dir, job.members
    else:  # LLM-judged tasks are skipped, so they need not be built
        data_dir, members = args.data, journey.resolve_members(args.tasks, args.suite, args.split)
    settings = ExportSettings(
        args.tokenizer, args.budget, args.memory_tokens, args.max_tokens, args.limit, args.chat_template_kwargs
    )
    result = export_lmeval(data_dir, members, args.out, group=args.suite or "tasks", settings=settings)
    for task, why in result.skipped.items():
        print(f"skipped {task}: {why}", file=sys.stderr)
    for name, docs in result.tasks.items():
        print(f"{name}: {docs} questions")
    print(
        f"\nlm-eval tasks in {result.out_dir} (group {result.group}); run: lm_eval --include_path {result.out_dir} "
        f"--tasks {result.group} ... (see {result.out_dir / 'README.md'})",
        file=sys.stderr,
    )
    return 0
