"""The typed, versioned format of `scores.json`, its published JSON Schema and its validator.

`scores.json` carries `"format": "memalpha-bench/scores@2"` (`SCORES_FORMAT`). A file without a
`format` key was written before the key existed (format 1: no `uncertainty`); it still loads, and
shows no standard errors or intervals. A format this version does not know is refused with a message
naming it. Readers ignore keys they do not know; a change of a known key's meaning or type is a new
format version.

The models are pydantic's, strict (no string-to-number coercion, no booleans for numbers); the JSON
Schema published as `benchmark/schema/scores.schema.json` is generated from them
(`memalpha leaderboard schema scores` prints it), and a test holds the committed file to the models.
Leaderboard records reuse the pieces here (`leaderboard/record_schema.py`).
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tasks.errors import TaskError
from tasks.strict_json import load_file

SCORES_FORMAT = "memalpha-bench/scores@2"
LEGACY_SCORES = "memalpha-bench/scores@1"
"""How messages name a scores.json without a `format` key (written before it had one)."""
SCHEMA_DIR = Path(__file__).parent / "schema"
SCORES_SCHEMA_FILE = SCHEMA_DIR / "scores.schema.json"
SCHEMA_BASE = "https://github.com/memalpha-bench/memalpha-bench/raw/main/"
MAX_SHOWN = 20

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Count = Annotated[int, Field(ge=0)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Interval = Annotated[list[Fraction], Field(min_length=2, max_length=2, description="[low, high]")]


class ResultsFormatError(TaskError):
    """A scores.json or results record that is not in a format we read; the message names the file and the
    fields."""


class Open(BaseModel):
    """A JSON object whose known keys are typed; unknown keys are kept and ignored (later versions add)."""

    model_config = ConfigDict(extra="allow", strict=True)


class Estimate(Open):
    """The uncertainty of one score: its standard error and its bootstrap interval [low, high]; null where
    there is none (a task of one instance, numbers reported without their instances)."""

    se: NonNegative | None
    ci: Interval | None


class Uncertainty(Open):
    """Standard errors and intervals mirroring the scores (`benchmark/aggregation.py` says how)."""

    standard_error: str = Field(description="how the standard errors were computed")
    interval: dict[str, Any] | None = Field(description="the bootstrap's settings; null: no intervals")
    overall: Estimate
    averages: dict[str, Estimate]
    competencies: dict[str, Estimate]
    tasks: dict[str, Estimate]


class TaskScore(Open):
    score: Fraction
    metric: str
    competency: str
    instances: Count
    questions: Count
    memory_tokens_mean: NonNegative
    missing_instances: list[str]


class CurrentTaskScore(TaskScore):
    origin: str | None = Field(description="how the task was built: hub, raw or release")


class Scorer(Open):
    version: str
    aggregation: str


class CurrentScorer(Scorer):
    profile: str
    questions_per_instance: Annotated[int, Field(ge=1)] | None = Field(
        None, description="a smoke run: only the first N questions of each instance were asked; absent: all"
    )


class RunAgent(Open):
    """The agent that wrote the memories, as the run's config.json records it."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class Run(Open):
    """What was scored (`benchmark.report.run_provenance`)."""

    memories_sha256: Sha256
    agent: RunAgent | None = Field(description="null: the memories were not written by `memalpha run`")


class LegacyScores(Open):
    """scores.json before the `format` key (format 1)."""

    format: None = None
    overall: Fraction
    averages: dict[str, Fraction] | None = None
    competencies: dict[str, Fraction]
    tasks: dict[str, TaskScore]
    scorer: Scorer
    task_hashes: dict[str, Sha256]


class Scores(Open):
    """scores.json, format 2: the scores, their uncertainty, the scorer and the task versions."""

    format: Literal["memalpha-bench/scores@2"]
    overall: Fraction = Field(description="averages[the profile's first rule]")
    averages: dict[str, Fraction]
    competencies: dict[str, Fraction]
    tasks: dict[str, CurrentTaskScore]
    uncertainty: Uncertainty
    scorer: CurrentScorer
    task_hashes: dict[str, Sha256]
    run: Run
    warnings: list[str]


SCORES_MODELS: dict[str | None, type[Open]] = {SCORES_FORMAT: Scores, None: LegacyScores}


def problems(error: ValidationError) -> list[str]:
    """Each problem of a pydantic error as 'field a.b.c: message'."""
    out = []
    for e in error.errors(include_url=False):
        where = ".".join(str(part) for part in e["loc"]) or "<document>"
        out.append(f"field {where}: {e['msg']}")
    return out


def refuse(where: str, found: list[str]) -> ResultsFormatError:
    shown = "\n".join(f"  - {p}" for p in found[:MAX_SHOWN])
    more = f"\n  ... and {len(found) - MAX_SHOWN} more" if len(found) > MAX_SHOWN else ""
    return ResultsFormatError(f"{where}: {len(found)} problem(s):\n{shown}{more}")


def check_versioned(obj: Any, models: Mapping[str | None, type[Open]], what: str, where: str) -> dict[str, Any]:
    """Validate `obj` against the model of its `format` (None: no format key); returns `obj` itself."""
    if not isinstance(obj, dict):
        raise ResultsFormatError(f"{where}: not a {what} (a JSON object expected, found {type(obj).__name__})")
    fmt = obj.get("format")
    model = models.get(fmt) if isinstance(fmt, str | None) else None
    if model is None:
        known = ", ".join(repr(k) for k in models if k is not None)
        raise ResultsFormatError(
            f"{where}: field format: {fmt!r} is not a {what} format this version reads ({known}); "
            "written by a newer memalpha-bench?"
        )
    try:
        model.model_validate(obj)
    except ValidationError as exc:
        raise refuse(where, problems(exc)) from None
    return obj


def check_scores(obj: Any, where: str) -> dict[str, Any]:
    """A scores.json document, checked against its format (`where` names it in errors)."""
    return check_versioned(obj, SCORES_MODELS, "scores.json", where)


def read_scores(path: str | Path) -> dict[str, Any]:
    """A run's scores.json, checked; a file in the format before `format` existed loads as it is."""
    path = Path(path)
    return check_scores(load_file(path, "scores.json"), str(path))


def json_schema(models: Mapping[str | None, type[Open]], title: str, file_name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of every format version in `models`, newest first."""
    adapter: TypeAdapter[Any] = TypeAdapter(functools.reduce(operator.or_, models.values()))
    schema = adapter.json_schema(ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE + file_name,
        "title": title,
        **schema,
    }


def schema_text(schema: dict[str, Any]) -> str:
    """A schema file's text: sorted keys, ASCII, so that it is stable and diffable."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def scores_schema() -> dict[str, Any]:
    return json_schema(
        SCORES_MODELS,
        f"memalpha-bench scores.json ({SCORES_FORMAT}, or format 1 without the key)",
        "benchmark/schema/scores.schema.json",
    )
