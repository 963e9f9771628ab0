"""`leaderboard add`: re-score a validated submission's memories with the pinned scorer and write one
results record. The submitted file is copied into a temporary run folder (the submission folder is
only read), scored there by benchmark.scoring with the profile of the board it goes on, and the record
is written last, atomically.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.profiles import Profile, get_profile
from benchmark.readers.base import Reader
from benchmark.scoring import ScorerConfig, score_run
from tasks.build import file_sha256
from tasks.errors import TaskError
from tasks.tokenization import TokenCounter

from .store import RECORD_FORMAT, ResultsStore
from .submission import MEMORIES_FILE
from .validate import ValidatedSubmission

PINNED = ScorerConfig()
"""The numbers every re-scored entry uses (the paper's: top-k 20, 30k-token budget, 2048 answer tokens);
the sampling is the board profile's."""


def pinned(profile: Profile) -> ScorerConfig:
    """The profile's settings with the pinned numbers."""
    return replace(
        profile.defaults,
        top_k=PINNED.top_k,
        budget_tokens=PINNED.budget_tokens,
        sampling=replace(profile.defaults.sampling, max_tokens=PINNED.sampling.max_tokens),
    )


TASK_FIELDS = ("score", "metric", "origin", "competency", "instances", "questions", "memory_tokens_mean")


def build_record(validated: ValidatedSubmission, scores: dict[str, Any]) -> dict[str, Any]:
    """The results record of a re-scored submission."""
    meta = validated.meta
    tasks = {name: {k: t[k] for k in TASK_FIELDS} for name, t in sorted(scores["tasks"].items())}
    return {
        "format": RECORD_FORMAT,
        "id": meta.record_id,
        "status": "rescored",
        "board": {"kind": meta.board.kind, "name": meta.board.name, "profile": meta.board.profile},
        **meta.to_json(),
        "contamination": validated.contamination.to_json(),
        "scores": {
            "overall": scores["overall"],
            "averages": scores["averages"],
            "competencies": scores["competencies"],
            "tasks": tasks,
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
    config: ScorerConfig | None = None,
    show_progress: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Score the submission's memories on `data_dir` with its board's profile (`config` defaults to the
    profile's, with the pinned numbers) and add the record to `store`; returns (record, path).

    Any failure (the file changed since validation, a reader error, a duplicate) leaves the store as it was.
    """
    profile = get_profile(validated.meta.board.profile)
    if not validated.checked_against_data:
        raise TaskError(f"{validated.path}: validate against the task data (--data) before adding")
    with tempfile.TemporaryDirectory(prefix="memalpha-leaderboard-") as tmp:
        run_dir = Path(tmp)
        shutil.copyfile(validated.memories_path, run_dir / MEMORIES_FILE)
        if file_sha256(run_dir / MEMORIES_FILE) != validated.memories_sha256:
            raise TaskError(f"{validated.memories_path}: changed since it was validated; validate it again")
        result = score_run(
            run_dir,
            data_dir,
            reader,
            counter=counter,
            config=config or pinned(profile),
            judge_reader=judge_reader,
            show_progress=show_progress,
            profile=profile,
        )
    if result.scores["task_hashes"] != validated.meta.task_hashes:
        raise TaskError(
            f"{data_dir}: not the task versions the submission names (task_hashes); "
            "use the data it was validated against"
        )
    record = build_record(validated, result.scores)
    return record, store.add(record)
