"""Questions the reader or the judge could not answer after every retry: recorded, never scored.

A scoring run with such questions writes them to `RUN/failures.jsonl` (the file is rewritten by
every run, so it lists the failures of the latest one, and removed by a run without any), writes no
scores, and raises QuestionsFailed naming them. Every answer that did arrive is in the response cache,
so running the same command again asks only the failed questions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.atomic import replace_file

from .readers.base import ReaderError, RequestsFailed

FAILURES = "failures.jsonl"
LISTED_IN_MESSAGE = 10


@dataclass(frozen=True)
class QuestionFailure:
    task: str
    instance_id: str
    question_id: str
    phase: str  # "reader" or "judge"
    reason: str

    def line(self) -> dict[str, str]:
        return {
            "task": self.task,
            "instance_id": self.instance_id,
            "question_id": self.question_id,
            "phase": self.phase,
            "reason": self.reason,
        }


class QuestionsFailed(ReaderError):
    """Some questions got no usable answer; nothing was scored."""

    def __init__(self, failures: Sequence[QuestionFailure], total: int, path: Path):
        self.failures = list(failures)
        listed = "\n".join(
            f"  {f.task}/{f.instance_id}/{f.question_id} ({f.phase}): {f.reason}"
            for f in self.failures[:LISTED_IN_MESSAGE]
        )
        more = f"\n  ... and {len(self.failures) - LISTED_IN_MESSAGE} more" if len(failures) > LISTED_IN_MESSAGE else ""
        super().__init__(
            f"{len(self.failures)} of {total} questions got no usable answer after their retries, so nothing was "
            f"scored; all are listed in {path}. Every answer received is in the response cache: run the same "
            f"command again to ask only these.\n{listed}{more}"
        )


def from_requests_failed(items: Sequence[Any], failed: RequestsFailed, phase: str) -> list[QuestionFailure]:
    """The questions behind the failed requests of one phase; `items` are the scorer's QuestionItems in
    the order their requests were sent."""
    return [
        QuestionFailure(
            items[i].record.task, items[i].record.instance_id, items[i].question["question_id"], phase, reason
        )
        for i, reason in failed.failures.items()
    ]


def record(run_dir: Path, failures: Sequence[QuestionFailure], total: int) -> None:
    """Write (or, with no failures, remove) RUN/failures.jsonl; raise QuestionsFailed if any failed."""
    path = run_dir / FAILURES
    if not failures:
        path.unlink(missing_ok=True)
        return
    replace_file(path, (json.dumps(failure.line(), ensure_ascii=False) + "\n" for failure in failures))
    raise QuestionsFailed(failures, total, path)
