"""`memalpha`: the command line. Sub-command groups come from the packages that own them.

`benchmark` must not import `reference_agent` or `leaderboard`; they (and third-party packages) add
their groups through the `memalpha.commands` entry-point group: a callable taking the sub-parsers.
Registering a group imports only what its options need, so `memalpha --help` and `--version` stay
quick; each command imports its heavy libraries (datasets, numpy, the model backends) when it runs.

Exit codes: 0 success; 1 a runtime failure (a server that does not answer, a file that breaks its
format, an instance or question that failed); 2 a usage error (an unknown name, a bad option value,
a missing flag); 130 interrupted (Ctrl-C; finished outputs are kept).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("memalpha-bench")
    except PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memalpha",
        description=(
            "memalpha-bench: build memory-agent tasks, run agents over them, and score their final "
            "memories through one fixed BM25 + reader pipeline."
        ),
        epilog="Run `memalpha COMMAND --help` for the options of a command. Exit codes: 0 success, 1 runtime "
        "failure, 2 usage error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"memalpha-bench {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from tasks.cli import register as register_tasks

    from .commands import register as register_scoring
    from .commands import register_agents, register_run
    from .export_commands import register as register_export
    from .metric_lines import register as register_metric

    register_tasks(commands)
    register_run(commands)
    register_scoring(commands)
    register_agents(commands)
    register_export(commands)
    register_metric(commands)
    for ep in entry_points(group="memalpha.commands"):
        if ep.name not in commands.choices:
            ep.load()(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tasks.errors import TaskError, UsageError

    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error found here exits with 2 (argparse)
    try:
        return int(args.func(args) or EXIT_OK)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TaskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted; finished outputs are kept", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
