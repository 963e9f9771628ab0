"""The typed, versioned format of a leaderboard results record, its published JSON Schema
(`schema/record.schema.json`) and its validator, which the store applies to every record it reads and
`memalpha leaderboard validate` to a record file.

Format 2 (`leaderboard-record@2`) adds `scores.uncertainty` (standard errors and bootstrap intervals,
`benchmark/aggregation.py`); records of format 1 still load and show none. The scores' pieces are
scores.json's (`benchmark.results_schema`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from benchmark.results_schema import (
    Count,
    Fraction,
    NonNegative,
    Open,
    Sha256,
    Uncertainty,
    check_versioned,
    json_schema,
)

RECORD_FORMAT = "memalpha-bench/leaderboard-record@2"
LEGACY_RECORD_FORMAT = "memalpha-bench/leaderboard-record@1"
RECORD_ID = r"^[a-z0-9-]+$"  # slugs and a digest (submission.record_id): a file name
DATE = r"^\d{4}-\d{2}-\d{2}$"
RECORD_SCHEMA_FILE = Path(__file__).parent / "schema" / "record.schema.json"


class BoardRef(Open):
    kind: Literal["suite", "task"]
    name: str
    profile: str | None = Field(None, description="absent in records written before boards had profiles: v1@1")


class Agent(Open):
    name: str
    version: str


class Contamination(Open):
    possible: bool | None
    reasons: list[str]


class RecordTask(Open):
    """A task's score; a reported record (a paper's number) has no metric, instances or questions."""

    score: Fraction
    competency: str
    metric: str | None
    memory_tokens_mean: NonNegative | None
    instances: Count | None = None
    questions: Count | None = None
    origin: str | None = None


class LegacyRecordScores(Open):
    overall: Fraction
    averages: dict[str, Fraction] | None = None
    competencies: dict[str, Fraction]
    tasks: dict[str, RecordTask]


class RecordScores(LegacyRecordScores):
    uncertainty: Uncertainty


class Memories(Open):
    sha256: Sha256
    bytes: Count
    instances: Count


class LegacyRecord(Open):
    format: Literal["memalpha-bench/leaderboard-record@1"]
    id: str = Field(pattern=RECORD_ID)
    status: Literal["rescored", "reported"]
    submitted: str | None = Field(None, pattern=DATE)
    board: BoardRef
    agent: Agent
    model: str
    parameters: str
    link: str
    contact: str
    license: str
    trained_on: list[str] | None
    description: str | None
    contamination: Contamination
    scores: LegacyRecordScores
    memory_tokens: NonNegative | None
    scorer: dict[str, Any] | None
    task_hashes: dict[str, Sha256] | None
    memories: Memories | None
    source: dict[str, Any] | None
    reported: dict[str, Any] | None


class Record(LegacyRecord):
    format: Literal["memalpha-bench/leaderboard-record@2"]  # type: ignore[assignment]
    scores: RecordScores


RECORD_MODELS: dict[str | None, type[Open]] = {RECORD_FORMAT: Record, LEGACY_RECORD_FORMAT: LegacyRecord}


def check_record(obj: Any, where: str) -> dict[str, Any]:
    """A results record, checked against its format (`where` names it in errors); returns it."""
    return check_versioned(obj, RECORD_MODELS, "results record", where)


def record_schema() -> dict[str, Any]:
    return json_schema(
        RECORD_MODELS,
        f"memalpha-bench leaderboard results record ({RECORD_FORMAT}, or the older {LEGACY_RECORD_FORMAT})",
        "leaderboard/schema/record.schema.json",
    )
