"""`memalpha tasks ...`: list, build, show, validate and compare tasks."""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

from tabulate import tabulate

from .argtypes import non_negative_int, positive_int, random_seed
from .build import HUB_MIRROR_ENV, build_task, default_origin
from .errors import TaskError
from .llm import BuilderLLM
from .manifest import MANIFEST, load_built, split_stats
from .overlap import overlap
from .registry import METRICS, ORIGINS, all_suites, all_tasks, get_suite, get_task, resolve_names, suites_of
from .validate import task_dirs, validate_task


def register(commands: argparse._SubParsersAction) -> None:
    tasks = commands.add_parser(
        "tasks",
        help="list, build, inspect and validate tasks",
        description="Tasks are pinned, hashed HF datasets in one chunk/question schema (see docs/tasks.md).",
    )
    sub = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")

    p = sub.add_parser("list", help="list registered tasks", description="List registered tasks and suites.")
    p.add_argument("--suite", help="only the tasks of this suite")
    p.add_argument("--json", action="store_true", help="machine-readable output: a list of task objects")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "build",
        help="build tasks into a data folder",
        description="Build tasks (or whole suites) into DIR/<task>/: the dataset plus manifest.json.",
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="task or suite names")
    p.add_argument("--out", required=True, type=Path, help="data folder to write DIR/<task>/ into")
    p.add_argument(
        "--from",
        dest="origin",
        choices=ORIGINS,
        help="where to read the source: the HF hub at a pinned revision (default where the task "
        "has one), the authors' release files (raw), or Mem-alpha's processed release",
    )
    p.add_argument("--raw-dir", type=Path, help="folder holding one sub-folder per raw source (DIR/<source>/)")
    p.add_argument(
        "--hub-mirror",
        type=Path,
        help=f"a local copy of hub repos in the hub layout, DIR/<org>/<name>/ (or ${HUB_MIRROR_ENV})",
    )
    p.add_argument(
        "--tokenizer",
        help="token counter for chunking: qwen3 (default; needs the hub once), simple "
        "(offline, dependency-free), a local tokenizer folder, or org/name[@revision]",
    )
    p.add_argument("--limit", type=positive_int, help="keep at most N instances per split (quick builds)")
    p.add_argument(
        "--seed",
        type=random_seed,
        default=42,
        help="seed for splits, sampling and chunk sizes, 0 to 2**32 - 1 (default 42)",
    )
    p.add_argument(
        "--exclude-from",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a built task whose questions must not be asked (repeatable); e.g. build lme_train "
        "with --exclude-from data/longmemeval_s to keep it clear of the evaluation set",
    )
    llm = p.add_argument_group(
        "LLM steps",
        "the original's build-time LLM steps (closed-book filter, keyword extraction, answer "
        "shortening); without --llm-model they are skipped and the manifest says so",
    )
    llm.add_argument("--llm-model", help="model for the LLM steps (e.g. Qwen/Qwen3-32B)")
    llm.add_argument(
        "--llm-backend",
        choices=("openai", "vllm", "hf"),
        default="openai",
        help="reader backend for it (default openai)",
    )
    llm.add_argument("--llm-base-url", help="server URL for --llm-backend openai")
    llm.add_argument("--llm-cache", type=Path, help="response cache for the LLM steps (default under ~/.cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "show",
        help="describe a task (NAME) or a built task (DIR)",
        description="NAME: the registry's spec. DIR: counts, tokens and chunks of a built task.",
    )
    p.add_argument("target", metavar="NAME|DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "validate",
        help="check built tasks against schema and manifest",
        description="Check every built task in DIR (or DIR itself): schema, hashes, counts, chunk limits.",
    )
    p.add_argument("path", type=Path, metavar="DIR")
    p.add_argument("--no-chunk-limit", action="store_true", help="skip re-counting chunk tokens")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "publish",
        help="write built tasks as a Hugging Face dataset repository (one config per task)",
        description="Verify the built tasks in DIR and write them in the hub layout: <task>/<split>-*.parquet, "
        "<task>/manifest.json and a dataset card whose configs name one config per task, so that "
        "datasets.load_dataset(REPO, TASK) loads a task. With --out the repository is written to a local "
        "folder; without it, it is uploaded to the hub (needs a write token, e.g. `hf auth login`).",
    )
    p.add_argument("path", type=Path, metavar="DIR", help="a data folder of built tasks, or one built task")
    p.add_argument("--repo", required=True, metavar="ID", help="the dataset repo id, e.g. my-org/memalpha-tasks")
    p.add_argument("--out", type=Path, metavar="FOLDER", help="write the repository here instead of uploading it")
    p.add_argument("--private", action="store_true", help="create the hub repo as private (upload only)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser(
        "overlap",
        help="questions and passages two built tasks share",
        description="Report the questions and context passages (sentences) two built tasks share.",
    )
    p.add_argument("a", type=Path, metavar="A")
    p.add_argument("b", type=Path, metavar="B")
    p.add_argument("--split-a", help="only this split of A")
    p.add_argument("--split-b", help="only this split of B")
    p.add_argument("--examples", type=non_negative_int, default=5, help="shared items to print (default 5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_overlap)


def cmd_list(args: argparse.Namespace) -> int:
    specs = [get_task(n) for n in get_suite(args.suite).tasks] if args.suite else all_tasks()
    if args.json:
        print(json.dumps([s.summary() for s in specs], indent=2))
        return 0
    rows = [
        [s.name, s.competency, s.metric, ",".join(s.splits), ",".join(suites_of(s.name)), ",".join(s.origins)]
        for s in specs
    ]
    print(tabulate(rows, headers=["task", "comp.", "metric", "splits", "suites", "origins"]))
    if not args.suite:
        print()
        print(
            tabulate(
                [[s.name, len(s.members), s.description] for s in all_suites()],
                headers=["suite", "members", "description"],
            )
        )
    return 0


def builder_llm(args: argparse.Namespace) -> BuilderLLM | None:
    """The LLM for the build's LLM steps, provided by whichever package registers `memalpha.builder_llm`."""
    if not args.llm_model:
        return None
    found = {ep.name: ep for ep in entry_points(group="memalpha.builder_llm")}
    if "reader" not in found:
        raise TaskError("--llm-model needs the scoring harness installed (the `memalpha.builder_llm` entry point)")
    return found["reader"].load()(args.llm_backend, args.llm_model, args.llm_base_url, args.llm_cache)


def cmd_build(args: argparse.Namespace) -> int:
    names = resolve_names(args.names)
    llm = builder_llm(args)
    failed: list[tuple[str, str]] = []
    for name in names:
        origin = args.origin or default_origin(get_task(name))
        print(f"building {name} (from {origin}) ...", file=sys.stderr, flush=True)
        try:
            result = build_task(
                name,
                args.out,
                origin=args.origin,
                raw_dir=args.raw_dir,
                hub_mirror=args.hub_mirror,
                tokenizer=args.tokenizer,
                limit=args.limit,
                seed=args.seed,
                llm=llm,
                exclude_from=args.exclude_from,
                show_progress=not args.quiet,
            )
        except TaskError as exc:
            failed.append((name, str(exc)))
            print(f"error: {name}: {exc}", file=sys.stderr)
            continue
        for warning in result.warnings:
            print(f"WARNING: {warning}", file=sys.stderr)
        m = result.manifest
        counts = ", ".join(f"{s}: {v['instances']} inst / {v['questions']} q" for s, v in m["splits"].items())
        skipped = [k for k, v in m["llm_steps"].items() if v["status"] == "skipped"]
        print(f"  {result.path}  sha256 {m['sha256'][:16]}  {counts}")
        if skipped:
            print(f"  note: LLM steps skipped (no LLM configured): {', '.join(skipped)}")
    if failed:
        print(
            f"{len(failed)} of {len(names)} task(s) failed: {', '.join(n for n, _ in failed)}",
            file=sys.stderr,
        )
        return 1
    return 0


def _show_built(path: Path, as_json: bool) -> int:
    data, manifest = load_built(path)
    stats = {split: split_stats(ds.to_list()) for split, ds in data.items()}
    if as_json:
        print(json.dumps({"task": manifest["task"], "sha256": manifest["sha256"], "splits": stats}, indent=2))
        return 0
    print(f"{manifest['task']}  ({path})")
    source = manifest.get("source") or {}
    at = source.get("commit") or source.get("revision") or source.get("mirror") or "local files"
    pinned = "" if source.get("pinned", True) else " (UNPINNED)"
    print(f"origin {manifest['origin']}: {source.get('id')} @ {at}{pinned}, license {manifest.get('license', '?')}")
    print(f"tokenizer {manifest['tokenizer']['name']}, sha256 {manifest['sha256']}")
    rows = []
    for split, st in stats.items():
        t, c = st["context_tokens"], st["chunks_per_instance"]
        rows.append(
            [
                split,
                st["instances"],
                st["questions"],
                t["min"],
                t["median"],
                t["max"],
                c["min"],
                c["median"],
                c["max"],
            ]
        )
    print(
        tabulate(
            rows,
            headers=[
                "split",
                "instances",
                "questions",
                "tokens min",
                "median",
                "max",
                "chunks/inst min",
                "median",
                "max",
            ],
        )
    )
    for step, info in manifest.get("llm_steps", {}).items():
        print(f"LLM step {step}: {info['status']}")
    for note in manifest.get("notes", []):
        print(f"note: {note}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    path = Path(args.target)
    if (path / MANIFEST).is_file():
        return _show_built(path, args.json)
    if path.is_dir():
        for sub in task_dirs(path):
            _show_built(sub, args.json)
        return 0
    spec = get_task(args.target)
    info = {
        **spec.summary(),
        "query_prompt": spec.query_prompt,
        "tokenizer": spec.tokenizer,
        "params": spec.params,
        "metric_definition": METRICS[spec.metric],
        "sources": [
            {
                "origin": s.origin,
                "id": s.id,
                "revision": s.revision,
                "config": s.config,
                "files": list(s.files),
                "license": s.license,
                "note": s.note,
            }
            for s in spec.sources
        ],
        "citation": spec.bibtex(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "sources":
            for s in value:
                rev = s["revision"] or ("(local files)" if s["origin"] == "raw" else "UNPINNED: hub head")
                files = " ".join(s["files"])
                print(f"source ({s['origin']}): {s['id']} @ {rev} {files} [{s['license']}] {s['note']}".rstrip())
        else:
            print(f"{key}: {value}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in task_dirs(args.path):
        problems = validate_task(path, check_chunk_limit=not args.no_chunk_limit)
        if problems:
            bad += 1
            print(f"FAIL {path}")
            for line in problems:
                print(f"  {line}")
        else:
            print(f"ok   {path}")
    return 1 if bad else 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .publish import publish

    manifests, where = publish(
        args.path,
        args.repo,
        out=args.out,
        private=args.private,
        progress=lambda message: print(f"  {message}", file=sys.stderr),
    )
    for m in manifests:
        print(f"  {m['task']}  sha256 {m['sha256'][:16]}  license {m.get('license', '?')}")
    print(f"{len(manifests)} task(s) published as {args.repo}: {where}")
    return 0


def cmd_overlap(args: argparse.Namespace) -> int:
    result = overlap(args.a, args.b, split_a=args.split_a, split_b=args.split_b)
    report = result.as_dict(args.examples)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(
        tabulate(
            [
                [
                    "questions",
                    report["questions"]["a"],
                    report["questions"]["b"],
                    report["questions"]["shared"],
                ],
                ["passages", report["passages"]["a"], report["passages"]["b"], report["passages"]["shared"]],
            ],
            headers=["", result.a, result.b, "shared"],
        )
    )
    for kind in ("questions", "passages"):
        for example in report[kind]["examples"]:
            print(f"  shared {kind[:-1]}: {example[:120]}")
    return 0
