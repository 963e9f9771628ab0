"""`memalpha run`, `score`, `eval` and `agents`: the command line of the main job.

Each command parses its options and hands them to `benchmark.journey`, which the Python API
(`benchmark.api`) uses too; nothing here does work of its own beyond printing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasks.argtypes import non_negative_int, positive_int, positive_number

from .profiles import DEFAULT_PROFILE

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
    g.add_argument(
        "--base-url",
        action="append",
        metavar="URL",
        help="server URL for --reader openai, e.g. http://127.0.0.1:8000/v1; repeat it for several servers "
        "serving the same model (each request goes to the least busy; each must answer the test request); "
        "default $OPENAI_BASE_URL",
    )
    g.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the reader server's API key (default OPENAI_API_KEY; local "
        "servers need none)",
    )
    g.add_argument(
        "--concurrency",
        type=positive_int,
        default=16,
        help="requests in flight for --reader openai, over all its servers (default 16): about the number of "
        "sequences each server batches (vLLM --max-num-seqs) times the servers; see docs/scoring.md",
    )
    g.add_argument(
        "--timeout", type=positive_number, default=300.0, help="seconds per request before a retry (default 300)"
    )
    g.add_argument(
        "--max-retries",
        type=non_negative_int,
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
    g.add_argument("--max-tokens", type=positive_int, default=2048, help="answer length limit (default 2048)")
    g.add_argument("--top-k", type=positive_int, default=20, help="entries retrieved per memory type (default 20)")
    g.add_argument("--budget", type=positive_int, default=30_000, help="reader prompt budget in tokens (default 30000)")
    add_tokenizer_option(g)
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
    """The input caps and prompt window the options give (`limits`, `window` of the journey's scoring)."""
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
        description="Score RUN/memories.jsonl (written by any agent) through the fixed pipeline of a scorer "
        "profile (--profile): BM25 retrieval over each memory, the reader prompt, the reader, the task metrics. "
        "Writes RUN/predictions.jsonl, RUN/scores.json and RUN/report.md. Before any work the reader (and "
        "judge) answer a one-token test request, on each of their servers. Answers are cached, so a killed run "
        "resumes and re-scoring costs no reader calls; a re-score with other settings (profile and reader "
        "template included) is refused without --force.",
    )
    p.add_argument("run", type=Path, metavar="RUN", help="folder holding memories.jsonl")
    p.add_argument("--data", type=Path, required=True, help="folder of built tasks (DIR/<task>/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_scoring_options(p)
    add_reader_options(p)
    add_template_option(p)
    add_input_limit_option(p)
    p.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from . import journey

    options = scoring_options(args)
    data_dir, tasks = journey.check_score_inputs(args.run, args.data, options["limits"])  # before a reader loads
    reader, judge = readers_from_args(args, args.run)
    result = journey.score_checked(
        args.run,
        data_dir,
        tasks,
        reader=reader,
        judge=judge,
        settings=journey.ScoringSettings(
            args.tokenizer,
            scorer_config(args),
            args.profile,
            args.reader_template,
            args.limit_questions,
            **options,
        ),
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
        help="agent name (`memalpha agents list`): chunk-store, long-context, memalpha, memagent, mem1, mem0, "
        "langmem, http, or a plugin's (docs/agents.md)",
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
        profile=args.profile,
        reader_template=args.reader_template,
        **scoring_options(args),
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
    add_template_option(p)
    add_input_limit_option(p)
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
            entry["summary"] = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
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
            rows = [[o["name"], "-" if o["default"] is None else o["default"], o["help"]] for o in agent["options"]]
            print(tabulate(rows, headers=["option", "default", "meaning"], tablefmt="simple"))
    return 0
