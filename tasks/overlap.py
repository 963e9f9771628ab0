"""`memalpha tasks overlap`: questions and context passages two built tasks share.

Passages are the lines of the chunks (long lines split into sentences), normalised, minus the wrapper
text our builders add, so the same source text is found whichever task, chunking or wrapper carries it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chunking import split_sentences
from .manifest import load_built
from .wrappers import BOILERPLATE_LINES, BOILERPLATE_PATTERNS

MIN_PASSAGE_CHARS = 20
WHOLE_LINE_CHARS = 200
_SPACE = re.compile(r"\s+")
_ROLE = re.compile(r"^<[^>\n]{1,40}>\s*")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def _content_lines(chunk: str) -> Iterable[str]:
    for line in chunk.splitlines():
        line = line.strip()
        if not line or line in BOILERPLATE_LINES or any(p.match(line) for p in BOILERPLATE_PATTERNS):
            continue
        line = _ROLE.sub("", line)
        if line and line not in BOILERPLATE_LINES:
            yield line


def passages(rows: Iterable[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for row in rows:
        for chunk in row["chunks"]:
            for line in _content_lines(chunk):
                # short lines (an example, a turn) are compared whole: splitting "What is Dr. X?" at
                # "Dr." would make fragments that many unrelated lines share
                for sentence in split_sentences(line) if len(line) > WHOLE_LINE_CHARS else (line,):
                    norm = normalise(sentence)
                    if len(norm) >= MIN_PASSAGE_CHARS:
                        out.add(norm)
    return out


def questions(rows: Iterable[dict[str, Any]]) -> set[str]:
    return {normalise(q["question"]) for row in rows for q in row["questions"]}


@dataclass
class Overlap:
    a: str
    b: str
    questions_a: int
    questions_b: int
    shared_questions: list[str]
    passages_a: int
    passages_b: int
    shared_passages: list[str]

    def as_dict(self, examples: int = 5) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "questions": {
                "a": self.questions_a,
                "b": self.questions_b,
                "shared": len(self.shared_questions),
                "examples": self.shared_questions[:examples],
            },
            "passages": {
                "a": self.passages_a,
                "b": self.passages_b,
                "shared": len(self.shared_passages),
                "examples": self.shared_passages[:examples],
            },
        }


def _rows(path: Path, split: str | None) -> tuple[str, list[dict[str, Any]]]:
    data, manifest = load_built(path)
    splits = [split] if split else list(data)
    rows = [r for s in splits if s in data for r in data[s].to_list()]
    label = f"{manifest['task']}" + (f"/{split}" if split else "")
    return label, rows


def overlap(a: str | Path, b: str | Path, *, split_a: str | None = None, split_b: str | None = None) -> Overlap:
    """Shared questions and passages of two built tasks (all splits, or the ones named)."""
    label_a, rows_a = _rows(Path(a), split_a)
    label_b, rows_b = _rows(Path(b), split_b)
    qa, qb = questions(rows_a), questions(rows_b)
    pa, pb = passages(rows_a), passages(rows_b)
    return Overlap(label_a, label_b, len(qa), len(qb), sorted(qa & qb), len(pa), len(pb), sorted(pa & pb))
