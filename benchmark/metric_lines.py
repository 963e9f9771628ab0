"""`memalpha metric`: score (prediction, golds) pairs of any origin with a profile's metrics.

Input: JSON lines `{"task", "prediction", "golds"}` (a file, or stdin); output: each line as given plus
`score` and `scorer` (the id of the metric that scored it), one JSON line each, in order. The score is
computed by exactly the code `memalpha score` uses (`TaskScorer.score`, `Judge.verdict`), so a
LongMemEval-style hypotheses file or the outputs of another harness can be scored as our runs are.

- `golds`: a list of acceptable answers (strings; MemoryAgentBench-style lists of lists are accepted);
  a single string is one gold. For the Mem-alpha scorers a one-element list stands for the one string
  the original received (a `;`-joined PerLTQA answer, a `, `-joined keyword list).
- `prediction`: the reader's reply as it came (a `<think>` block is handled as the profile handles it).
- LLM-judged tasks (lme_train, longmemeval_s) cannot be scored without a judge model: the line must
  carry the judge's reply as `judge_reply`, and the score is the profile's verdict on it.

A bad line stops the command with its file, line and field; the lines before it are already written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TextIO

from tasks.errors import TaskError, quoted
from tasks.strict_json import JsonProblem, decode, location, record_lines

from .original_metrics import OriginalScorerError
from .profiles import DEFAULT_PROFILE, Profile, ProfileError, get_profile, profile_ids


class MetricInputError(TaskError):
    """A line of `memalpha metric` input that cannot be scored; names the file, line and field."""

    def __init__(self, source: str, line: int, field: str | None, message: str):
        super().__init__(f"{location(source, line, field or '')}: {message}")


def _golds(value: Any) -> list[Any] | None:
    """The golds as a list, or None when they are not strings / lists of strings."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    flat = all(isinstance(g, str) for g in value)
    nested = all(isinstance(g, list) and all(isinstance(x, str) for x in g) for g in value)
    return value if flat or nested else None


def score_line(profile: Profile, obj: Any, source: str = "<stdin>", line: int = 1) -> dict[str, Any]:
    """One input object with its `score` and `scorer`; MetricInputError when it cannot be scored."""

    def fail(field: str | None, message: str) -> MetricInputError:
        return MetricInputError(source, line, field, message)

    if not isinstance(obj, dict):
        raise fail(None, f"expected a JSON object, found {type(obj).__name__}")
    task = obj.get("task")
    if not isinstance(task, str):
        raise fail("task", "missing, or not a string")
    try:
        scorer = profile.scorer_for(task)
    except ProfileError as exc:
        raise fail("task", str(exc)) from None
    if scorer.judged:
        reply = obj.get("judge_reply")
        if not isinstance(reply, str):
            raise fail(
                "judge_reply",
                f"task {quoted(task)} is scored by an LLM judge: give the judge's reply to this prediction as "
                f'"judge_reply" ({profile.judge.description})',
            )
        return {**obj, "score": profile.judge.verdict(reply), "scorer": profile.judge.id}
    prediction = obj.get("prediction")
    if not isinstance(prediction, str):
        raise fail("prediction", "missing, or not a string")
    golds = _golds(obj.get("golds"))
    if golds is None:
        raise fail("golds", "expected a non-empty list of strings (or of lists of strings), or one string")
    try:
        score = scorer.score(prediction, golds)
    except OriginalScorerError as exc:
        raise fail("golds", f"the original scorer {scorer.id} fails on this input: {exc}") from None
    except ValueError as exc:
        raise fail("golds", str(exc)) from None
    return {**obj, "score": score, "scorer": scorer.id}


def score_lines(profile: Profile, stream: IO[bytes], source: str) -> Iterator[dict[str, Any]]:
    """Each non-blank line scored, in order (lines end at "\n" only, as in every JSON-lines file we read)."""
    for number, raw in record_lines(stream):
        try:
            obj = decode(raw)
        except JsonProblem as problem:
            raise MetricInputError(source, number, problem.field or None, problem.message) from None
        yield score_line(profile, obj, source, number)


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "metric",
        help="score JSON lines of {task, prediction, golds} with a profile's metrics",
        description=__doc__.split("\n\n")[1] + " LLM-judged tasks need the judge's reply in `judge_reply`.",
    )
    p.add_argument("file", nargs="?", type=Path, metavar="FILE", help="JSON lines to score (default: stdin)")
    p.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"scorer profile, NAME or NAME@VERSION (default {DEFAULT_PROFILE}); one of {', '.join(profile_ids())}",
    )
    p.set_defaults(func=cmd_metric)


def cmd_metric(args: argparse.Namespace, out: TextIO | None = None) -> int:
    profile = get_profile(args.profile)
    out = out or sys.stdout
    if args.file is None:
        return _write(score_lines(profile, sys.stdin.buffer, "<stdin>"), out)
    try:
        f = open(args.file, "rb")  # closed below; an open error is reported on its own
    except OSError as exc:
        raise TaskError(f"{args.file}: cannot read ({exc})") from exc
    with f:
        return _write(score_lines(profile, f, str(args.file)), out)


def _write(scored: Iterable[dict[str, Any]], out: TextIO) -> int:
    for obj in scored:
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        out.flush()
    return 0
