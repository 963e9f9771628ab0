"""`memalpha run`, `score`, `eval` and `agents`: the command line of the main job.

Each command parses its options and hands them to `benchmark.journey`, which the Python API
(`benchmark.api`) uses too; nothing here does work of its own beyond printing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasks.argtypes import non_negative_int, positive_int, positive_number

from .readers.base import SamplingParams

DEFAULT_MODEL = "Qwen/Qwen3-32B"
DEFAULT_TOKENIZER = "qwen3"  # as benchmark.journey.DEFAULT_TOKENIZER, without importing it for --help


def add_tokenizer_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The one token counter of a job: first-use builds, the agent's `tokenizer` option (unless set with
    --agent-opt) and the scorer's budget and memory sizes."""
    p.add_argument(
        "--tokenizer",
        default=DEFAULT_TOKENIZER,
        help="token counter for first-use builds, the agent (unless --agent-opt tokenizer=...) and the scorer's "
        f"budget and memory sizes: {DEFAULT_TOKENIZER} (default; needs the hub once), simple (offline, "
        "dependency-free), a local tokenizer folder, or org/name[@revision]",
    )


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
    g.add_argument(
        "--concurrency", type=positive_int, default=16, help="parallel requests for --reader openai (default 16)"
    )
    g.add_argument(
        "--timeout", type=positive_number, default=300.0, help="seconds per request before a retry (default 300)"
    )
    g.add_argument(
        "--max-retries", type=non_negative_int, default=5, help="retries per request on 429/5xx/timeouts (default 5)"
    )
    g.add_argument("--max-tokens", type=positive_int, default=2048, help="answer length limit (default 2048)")
    g.add_argument("--top-k", type=positive_int, default=20, help="entries retrieved per memory type (default 20)")
    g.add_argument("--budget", type=positive_int, default=30_000, help="reader prompt budget in tokens (default 30000)")
    add_tokenizer_option(g)
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


