"""`memalpha leaderboard ...`: init, validate, add, render. Registered through the `memalpha.commands`
entry-point group (benchmark's CLI never imports this package)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.commands import DEFAULT_MODEL, add_reader_options, readers_from_args
from benchmark.paths import cache_root
from benchmark.profiles import DEFAULT_PROFILE
from benchmark.report import summary_table
from tasks.argtypes import positive_int
from tasks.errors import UsageError
from tasks.tokenization import get_counter

from .pins import PUBLISHED

DEFAULT_RESULTS = Path("leaderboard-results")
READER_BACKENDS = ("openai", "vllm", "hf")
PINNED_OPTIONS = ("reader", "model", "tokenizer", "top_k", "budget", "max_tokens")
"""`add` options whose value the board pins: None unless given, then checked against the pin."""
SCHEMAS = ("submission", "record", "scores")


def default_cache() -> Path:
    """Reader answers are cached outside the results folder, so a failed add leaves that folder untouched."""
    return cache_root() / "leaderboard-responses.sqlite"


def add_results_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help=f"results store folder (default {DEFAULT_RESULTS})"
    )


def register(commands: argparse._SubParsersAction) -> None:
    lb = commands.add_parser(
        "leaderboard",
        help="make, check, add and publish leaderboard submissions",
        description="A submission is a folder with submission.json and memories.jsonl (docs/submit.md). "
        "We validate it, score the memories ourselves with the pinned scorer, and publish it.",
    )
    sub = lb.add_subparsers(dest="leaderboard_command", required=True, metavar="ACTION")

    p = sub.add_parser(
        "init",
        help="turn a finished run into a submission to fill in",
        description="Copy RUN/memories.jsonl into a new submission folder with a submission.json skeleton; "
        "replace every TODO, then run `memalpha leaderboard validate`.",
    )
    p.add_argument("run", type=Path, metavar="RUN", help="run folder holding memories.jsonl")
    p.add_argument("--out", type=Path, required=True, help="new submission folder")
    board = p.add_mutually_exclusive_group()
    board.add_argument("--suite", help="the board: a suite (default: guessed from the tasks in the run)")
    board.add_argument("--task", help="the board: a single task")
    p.add_argument("--data", type=Path, help="built tasks: task versions for a run without scores.json")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "validate",
        help="check a submission without scoring it, or a results record or scores.json against its schema",
        description="For a submission folder: check the metadata, the memories (format, size caps, plain text) "
        "and, with --data, that every instance of the board is given once on the named task versions. For a "
        "file: check a results record or a run's scores.json against the schema of its format "
        "(`memalpha leaderboard schema record|scores`). With --results, every record of the store too. "
        "Lists every problem at once.",
    )
    p.add_argument("submission", type=Path, metavar="SUBMISSION|FILE")
    p.add_argument("--data", type=Path, help="folder of built tasks (DIR/<task>/), as for `memalpha score`")
    p.add_argument("--results", type=Path, help="also check against a results store (duplicates, versions)")
    p.add_argument("--profile", help="the scorer profile of the board (default: as `add` scores, v1)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "init-board",
        help="pin the scorer of a board in a results store (the store's publisher, once per board)",
        description="Write RESULTS/boards/<board>.json: the whole scorer every entry of the board is re-scored "
        "with (profile, reader backend and model, judge, tokenizer, top-k, budget, the profile's sampling "
        "with --max-tokens answer tokens). `add` scores with it and refuses any other; a board's scorer "
        "never changes. Running it again with the same settings changes nothing.",
    )
    board = p.add_mutually_exclusive_group(required=True)
    board.add_argument("--suite", help="the board: a suite")
    board.add_argument("--task", help="the board: a single task")
    add_results_option(p)
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"scorer profile (default {DEFAULT_PROFILE})")
    p.add_argument("--reader", choices=READER_BACKENDS, default="vllm", help="reader backend (default vllm)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"reader model (default {DEFAULT_MODEL})")
    p.add_argument("--judge-reader", choices=READER_BACKENDS, help="judge backend (default: the reader's)")
    p.add_argument("--judge-model", help="judge model (default: the reader model)")
    p.add_argument("--tokenizer", default="qwen3", help="token counter for budget and memory sizes (default qwen3)")
    p.add_argument("--top-k", type=positive_int, default=PUBLISHED.top_k, help=f"default {PUBLISHED.top_k}")
    p.add_argument(
        "--budget", type=positive_int, default=PUBLISHED.budget_tokens, help=f"default {PUBLISHED.budget_tokens}"
    )
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=PUBLISHED.sampling.max_tokens,
        help=f"answer tokens (default {PUBLISHED.sampling.max_tokens})",
    )
    p.set_defaults(func=cmd_init_board)

    p = sub.add_parser(
        "add",
        help="validate, re-score with the board's pinned scorer, and record a submission",
        description="Validate SUBMISSION, score its memories through the fixed pipeline with the scorer its "
        "board pins in the results store (see init-board; --profile picks the board's profile), and write "
        "one record there. The reader, judge, tokenizer and numbers default to the pinned ones (the "
        "defaults printed below do not apply); values given must equal them. Nothing is written to the "
        "store if anything fails.",
    )
    p.add_argument("submission", type=Path, metavar="SUBMISSION")
    p.add_argument("--data", type=Path, required=True, help="folder of built tasks (DIR/<task>/)")
    add_results_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_reader_options(p)
    p.set_defaults(func=cmd_add, **dict.fromkeys(PINNED_OPTIONS))

    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of submission.json, of a results record or of scores.json",
        description="Print (or write to --out) a JSON Schema (draft 2020-12): of submission.json (the default; "
        "published as leaderboard/schema/submission.schema.json: a submitter's CI can check the file with any "
        "JSON Schema validator; `validate` checks more: the memories, the task data, duplicates), of a "
        "results record (leaderboard/schema/record.schema.json) or of a run's scores.json "
        "(benchmark/schema/scores.schema.json).",
    )
    p.add_argument("which", nargs="?", choices=SCHEMAS, default="submission", help="default submission")
    p.add_argument("--out", type=Path, help="write the schema to this file instead of printing it")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser(
        "render",
        help="write leaderboard.md and the static site",
        description="Render every board from the results store plus the published seed entries: "
        "SITE/leaderboard.md, SITE/index.html, SITE/entries/<id>.html, SITE/data/<board>.json and .csv (each "
        "board's records) and SITE/assets/.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="SITE", help="output folder")
    add_results_option(p)
    p.add_argument("--no-seeds", action="store_true", help="leave out the published (reported) entries")
    p.set_defaults(func=cmd_render)


def cmd_init(args: argparse.Namespace) -> int:
    from .skeleton import init_submission

    kind, name = ("suite", args.suite) if args.suite else ("task", args.task) if args.task else (None, None)
    out = init_submission(args.run, args.out, kind=kind, name=name, data_dir=args.data)
    print(
        f"wrote {out}/submission.json and {out}/memories.jsonl; replace every TODO in submission.json, "
        f"then run: memalpha leaderboard validate {out} --data DIR"
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .store import ResultsStore
    from .validate import validate_results_file, validate_submission

    store = ResultsStore(args.results) if args.results else None
    if args.submission.is_file():
        what, fmt = validate_results_file(args.submission)
        print(f"OK: {args.submission} is a {what} of format {fmt}")
        if store is not None:
            print(f"OK: {len(store.records())} record(s) in {store.root}")
        return 0
    v = validate_submission(args.submission, args.data, store=store, profile=args.profile)
    meta = v.meta
    print(
        f"OK: {meta.agent_name} {meta.agent_version} for board {meta.board.name} ({meta.board.kind}, "
        f"profile {meta.board.profile}), "
        f"{v.instances} instances, memories sha256 {v.memories_sha256}"
    )
    if v.contamination.possible:
        print("possibly contaminated:\n" + "\n".join(f"  - {r}" for r in v.contamination.reasons))
    if not v.checked_against_data:
        print("not checked: instances and task versions (give --data DIR)", file=sys.stderr)
    return 0


def cmd_init_board(args: argparse.Namespace) -> int:
    from .boards import get_board
    from .pins import PinnedScorer
    from .store import ResultsStore

    board = get_board("suite" if args.suite else "task", args.suite or args.task, args.profile)
    judge = (args.judge_reader or args.reader, args.judge_model or args.model)
    scorer = PinnedScorer.create(
        profile=board.profile,
        reader=(args.reader, args.model),
        judge=judge,
        counter=get_counter(args.tokenizer),
        top_k=args.top_k,
        budget_tokens=args.budget,
        max_tokens=args.max_tokens,
    )
    path = ResultsStore(args.results).pin(board, scorer)
    print(f"board {board.name} ({board.kind}) pins: {scorer.describe()}\nin {path}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from .pins import tokenizer_identity
    from .rescore import add_submission
    from .store import ResultsStore, StoreError
    from .validate import validate_submission

    store = ResultsStore(args.results)
    validated = validate_submission(args.submission, args.data, store=store, profile=args.profile)
    board = validated.meta.board
    pin = store.pinned(board)
    if pin is None:
        raise StoreError(
            f"{store.root}: board {board.name} ({board.profile}) has no pinned scorer; set it once with "
            f"`memalpha leaderboard init-board --{board.kind} {board.name} --profile {board.profile} "
            f"--results {store.root} --reader ... --model ...`"
        )
    given = {
        "--reader": args.reader,
        "--model": args.model,
        "--judge-reader": args.judge_reader,
        "--judge-model": args.judge_model,
        "--top-k": args.top_k,
        "--budget": args.budget,
        "--max-tokens": args.max_tokens,
    }
    off = pin.option_differences(given)
    counter = get_counter(args.tokenizer or pin.tokenizer["spec"])
    if tokenizer_identity(counter.describe()) != tokenizer_identity(pin.tokenizer):
        off.append(f"--tokenizer {args.tokenizer} (pinned: {tokenizer_identity(pin.tokenizer)})")
    if off:
        raise UsageError(f"board {board.name} ({board.profile}) scores with its pinned scorer; drop {', '.join(off)}")
    args.reader, args.model = pin.reader["backend"], pin.reader["model"]
    if pin.separate_judge:
        args.judge_reader, args.judge_model = pin.judge["backend"], pin.judge["model"]
    args.cache = args.cache or default_cache()
    reader, judge = readers_from_args(args, args.cache.parent)
    record, path = add_submission(
        validated, args.data, store, reader, counter=counter, judge_reader=judge, show_progress=not args.quiet
    )
    print(summary_table(record["scores"]))
    print(
        f"\nadded {record['id']} to {path.parent}; render with: memalpha leaderboard render --out SITE "
        f"--results {path.parent}",
        file=sys.stderr,
    )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from tasks.atomic import replace_file

    from .schema import published_schemas

    text = published_schemas()[args.which]()
    if args.out is None:
        sys.stdout.write(text)
    else:
        replace_file(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .ranking import shown_entries
    from .render import render_site
    from .seeds import seed_records
    from .store import ResultsStore

    store = ResultsStore(args.results)
    entries = shown_entries(store.records(), [] if args.no_seeds else seed_records())
    written = render_site(entries, args.out, store.pins())
    print(f"wrote {len(written)} files under {args.out}: leaderboard.md, index.html, entries/, data/, assets/")
    return 0
