"""`memalpha score`: score any run folder holding a `memories.jsonl`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasks.tokenization import get_counter

from .readers.base import SamplingParams

DEFAULT_MODEL = "Qwen/Qwen3-32B"


def add_reader_options(p: argparse.ArgumentParser) -> None:
    """Reader and judge options, shared by every command that scores (score, eval, leaderboard add)."""
    g = p.add_argument_group("reader (the fixed answering model)")
    g.add_argument(
        "--reader",
        choices=("openai", "vllm", "hf"),
        default="vllm",
        help="backend: an OpenAI-compatible server, in-process vLLM (default), or transformers",
    )
    g.add_argument("--model", default=DEFAULT_MODEL, help=f"reader model (default {DEFAULT_MODEL})")
    g.add_argument("--base-url", help="server URL for --reader openai, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--concurrency", type=int, default=16, help="parallel requests for --reader openai (default 16)")
    g.add_argument("--timeout", type=float, default=300.0, help="seconds per request before a retry (default 300)")
    g.add_argument("--max-retries", type=int, default=5, help="retries per request on 429/5xx/timeouts (default 5)")
    g.add_argument("--max-tokens", type=int, default=2048, help="answer length limit (default 2048)")
    g.add_argument("--top-k", type=int, default=20, help="entries retrieved per memory type (default 20)")
    g.add_argument("--budget", type=int, default=30_000, help="reader prompt budget in tokens (default 30000)")
    g.add_argument(
        "--tokenizer",
        default="qwen3",
        help="token counter for the budget and memory sizes (default qwen3; `simple` works offline)",
    )
    g.add_argument("--cache", type=Path, help="response cache file (default RUN/.cache/responses.sqlite)")
    j = p.add_argument_group("judge (for LLM-judged tasks; defaults to the reader)")
    j.add_argument("--judge-reader", choices=("openai", "vllm", "hf"))
    j.add_argument("--judge-model")
    j.add_argument("--judge-base-url")


def readers_from_args(args: argparse.Namespace, run_dir: Path):
    """The cached reader and judge the options describe."""
    from .cache import CachedReader, ResponseCache
    from .readers import make_reader

    cache = ResponseCache(args.cache or run_dir / ".cache" / "responses.sqlite")
    reader = make_reader(
        args.reader,
        args.model,
        base_url=args.base_url,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )
    judge = None
    if args.judge_reader or args.judge_model or args.judge_base_url:
        judge = make_reader(
            args.judge_reader or args.reader,
            args.judge_model or args.model,
            base_url=args.judge_base_url or args.base_url,
            concurrency=args.concurrency,
            timeout=args.timeout,
            max_retries=args.max_retries,
        )
    return CachedReader(reader, cache), CachedReader(judge, cache) if judge else None


def scorer_config(args: argparse.Namespace):
    from .scoring import ScorerConfig

    return ScorerConfig(
        top_k=args.top_k, budget_tokens=args.budget, sampling=SamplingParams(max_tokens=args.max_tokens)
    )


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "score",
        help="score the memories of a run",
        description="Score RUN/memories.jsonl (written by any agent) through the fixed pipeline: BM25 "
        "retrieval over each memory, the reader prompt, the reader, the task metrics. Writes "
        "RUN/predictions.jsonl, RUN/scores.json and RUN/report.md. Answers are cached, so a "
        "killed run resumes and re-scoring costs no reader calls.",
    )
    p.add_argument("run", type=Path, metavar="RUN", help="folder holding memories.jsonl")
    p.add_argument("--data", type=Path, required=True, help="folder of built tasks (DIR/<task>/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_reader_options(p)
    p.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from .report import summary_table
    from .scoring import score_run

    reader, judge = readers_from_args(args, args.run)
    result = score_run(
        args.run,
        args.data,
        reader,
        judge_reader=judge,
        counter=get_counter(args.tokenizer),
        config=scorer_config(args),
        show_progress=not args.quiet,
    )
    print(summary_table(result.scores))
    print(f"\nresults in {args.run}: predictions.jsonl, scores.json, report.md", file=sys.stderr)
    return 0