def add_scoring_options(p: argparse.ArgumentParser) -> None:
    """What `score` and `eval` take beyond the reader: a smoke-run limit and permission to overwrite."""
    p.add_argument(
        "--limit-questions",
        type=positive_int,
        metavar="N",
        help="ask only the first N questions of each instance (smoke runs; scores.json and report.md say so)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace scores made before with other settings (without it, such a re-score is refused)",
    )


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "score",
        help="score the memories of a run",
        description="Score RUN/memories.jsonl (written by any agent) through the fixed pipeline: BM25 "
        "retrieval over each memory, the reader prompt, the reader, the task metrics. Writes "
        "RUN/predictions.jsonl, RUN/scores.json and RUN/report.md. Before any work the reader (and judge) "
        "answer a one-token test request. Answers are cached, so a killed run resumes and re-scoring "
        "costs no reader calls; a re-score with other settings is refused without --force.",
    )
    p.add_argument("run", type=Path, metavar="RUN", help="folder holding memories.jsonl")
    p.add_argument("--data", type=Path, required=True, help="folder of built tasks (DIR/<task>/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_scoring_options(p)
    add_reader_options(p)
    p.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from . import journey

    data_dir, tasks = journey.check_score_inputs(args.run, args.data)  # before a reader is loaded
    reader, judge = readers_from_args(args, args.run)
    result = journey.score_checked(
        args.run,
        data_dir,
        tasks,
        reader=reader,
        judge=judge,
        tokenizer=args.tokenizer,
        config=scorer_config(args),
        limit_questions=args.limit_questions,
        force=args.force,
        show_progress=not args.quiet,
    )
    print_scores(result.scores, args.run, "predictions.jsonl, scores.json, report.md")
    return 0


def print_scores(scores: dict, run_dir: Path, files: str) -> None:
    from .report import summary_table

    print(summary_table(scores))
    print(f"\nresults in {run_dir}: {files}", file=sys.stderr)


# ---------------------------------------------------------------- run and eval


def parse_agent_options(pairs: list[str]) -> dict[str, str]:
    from tasks.errors import UsageError

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--agent-opt {pair!r}: expected key=value")
        options[key] = value
    return options


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--agent",
        required=True,
        help="agent name (`memalpha agents list`): chunk-store, long-context, memalpha, http, or a plugin's",
    )
    p.add_argument(
        "--agent-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an agent option (repeatable), e.g. --agent-opt model=YuWangX/Memalpha-4B",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--tasks", nargs="+", metavar="NAME", help="task or suite names")
    which.add_argument("--suite", help="a suite: its tasks at its splits")
    p.add_argument("--split", help="split to run (default: the suite's; for --tasks: test, else validation)")
    p.add_argument(
        "--data",
        type=Path,
        help="folder of built tasks; default $MEMALPHA_DATA or ~/.cache/memalpha-bench/tasks, where missing "
        "tasks are built from the hub on first use",
    )
    p.add_argument("--out", required=True, type=Path, metavar="RUN", help="run folder (resumed if it exists)")
    p.add_argument("--limit", type=positive_int, help="at most N instances per task split")
    p.add_argument(
        "--agent-concurrency",
        type=positive_int,
        default=4,
        help="instances observed in parallel threads, and kept open at once by agents that do not batch (default 4)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group(
        "builder LLM",
        "for first-use builds of tasks whose metric needs an LLM step (infbench_sum, booksum: keyword "
        "extraction); `eval` uses its reader unless one is named here",
    )
    g.add_argument("--build-llm-model", help="model for the build's LLM steps")
    g.add_argument(
        "--build-llm-backend", choices=("openai", "vllm", "hf"), default="openai", help="its backend (default openai)"
    )
    g.add_argument("--build-llm-base-url", help="its server URL, for --build-llm-backend openai")


def builder_llm_from_args(args: argparse.Namespace):
    """The reader named by --build-llm-*, or None."""
    if not args.build_llm_model:
        return None
    from .readers import make_reader

    return make_reader(args.build_llm_backend, args.build_llm_model, base_url=args.build_llm_base_url)


def plan_from_args(args: argparse.Namespace, *, scoring: bool):
    from . import journey

    return journey.plan(
        tasks=args.tasks, suite=args.suite, split=args.split, data=args.data, tokenizer=args.tokenizer, scoring=scoring
    )


def print_run_summary(summary) -> None:
    from tabulate import tabulate

    rows = [[task, v["instances"], v["instances"] - v["failed"], v["failed"]] for task, v in summary.by_task.items()]
    print(tabulate(rows, headers=["task", "instances", "memories", "failed"], tablefmt="github"))
    for key, error in list(summary.failed.items())[:10]:
        print(f"failed: {key}: {error}", file=sys.stderr)
    if summary.resumed or summary.reused_answers:
        print(
            f"resumed: {summary.resumed} memories kept from before; {summary.reused_answers} agent model "
            "answers replayed from the run's cache instead of asked again",
            file=sys.stderr,
        )
    print(f"\n{summary.written} memories written: {summary.run_dir / 'memories.jsonl'}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from . import journey

    job = plan_from_args(args, scoring=False)
    summary = journey.run_planned(
        job,
        args.agent,
        args.out,
        options=parse_agent_options(args.agent_opt),
        builder_llm=builder_llm_from_args(args),
        limit=args.limit,
        concurrency=args.agent_concurrency,
        show_progress=not args.quiet,
    )
    print_run_summary(summary)
    return 1 if summary.failed else 0


def cmd_eval(args: argparse.Namespace) -> int:
    from . import journey

    job = plan_from_args(args, scoring=True)  # names, data, tokenizer, LLM needs: before any model loads
    options = parse_agent_options(args.agent_opt)
    reader, judge = readers_from_args(args, args.out)
    evaluation = journey.evaluate_planned(
        job,
        args.agent,
        args.out,
        reader=reader,
        judge=judge,
        options=options,
        builder_llm=builder_llm_from_args(args),
        limit=args.limit,
        limit_questions=args.limit_questions,
        concurrency=args.agent_concurrency,
        config=scorer_config(args),
        force=args.force,
        show_progress=not args.quiet,
    )
    print_run_summary(evaluation.run)
    if evaluation.score is None:
        print(f"error: nothing to score: every instance failed (see {args.out / 'errors.jsonl'})", file=sys.stderr)
        return 1
    print()
    print_scores(evaluation.score.scores, args.out, "memories.jsonl, predictions.jsonl, scores.json, report.md")
    return 1 if evaluation.run.failed else 0


def register_run(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "run",
        help="run an agent over tasks and write its memories",
        description="Feed every instance's chunks to an agent, in order, and write each final memory to "
        "RUN/memories.jsonl as soon as it is done. The agent's model answers are kept in "
        "RUN/.cache/agent.sqlite, so a killed run resumes where it stopped and says what it reused.",
    )
    add_run_options(p)
    add_tokenizer_option(p)
    p.set_defaults(func=cmd_run)
    p = commands.add_parser(
        "eval",
        help="run an agent, then score its memories",
        description="`memalpha run` followed by `memalpha score` on the same run folder. Before any agent "
        "runs: task names, data and tokenizer are checked, the reader (and judge, and builder LLM) answer a "
        "one-token test request, and missing tasks are built (from the hub at pinned revisions, when no "
        "--data is given; tasks whose metric needs an LLM step are built with the reader, or --build-llm-*). "
        "The reader defaults to in-process vLLM (use --reader openai --base-url URL for a served model).",
    )
    add_run_options(p)
    add_scoring_options(p)
    add_reader_options(p)
    p.set_defaults(func=cmd_eval)


# ---------------------------------------------------------------- agents


def register_agents(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("agents", help="list the agents and their options")
    sub = p.add_subparsers(dest="agents_command", required=True, metavar="ACTION")
    q = sub.add_parser(
        "list",
        help="every registered agent with its options",
        description="Built-in agents and those of installed plugins (the `memalpha.agents` entry points), "
        "each with the options it takes (--agent-opt KEY=VALUE) and their defaults.",
    )
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_agents_list)


def describe_agents() -> list[dict]:
    """Name, class, summary and options of every agent; an agent that cannot be loaded says why."""
    from .agents import agent_class, available

    out = []
    for name, spec in available().items():
        entry: dict = {"name": name, "class": spec}
        try:
            cls = agent_class(name)
        except Exception as exc:  # a plugin whose extra is not installed: listed, with the reason
            entry["error"] = f"{type(exc).__name__}: {exc}"
        else:
            entry["summary"] = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            entry["options"] = (
                None
                if cls.option_docs is None
                else [{"name": o.name, "default": o.default, "help": o.help} for o in cls.option_docs]
            )
        out.append(entry)
    return out


def cmd_agents_list(args: argparse.Namespace) -> int:
    import json

    from tabulate import tabulate

    agents = describe_agents()
    if args.json:
        print(json.dumps(agents, indent=2))
        return 0
    for i, agent in enumerate(agents):
        print(("\n" if i else "") + f"{agent['name']}  ({agent['class']})")
        if "error" in agent:
            print(f"  cannot be loaded here: {agent['error']}")
            continue
        print(f"  {agent['summary']}")
        if agent["options"] is None:
            print("  options: not declared by the agent (see its documentation)")
        elif not agent["options"]:
            print("  options: none")
        else:
            rows = [
                [o["name"], "(required)" if o["default"] is None else o["default"], o["help"]] for o in agent["options"]
            ]
            print(tabulate(rows, headers=["option", "default", "meaning"], tablefmt="simple"))
    return 0
