"""Start-up time of the `memalpha` command, against the interpreter's own start and a `datasets` import.

Run by hand (figures go into docs/performance.md):

    python benchmarks/bench_cli_startup.py [--repeat 10] [--baseline-src DIR]

Each command runs as a fresh process (`python -m benchmark ...`, the console script's code path), so
the figure is what a user waits for. Anchors measured in the same run: `python -c pass` (the floor)
and `python -c "import datasets"` (what every command paid before imports were made lazy). With
`--baseline-src DIR` (e.g. `git archive <commit> | tar -x -C DIR`), `--version` and `--help` of that
source tree are timed too, in the same run, through the same interpreter and packages.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "anchor: python -c pass": [sys.executable, "-c", "pass"],
    "anchor: python -c 'import datasets'": [sys.executable, "-c", "import datasets"],
    "memalpha --version": [sys.executable, "-m", "benchmark", "--version"],
    "memalpha --help": [sys.executable, "-m", "benchmark", "--help"],
    "memalpha eval --help": [sys.executable, "-m", "benchmark", "eval", "--help"],
    "memalpha agents list": [sys.executable, "-m", "benchmark", "agents", "list"],
}


def wall_seconds(command: list[str], env: dict[str, str] | None = None) -> float:
    """One run, from a neutral folder: `python -m` would otherwise import the project from the current
    folder, ahead of PYTHONPATH."""
    started = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tempfile.gettempdir()
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--baseline-src", help="another source tree of the project, timed beside this one")
    args = parser.parse_args()
    runs = [(name, command, None) for name, command in COMMANDS.items()]
    if args.baseline_src:
        env = {**os.environ, "PYTHONPATH": args.baseline_src}
        for flag in ("--version", "--help"):
            runs.append((f"baseline: memalpha {flag}", [sys.executable, "-m", "benchmark", flag], env))
    print("| command | median seconds | min | max |")
    print("|---|---|---|---|")
    for name, command, env in runs:
        wall_seconds(command, env)  # warm the file cache
        times = [wall_seconds(command, env) for _ in range(args.repeat)]
        print(f"| `{name}` | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |")


if __name__ == "__main__":
    main()
