"""`memalpha`: the command line. Sub-command groups come from the packages that own them.

`benchmark` must not import `reference_agent` or `leaderboard`; they (and third-party packages) add
their groups through the `memalpha.commands` entry-point group: a callable taking the sub-parsers.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from tasks.build import package_version
from tasks.errors import TaskError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memalpha",
        description=(
            "memalpha-bench: build memory-agent tasks, run agents over them, and score their final "
            "memories through one fixed BM25 + reader pipeline."
        ),
        epilog="Run `memalpha COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"memalpha-bench {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from tasks.cli import register as register_tasks

    from .commands import register as register_scoring
    from .commands import register_run
    from .export_commands import register as register_export
    from .metric_lines import register as register_metric

    register_tasks(commands)
    register_run(commands)
    register_scoring(commands)
    register_export(commands)
    register_metric(commands)
    for ep in entry_points(group="memalpha.commands"):
        if ep.name not in commands.choices:
            ep.load()(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TaskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished outputs are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
