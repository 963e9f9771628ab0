"""`memalpha score`: score any run folder holding a `memories.jsonl`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasks.tokenization import get_counter

from .profiles import DEFAULT_PROFILE

DEFAULT_MODEL = "Qwen/Qwen3-32B"


def _at_least(low: float, kind: type = int):
    """An argparse type: a number of `kind` that is at least `low` (a clear message otherwise)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is below the smallest allowed value, {low}")
        return value

    return parse


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


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
    g.add_argument(
        "--base-url",
        action="append",
        metavar="URL",
        help="server URL for --reader openai, e.g. http://127.0.0.1:8000/v1; repeat it for several servers "
        "serving the same model (each request goes to the least busy); default $OPENAI_BASE_URL",
    )
    g.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the reader server's API key (default OPENAI_API_KEY; local "
        "servers need none)",
    )
    g.add_argument(
        "--concurrency",
        type=_at_least(1),
        default=16,
        help="requests in flight for --reader openai, over all its servers (default 16): about the number of "
        "sequences each server batches (vLLM --max-num-seqs) times the servers; see docs/scoring.md",
    )
    g.add_argument(
        "--timeout", type=_positive_seconds, default=300.0, help="seconds per request before a retry (default 300)"
    )
    g.add_argument(
        "--max-retries",
        type=_at_least(0),
        default=5,
        help="retries per request on 429/5xx, timeouts, lost connections and malformed replies (default 5)",
    )
    g.add_argument(
        "--template-kwargs",
        choices=("auto", "send", "omit"),
        default="auto",
        help="whether requests carry chat_template_kwargs (the Qwen3 thinking switch), which vLLM, SGLang and "
        "transformers serve take and the OpenAI API rejects: auto (default) sends it except to api.openai.com "
        "and stops sending it to a server that rejects it",
    )
    g.add_argument(
        "--http-client",
        choices=("auto", "fast", "openai"),
        default="auto",
        help="fast: our asyncio HTTP client; openai: the openai SDK (slower; goes through proxies); "
        "auto (default): fast unless the environment sets a proxy for the server",
    )
    g.add_argument("--max-tokens", type=_at_least(1), default=2048, help="answer length limit (default 2048)")
    g.add_argument("--top-k", type=_at_least(0), default=20, help="entries retrieved per memory type (default 20)")
    g.add_argument("--budget", type=_at_least(1), default=30_000, help="reader prompt budget in tokens (default 30000)")
    g.add_argument(
        "--tokenizer",
        default="qwen3",
        help="token counter for the budget and memory sizes (default qwen3; `simple` works offline)",
    )
    g.add_argument("--cache", type=Path, help="response cache file (default RUN/.cache/responses.sqlite)")
    g.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"scorer profile, NAME or NAME@VERSION (default {DEFAULT_PROFILE}, its latest version): "
        "`memalpha-paper` reproduces the original Mem-alpha evaluation (docs/fidelity.md)",
    )
    j = p.add_argument_group("judge (for LLM-judged tasks; defaults to the reader)")
    j.add_argument("--judge-reader", choices=("openai", "vllm", "hf"))
    j.add_argument("--judge-model")
    j.add_argument("--judge-base-url", action="append", metavar="URL", help="repeatable, as --base-url")
    j.add_argument(
        "--judge-api-key-env",
        metavar="VAR",
        help="environment variable holding the judge's API key (default: the reader's)",
    )


BASE_URL_ENV = "OPENAI_BASE_URL"


def api_key_from_env(variable: str | None, option: str) -> str | None:
    """The key in $variable (None: the reader's own default, $OPENAI_API_KEY); an unset variable is an
    error, since a request without the key would only fail later."""
    import os

    from .readers import ReaderError

    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ReaderError(f"{option} {variable}: that environment variable is not set")
    return value


def add_template_option(p: argparse.ArgumentParser) -> None:
    """`--reader-template`: the score and eval commands only (the leaderboard scores with pinned templates)."""
    p.add_argument(
        "--reader-template",
        type=Path,
        metavar="FILE",
        help="a jinja2 reader template of your own, with {%% block system %%} and {%% block user %%} (variables: "
        "core, semantic, episodic, question, query_prompt, task); replaces the profile's, its sha256 is "
        "recorded (docs/scoring.md)",
    )


