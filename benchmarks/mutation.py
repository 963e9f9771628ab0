"""Mutation score of the core modules: mutmut (pinned in the `mutation` extra, configured in pyproject.toml's
[tool.mutmut]) run one module at a time against the focused tests, then each module's score read from
mutmut's own records. docs/testing.md holds the latest figures and what the survivors are.

    MEMALPHA_RAW_DIR=$PWD/../shared/data/raw HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \\
        .venv/bin/python benchmarks/mutation.py [--max-children 2] [--survivors] [MODULE ...]

A mutant is killed when a focused test fails (or times out) with it; the score is killed / (killed +
survived + no tests): a mutant no focused test reaches counts against the module. mutmut runs each
mutant only against the tests that reach its function, in forked workers; mutants/ keeps the results, so
a second run only re-tests what changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
CORE = (
    "benchmark/aggregation.py",
    "benchmark/metrics.py",
    "benchmark/original_metrics.py",
    "benchmark/retrieval.py",
    "tasks/manifest.py",
    "tasks/chunking.py",
    "reference_agent/rewards.py",
)
KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}
SURVIVED = {0: "survived", 5: "no tests", 33: "no tests"}


def run_module(module: str, max_children: int, timeout: int) -> float:
    """`mutmut run` on one module's mutants; returns the seconds it took (its output goes to mutants/)."""
    pattern = module.removesuffix(".py").replace("/", ".") + ".*"
    log = ROOT / "mutants" / f"run-{module.replace('/', '-')}.log"
    log.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        command = [str(Path(sys.executable).parent / "mutmut"), "run", "--max-children", str(max_children), pattern]
        done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"mutmut failed on {module} (exit {done.returncode}); see {log}")
    return time.monotonic() - started


def outcomes(module: str) -> dict[str, str]:
    """Each mutant of the module and what became of it, from mutmut's record."""
    meta = ROOT / "mutants" / f"{module}.meta"
    if not meta.is_file():
        return {}
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {name: KILLED.get(code) or SURVIVED.get(code) or f"other ({code})" for name, code in codes.items()}


def summary(module: str, found: dict[str, str], seconds: float | None) -> list:
    counts = Counter(found.values())
    killed = counts["killed"] + counts["timeout"]
    counted = killed + counts["survived"] + counts["no tests"]
    score = f"{100 * killed / counted:.1f}%" if counted else "-"
    time_text = "" if seconds is None else f"{seconds:.0f}"
    return [module, len(found), killed, counts["survived"], counts["no tests"], score, time_text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=list(CORE), metavar="MODULE", help="default: the core modules")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutant runs (default 2)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per module (default 3600)")
    parser.add_argument("--report-only", action="store_true", help="read the last results, run nothing")
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant")
    args = parser.parse_args(argv)
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
        print("\n".join(["", "survivors (`.venv/bin/mutmut show NAME` shows one):", *survivors]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
