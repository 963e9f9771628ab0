"""`leaderboard add`: re-score a validated submission's memories with the scorer its board pins and write
one results record. The submitted file is copied into a temporary run folder (the submission folder is
only read; the folder goes on every exit path, see scratch.py), scored there by benchmark.scoring with the
board's pinned scorer, and the record is written last, atomically.
"""

from __future__ import annotations

import datetime
import shutil
import statistics
from pathlib import Path
from typing import Any

from benchmark.profiles import get_profile
from benchmark.readers.base import Reader
from benchmark.scoring import expected_scorer_record, score_run
from tasks.build import file_sha256
from tasks.errors import TaskError
from tasks.tokenization import TokenCounter

from .boards import Board
from .pins import PinnedScorer
from .record_schema import RECORD_FORMAT
from .scratch import scratch_dir
from .store import ResultsStore, StoreError
from .submission import MEMORIES_FILE
from .validate import ValidatedSubmission

TASK_FIELDS = ("score", "metric", "origin", "competency", "instances", "questions", "memory_tokens_mean")


def today() -> str:
    """The UTC date, ISO 8601: a record's submission date."""
    return datetime.datetime.now(datetime.UTC).date().isoformat()


def build_record(validated: ValidatedSubmission, scores: dict[str, Any], submitted: str) -> dict[str, Any]:
    """The results record of a re-scored submission, added on the date `submitted`."""
    meta = validated.meta
    tasks = {name: {k: t[k] for k in TASK_FIELDS} for name, t in sorted(scores["tasks"].items())}
    return {
        "format": RECORD_FORMAT,
        "id": meta.record_id,
        "status": "rescored",
        "submitted": submitted,
        "board": {"kind": meta.board.kind, "name": meta.board.name, "profile": meta.board.profile},
        **meta.to_json(),
        "contamination": validated.contamination.to_json(),
        "scores": {
            "overall": scores["overall"],
            "averages": scores["averages"],
            "competencies": scores["competencies"],
            "tasks": tasks,
            "uncertainty": scores["uncertainty"],
        },
        "memory_tokens": round(statistics.fmean(t["memory_tokens_mean"] for t in tasks.values()), 2),
        "scorer": scores["scorer"],
        "task_hashes": scores["task_hashes"],
        "memories": {
            "sha256": validated.memories_sha256,
            "bytes": validated.memories_bytes,
            "instances": validated.instances,
        },
        "source": None,
        "reported": None,
    }


def add_submission(
    validated: ValidatedSubmission,
    data_dir: str | Path,
    store: ResultsStore,
    reader: Reader,
    *,
    counter: TokenCounter,
    judge_reader: Reader | None = None,
    show_progress: bool = False,
    scratch: str | Path | None = None,
) -> tuple[dict[str, Any], Path]:
    """Score the submission's memories on `data_dir` with the scorer its board pins in `store` and add the
    record there; returns (record, path). The reader, judge and counter must be the pinned ones (checked
    before any reader call); the memories are scored in a temporary folder under `scratch` (default: the
    system's temp folder).

    Any failure (no pin, another scorer, the file changed since validation, a reader error, a duplicate)
    leaves the store as it was.
    """
    board = validated.meta.board
    profile = get_profile(board.profile)
    if not validated.checked_against_data:
        raise TaskError(f"{validated.path}: validate against the task data (--data) before adding")
    pin = store.pinned(board)
    if pin is None:
        raise StoreError(
            f"{store.root}: board {board.name} ({board.profile}) has no pinned scorer; its publisher sets it once "
            f"with `memalpha leaderboard init-board --{board.kind} {board.name} --profile {board.profile} "
            f"--results {store.root} --reader ... --model ...`"
        )
    check_readers(pin, board, reader, judge_reader, counter, str(validated.path))
    with scratch_dir(scratch) as run_dir:
        shutil.copyfile(validated.memories_path, run_dir / MEMORIES_FILE)
        if file_sha256(run_dir / MEMORIES_FILE) != validated.memories_sha256:
            raise TaskError(f"{validated.memories_path}: changed since it was validated; validate it again")
        result = score_run(
            run_dir,
            data_dir,
            reader,
            counter=counter,
            config=pin.config(),
            judge_reader=judge_reader,
            show_progress=show_progress,
            profile=profile,
        )
    if result.scores["task_hashes"] != validated.meta.task_hashes:
        raise TaskError(
            f"{data_dir}: not the task versions the submission names (task_hashes); "
            "use the data it was validated against"
        )
    record = build_record(validated, result.scores, today())
    return record, store.add(record)


def check_readers(
    pin: PinnedScorer, board: Board, reader: Reader, judge_reader: Reader | None, counter: TokenCounter, where: str
) -> None:
    """Refuse (ScorerMismatchError), before any reader call, a reader, judge or counter other than the pinned
    ones: the scorer a run would record (benchmark.scoring.scorer_record) must be the pin's."""
    expected = expected_scorer_record(
        reader, judge_reader, board.tasks, counter, config=pin.config(), profile=pin.profile
    )
    pin.check(expected, where, board)