def add_input_limit_option(p: argparse.ArgumentParser) -> None:
    """`--input-limit`: the score and eval commands (the leaderboard has its own caps on submissions)."""
    p.add_argument(
        "--input-limit",
        action="append",
        metavar="NAME=SIZE",
        help="change a size cap on RUN/memories.jsonl, checked before it is read: memories_bytes (the file, "
        "default 2G) or record_bytes (one line, one instance's memory, default 512M); sizes in bytes or with a "
        "K, M or G suffix; repeat for both",
    )


def scoring_options(args: argparse.Namespace) -> dict:
    """`score_run`'s input caps and prompt window from the options."""
    from .input_limits import InputLimits
    from .scoring import prompt_window

    return {"limits": InputLimits.parse(args.input_limit), "window": prompt_window(args.concurrency)}


def readers_from_args(args: argparse.Namespace, run_dir: Path):
    """The cached reader and judge the options describe."""
    import os

    from .cache import CachedReader, ResponseCache
    from .readers import make_reader

    base_urls = args.base_url or ([os.environ[BASE_URL_ENV]] if os.environ.get(BASE_URL_ENV) else None)
    api_key = api_key_from_env(args.api_key_env, "--api-key-env")
    connection = {
        "concurrency": args.concurrency,
        "timeout": args.timeout,
        "max_retries": args.max_retries,
        "template_kwargs": args.template_kwargs,
        "http_client": args.http_client,
    }
    cache = ResponseCache(args.cache or run_dir / ".cache" / "responses.sqlite")
    reader = make_reader(args.reader, args.model, base_url=base_urls, api_key=api_key, **connection)
    judge = None
    if args.judge_reader or args.judge_model or args.judge_base_url or args.judge_api_key_env:
        judge = make_reader(
            args.judge_reader or args.reader,
            args.judge_model or args.model,
            base_url=args.judge_base_url or base_urls,
            api_key=api_key_from_env(args.judge_api_key_env, "--judge-api-key-env") or api_key,
            **connection,
        )
    return CachedReader(reader, cache), CachedReader(judge, cache) if judge else None


