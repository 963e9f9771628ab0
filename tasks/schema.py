"""The uniform task schema: one row per instance, the same for every source (see DESIGN.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Features

COMPETENCIES = ("AR", "TTL", "LRU", "CR")


@cache
def features() -> Features:
    """The `datasets.Features` of a task row. Built on first use: importing `datasets` takes about a
    second, which every `memalpha` command would otherwise pay, `--help` included."""
    from datasets import Features, List, Value

    question = {
        "question_id": Value("string"),
        "question": Value("string"),
        "answers": List(Value("string")),
        "question_type": Value("string"),
        "question_date": Value("string"),
    }
    return Features(
        {
            "instance_id": Value("string"),
            "task": Value("string"),
            "competency": Value("string"),
            "chunks": List(Value("string")),
            "questions": List(question),
            "context_tokens": Value("int64"),
            "metadata": Value("string"),
        }
    )


def __getattr__(name: str) -> Any:
    """`FEATURES`, the same as `features()`, for code that imports the constant."""
    if name == "FEATURES":
        return features()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Question:
    question_id: str
    question: str
    answers: list[str]
    question_type: str | None = None
    question_date: str | None = None

    def to_row(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "question": self.question,
            "answers": list(self.answers),
            "question_type": self.question_type,
            "question_date": self.question_date,
        }


@dataclass
class Instance:
    """What a builder produces; the build step adds task, competency and token counts."""

    instance_id: str
    chunks: list[str]
    questions: list[Question]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_row(self, task: str, competency: str, context_tokens: int) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "task": task,
            "competency": competency,
            "chunks": list(self.chunks),
            "questions": [q.to_row() for q in self.questions],
            "context_tokens": int(context_tokens),
            "metadata": json.dumps(self.metadata, sort_keys=True, ensure_ascii=False),
        }


def row_problems(row: dict[str, Any]) -> list[tuple[str, str]]:
    """Every way a row breaks the schema, as (field, message) pairs; empty when the row is valid."""
    problems: list[tuple[str, str]] = []

    def text(name: str, value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            problems.append((name, "must be a non-empty string"))

    text("instance_id", row.get("instance_id"))
    text("task", row.get("task"))
    if row.get("competency") not in COMPETENCIES:
        problems.append(("competency", f"must be one of {', '.join(COMPETENCIES)}"))
    chunks = row.get("chunks")
    if not isinstance(chunks, list) or not chunks:
        problems.append(("chunks", "must be a non-empty list of strings"))
    else:
        for i, chunk in enumerate(chunks):
            if not isinstance(chunk, str) or not chunk.strip():
                problems.append((f"chunks[{i}]", "must be a non-empty string"))
    questions = row.get("questions")
    if not isinstance(questions, list) or not questions:
        problems.append(("questions", "must be a non-empty list"))
    else:
        seen: set[str] = set()
        for i, q in enumerate(questions):
            where = f"questions[{i}]"
            if not isinstance(q, dict):
                problems.append((where, "must be an object"))
                continue
            qid = q.get("question_id")
            if not isinstance(qid, str) or not qid:
                problems.append((f"{where}.question_id", "must be a non-empty string"))
            elif qid in seen:
                problems.append((f"{where}.question_id", f"duplicate id {qid!r}"))
            else:
                seen.add(qid)
            if not isinstance(q.get("question"), str) or not q["question"].strip():
                problems.append((f"{where}.question", "must be a non-empty string"))
            answers = q.get("answers")
            if (
                not isinstance(answers, list)
                or not answers
                or not all(isinstance(a, str) and a.strip() for a in answers)
            ):
                problems.append((f"{where}.answers", "must be a non-empty list of non-empty strings"))
    tokens = row.get("context_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens <= 0:
        problems.append(("context_tokens", "must be a positive integer"))
    try:
        meta = json.loads(row.get("metadata") or "")
        if not isinstance(meta, dict):
            problems.append(("metadata", "must be a JSON object"))
    except (TypeError, json.JSONDecodeError) as exc:
        problems.append(("metadata", f"must be a JSON object ({exc})"))
    return problems
