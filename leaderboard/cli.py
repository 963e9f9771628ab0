"""`memalpha leaderboard ...`: init, validate, add, render. Registered through the `memalpha.commands`
entry-point group (benchmark's CLI never imports this package)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.commands import add_reader_options, readers_from_args
from benchmark.paths import cache_root
from benchmark.report import summary_table
from tasks.errors import UsageError
from tasks.tokenization import get_counter

DEFAULT_RESULTS = Path("leaderboard-results")


def default_cache() -> Path:
    """Reader answers are cached outside the results folder, so a failed add leaves that folder untouched."""
    return cache_root() / "leaderboard-responses.sqlite"


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
        help="check a submission without scoring it",
        description="Check the metadata, the memories (format, size caps, plain text) and, with --data, that "
        "every instance of the board is given once on the named task versions. Lists every "
        "problem at once.",
    )
    p.add_argument("submission", type=Path, metavar="SUBMISSION")
    p.add_argument("--data", type=Path, help="folder of built tasks (DIR/<task>/), as for `memalpha score`")
    p.add_argument("--results", type=Path, help="also check against a results store (duplicates, versions)")
    p.add_argument("--profile", help="the scorer profile of the board (default: as `add` scores, v1)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "add",
        help="validate, re-score with the pinned scorer, and record a submission",
        description="Validate SUBMISSION, score its memories through the fixed pipeline with the pinned "
        "settings (top-k 20, 30k-token budget, 2048 answer tokens) and the scorer profile of --profile, "
        "and write one record into the results store, on the board of that profile. Nothing is written "
        "there if anything fails.",
    )
    p.add_argument("submission", type=Path, metavar="SUBMISSION")
    p.add_argument("--data", type=Path, required=True, help="folder of built tasks (DIR/<task>/)")
    p.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help=f"results store folder (default {DEFAULT_RESULTS})"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_reader_options(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser(
        "render",
        help="write leaderboard.md and the static site",
        description="Render every board from the results store plus the published seed entries: "
        "SITE/leaderboard.md, SITE/index.html, SITE/entries/<id>.html and SITE/assets/.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="SITE", help="output folder")
    p.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help=f"results store folder (default {DEFAULT_RESULTS})"
    )
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
    from .validate import validate_submission

    store = ResultsStore(args.results) if args.results else None
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


def cmd_add(args: argparse.Namespace) -> int:
    from .rescore import PINNED, add_submission
    from .store import ResultsStore
    from .validate import validate_submission

    settings = {
        "--top-k": (args.top_k, PINNED.top_k),
        "--budget": (args.budget, PINNED.budget_tokens),
        "--max-tokens": (args.max_tokens, PINNED.sampling.max_tokens),
    }
    off = [f"{k} {given} (pinned: {pinned})" for k, (given, pinned) in settings.items() if given != pinned]
    if off:
        raise UsageError(f"the leaderboard scores with pinned settings; drop {', '.join(off)}")
    store = ResultsStore(args.results)
    validated = validate_submission(args.submission, args.data, store=store, profile=args.profile)
    args.cache = args.cache or default_cache()
    reader, judge = readers_from_args(args, args.cache.parent)
    record, path = add_submission(
        validated,
        args.data,
        store,
        reader,
        counter=get_counter(args.tokenizer),
        judge_reader=judge,
        show_progress=not args.quiet,
    )
    print(summary_table(record["scores"]))
    print(
        f"\nadded {record['id']} to {path.parent}; render with: memalpha leaderboard render --out SITE "
        f"--results {path.parent}",
        file=sys.stderr,
    )
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .ranking import shown_entries
    from .render import render_site
    from .seeds import seed_records
    from .store import ResultsStore

    entries = shown_entries(ResultsStore(args.results).records(), [] if args.no_seeds else seed_records())
    written = render_site(entries, args.out)
    print(f"wrote {len(written)} files under {args.out}: leaderboard.md, index.html, entries/, assets/")
    return 0