def scorer_config(args: argparse.Namespace):
    """The profile's defaults with the numbers the options set."""
    import dataclasses

    from .profiles import get_profile

    defaults = get_profile(args.profile).defaults
    return dataclasses.replace(
        defaults,
        top_k=args.top_k,
        budget_tokens=args.budget,
        sampling=dataclasses.replace(defaults.sampling, max_tokens=args.max_tokens),
    )


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "score",
        help="score the memories of a run",
        description="Score RUN/memories.jsonl (written by any agent) through the fixed pipeline of a scorer "
        "profile (--profile): BM25 retrieval over each memory, the reader prompt, the reader, the task metrics. Writes "
        "RUN/predictions.jsonl, RUN/scores.json and RUN/report.md. Answers are cached, so a "
        "killed run resumes and re-scoring costs no reader calls.",
    )
    p.add_argument("run", type=Path, metavar="RUN", help="folder holding memories.jsonl")
    p.add_argument("--data", type=Path, required=True, help="folder of built tasks (DIR/<task>/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_reader_options(p)
    add_template_option(p)
    add_input_limit_option(p)
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
        profile=args.profile,
        template_file=args.reader_template,
        **scoring_options(args),
    )
    print(summary_table(result.scores))
    print(f"\nresults in {args.run}: predictions.jsonl, scores.json, report.md", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- run and eval

DATA_ENV = "MEMALPHA_DATA"


def default_data_dir() -> Path:
    """Where tasks are built on first use when no --data is given."""
    import os

    from .paths import cache_root

    return Path(os.environ.get(DATA_ENV) or cache_root() / "tasks")


def parse_agent_options(pairs: list[str]) -> dict[str, str]:
    from tasks.errors import TaskError

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TaskError(f"--agent-opt {pair!r}: expected key=value")
        options[key] = value
    return options


def members_from_args(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(task, split) pairs: a suite's own splits, or --tasks with --split (default: test, else validation)."""
    from tasks.errors import TaskError
    from tasks.registry import get_suite, get_task, resolve_names

    if args.suite:
        members = list(get_suite(args.suite).members)
        return [(t, args.split or s) for t, s in members]
    if not args.tasks:
        raise TaskError("name the tasks to run: --tasks NAME... or --suite S")
    out = []
    for name in resolve_names(args.tasks):
        splits = get_task(name).splits
        split = args.split or ("test" if "test" in splits else "validation")
        if split not in splits:
            raise TaskError(f"task {name!r} has no split {split!r} (it has {', '.join(splits)})")
        out.append((name, split))
    return out


def ensure_built(data_dir: Path, tasks: list[str], *, quiet: bool) -> None:
    """Build from the hub (pinned revisions) every task not yet in `data_dir`: the first-use cache."""
    from tasks.build import build_task
    from tasks.manifest import MANIFEST

    for task in tasks:
        if not (data_dir / task / MANIFEST).is_file():
            print(f"building {task} into {data_dir} (first use) ...", file=sys.stderr)
            build_task(task, data_dir, show_progress=not quiet)


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--agent",
        required=True,
        help="agent name: chunk-store, long-context, memalpha, memagent, mem1, mem0, langmem, http, or a plugin's "
        "(docs/agents.md)",
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
        help=f"folder of built tasks; default ${DATA_ENV} or ~/.cache/memalpha-bench/tasks, where missing "
        "tasks are built from the hub on first use",
    )
    p.add_argument("--out", required=True, type=Path, metavar="RUN", help="run folder (resumed if it exists)")
    p.add_argument("--limit", type=int, help="at most N instances per task split")
    p.add_argument("--agent-concurrency", type=int, default=4, help="instances stepped in parallel threads (default 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def do_run(args: argparse.Namespace):
    from .agents import make_agent
    from .running import run_agent

    members = members_from_args(args)
    data_dir = args.data or default_data_dir()
    if args.data is None:
        ensure_built(data_dir, [t for t, _ in members], quiet=args.quiet)
    agent = make_agent(args.agent, parse_agent_options(args.agent_opt))
    summary = run_agent(
        agent,
        args.out,
        data_dir,
        members,
        limit=args.limit,
        concurrency=args.agent_concurrency,
        show_progress=not args.quiet,
    )
    return summary, data_dir


def print_run_summary(summary) -> None:
    from tabulate import tabulate

    rows = [[task, v["instances"], v["instances"] - v["failed"], v["failed"]] for task, v in summary.by_task.items()]
    print(tabulate(rows, headers=["task", "instances", "memories", "failed"], tablefmt="github"))
    for key, error in list(summary.failed.items())[:10]:
        print(f"failed: {key}: {error}", file=sys.stderr)
    resumed = f", {summary.resumed} kept from before" if summary.resumed else ""
    print(f"\n{summary.written} memories written{resumed}: {summary.run_dir / 'memories.jsonl'}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    summary, _ = do_run(args)
    print_run_summary(summary)
    return 1 if summary.failed else 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .report import summary_table
    from .scoring import score_run

    summary, data_dir = do_run(args)
    print_run_summary(summary)
    reader, judge = readers_from_args(args, args.out)
    result = score_run(
        args.out,
        data_dir,
        reader,
        judge_reader=judge,
        counter=get_counter(args.tokenizer),
        config=scorer_config(args),
        show_progress=not args.quiet,
        profile=args.profile,
        template_file=args.reader_template,
        **scoring_options(args),
    )
    print()
    print(summary_table(result.scores))
    print(f"\nresults in {args.out}: memories.jsonl, predictions.jsonl, scores.json, report.md", file=sys.stderr)
    return 1 if summary.failed else 0


def register_run(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "run",
        help="run an agent over tasks and write its memories",
        description="Feed every instance's chunks to an agent, in order, and write each final memory to "
        "RUN/memories.jsonl as soon as it is done. A killed run resumes where it stopped.",
    )
    add_run_options(p)
    p.set_defaults(func=cmd_run)
    p = commands.add_parser(
        "eval",
        help="run an agent, then score its memories",
        description="`memalpha run` followed by `memalpha score` on the same run folder. Without --data, "
        "tasks are built from the hub on first use; the reader defaults to in-process vLLM "
        "(use --reader openai --base-url URL for a served model).",
    )
    add_run_options(p)
    add_reader_options(p)
    add_template_option(p)
    add_input_limit_option(p)
    p.set_defaults(func=cmd_eval)
