"""Mutation score of the core modules: mutmut (pinned in the `mutation` extra) run one module at a time,
each against only the tests written for it, then each module's score read from mutmut's own records.
docs/testing.md holds the latest figures and what the survivors are.

    MEMALPHA_RAW_DIR=$PWD/../shared/data/raw HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \\
        .venv/bin/python benchmarks/mutation.py [--max-children 2] [--survivors] [MODULE ...]

Each module gets its own work folder, mutants/<module>/: a copy of the packages, the tests and
pyproject.toml whose [tool.mutmut] (the shared settings of pyproject.toml) names only that module to
mutate and only its tests (`TESTS`). mutmut keys its cached verdicts to the test selection, so one
folder per module keeps each module's results across runs; a second run re-tests only what changed.

A mutant is killed when a test fails (or times out) with it; the score is killed / (killed + survived +
no tests): a mutant no test reaches counts against the module. mutmut runs each mutant only against the
selected tests that reach its function, in forked workers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "mutants"
TESTS = {
    "benchmark/aggregation.py": ["tests/test_aggregation.py"],
    "benchmark/metrics.py": ["tests/test_metrics.py"],
    "benchmark/scoring.py": [
        "tests/test_scoring_steps.py",
        "tests/test_scoring_units.py",
        "tests/test_scoring_pipeline.py",
        "tests/test_aggregation.py",
        *(  # the scripted-server runs; not the real model server's, nor those waiting out retries
            f"tests/test_scoring_e2e.py::{name}"
            for name in (
                "test_score_writes_predictions_scores_report_and_rescoring_is_free",
                "test_paper_profile_with_a_template_file_records_both_and_warns_on_the_tasks_origin",
                "test_unknown_instance_is_an_error_naming_it",
                "test_failed_questions_are_listed_nothing_is_scored_and_a_resume_asks_only_them",
                "test_a_failed_judge_verdict_is_a_failed_question_too",
            )
        ),
    ],
    "tasks/manifest.py": ["tests/test_manifest.py", "tests/test_manifest_units.py"],
    "tasks/chunking.py": [
        "tests/test_chunking.py",
        "tests/test_chunking_units.py",
        "tests/test_chunking_bpe.py",
        "tests/test_chunking_sizing.py",
    ],
    "reference_agent/rewards.py": ["tests/test_rewards.py"],
}
"""The core modules and the tests that are each one's own."""


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", "-")


def work_folder(module: str) -> Path:
    """mutants/<module>/ holding the current sources and tests, its pyproject.toml set to this module."""
    folder = WORK / slug(module)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    settings = tomllib.loads(text)["tool"]["mutmut"]
    for name in [*settings["source_paths"], *settings["also_copy"]]:
        if name == "pyproject.toml":  # written below, set to this module
            continue
        shutil.copytree(
            ROOT / name,
            folder / name,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"),
        )
    settings.update(only_mutate=[module], pytest_add_cli_args_test_selection=TESTS[module])
    table = "[tool.mutmut]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    text = re.sub(r"^\[tool\.mutmut\]\n(?:(?!\[).*\n|\n)*", lambda _: table + "\n", text + "\n", count=1, flags=re.M)
    (folder / "pyproject.toml").write_text(text, encoding="utf-8")
    return folder


def run_module(module: str, max_children: int, timeout: int) -> float:
    """`mutmut run` in the module's work folder; returns the seconds it took (its output: run.log there)."""
    folder = work_folder(module)
    env = {**os.environ, "MEMALPHA_QWEN_BPE_DIR": str(WORK / "qwen-bpe")}  # built once, not per mutant
    started = time.monotonic()
    with open(folder / "run.log", "w", encoding="utf-8") as out:
        command = [str(Path(sys.executable).parent / "mutmut"), "run", "--max-children", str(max_children)]
        done = subprocess.run(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, env=env)
    if done.returncode != 0:
        raise SystemExit(f"mutmut failed on {module} (exit {done.returncode}); see {folder / 'run.log'}")
    return time.monotonic() - started


def outcomes(module: str) -> dict[str, str]:
    """Each mutant of the module and what became of it, from mutmut's record."""
    meta = WORK / slug(module) / "mutants" / f"{module}.meta"
    if not meta.is_file():
        return {}
    from mutmut.stats import status_by_exit_code  # mutmut's own names for its exit codes

    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {name: status_by_exit_code.get(code, f"other ({code})") for name, code in codes.items()}


def summary(module: str, found: dict[str, str], seconds: float | None) -> list:
    counts = Counter(found.values())
    killed = counts["killed"] + counts["timeout"]
    counted = killed + counts["survived"] + counts["no tests"]
    score = f"{100 * killed / counted:.1f}%" if counted else "-"
    time_text = "" if seconds is None else f"{seconds:.0f}"
    return [module, len(found), killed, counts["survived"], counts["no tests"], score, time_text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=list(TESTS), metavar="MODULE", help="default: the core modules")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutant runs (default 2)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per module (default 3600)")
    parser.add_argument("--report-only", action="store_true", help="read the last results, run nothing")
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in TESTS]
    if unknown:
        parser.error(f"not a core module: {', '.join(unknown)} (one of {', '.join(TESTS)})")
    rows, survivors = [], []
    for module in args.modules:
        seconds = None if args.report_only else run_module(module, args.max_children, args.timeout)
        found = outcomes(module)
        rows.append(summary(module, found, seconds))
        survivors += [name for name, status in sorted(found.items()) if status in ("survived", "no tests")]
    print(
        tabulate(
            rows,
            headers=["module", "mutants", "killed", "survived", "no tests", "score", "seconds"],
            tablefmt="github",
        )
    )
    if args.survivors:
        print("\n".join(["", "survivors (`mutmut show NAME` in mutants/<module>/ shows one):", *survivors]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
