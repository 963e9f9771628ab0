"""Where an LLM plugs into a build: the closed-book filter, keyword extraction, answer shortening.

The task layer only defines the interface and the steps (our own prompts); the scoring harness
provides implementations backed by its reader backends. A build without an LLM skips these steps
and says so in its manifest (`llm_steps`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

Message = dict[str, str]


class BuilderLLM(Protocol):
    """Anything that answers a batch of chat conversations (greedy decoding is expected)."""

    def describe(self) -> dict[str, object]: ...

    def generate(self, conversations: Sequence[list[Message]], *, max_tokens: int) -> list[str]: ...


# The LLM step a metric cannot do without: keyword recall scores against the keyword lists that the
# build extracts; without them the golds are whole summaries. Other LLM steps only filter or shorten.
REQUIRED_STEPS = {"keyword_recall": "keyword_extraction"}


def required_step(metric: str) -> str | None:
    """The LLM step a task with this metric must have had at build time, or None."""
    return REQUIRED_STEPS.get(metric)


def skipped_required_step(manifest: dict) -> str | None:
    """The required LLM step a built task skipped (its manifest says so), or None: such a task cannot
    be scored."""
    step = required_step(manifest.get("metric", ""))
    if step and manifest.get("llm_steps", {}).get(step, {}).get("status") == "skipped":
        return step
    return None


CLOSED_BOOK_SYSTEM = "Answer the question from your own knowledge. Reply with the answer only, as briefly as possible."
KEYWORDS_SYSTEM = (
    "You extract the key content of a summary: the names, places, objects and events a faithful "
    "summary must mention. Reply with one comma-separated line of short keywords (one to three words each)."
)
SHORTEN_SYSTEM = (
    "Rewrite the answer as the few short key phrases (at most three words each) that any correct answer "
    "must contain, separated by semicolons. Reply with that line only."
)
FULL_CONTEXT_SYSTEM = (
    "Answer the question using only the notes given with it. Reply with the answer alone, as briefly as possible."
)

_THINK = re.compile(r"<think>.*?</think>", re.S)


def _clean(text: str) -> str:
    return _THINK.sub("", text).strip()


def closed_book_keep(llm: BuilderLLM, questions: Sequence[str], golds: Sequence[str]) -> list[bool]:
    """True for each question the model cannot answer without the context (gold not in its answer).

    This is what keeps the memory tasks about memory: questions answerable from parametric knowledge
    are dropped.
    """
    convs = [[{"role": "system", "content": CLOSED_BOOK_SYSTEM}, {"role": "user", "content": q}] for q in questions]
    answers = llm.generate(convs, max_tokens=256)
    return [not _mentions(_clean(a), gold) for gold, a in zip(golds, answers, strict=True)]


def _mentions(text: str, gold: str) -> bool:
    """Whole-word, case-insensitive containment: the gold "no" is not found in "not" or "know"."""
    return re.search(rf"(?<!\w){re.escape(gold.strip())}(?!\w)", text, re.I) is not None


def extract_keywords(llm: BuilderLLM, summaries: Sequence[str]) -> list[list[str]]:
    """A keyword list per reference summary (the gold of keyword-recall tasks)."""
    convs = [[{"role": "system", "content": KEYWORDS_SYSTEM}, {"role": "user", "content": s}] for s in summaries]
    out = []
    for reply in llm.generate(convs, max_tokens=512):
        words = [w.strip(" .\"'") for w in _clean(reply).replace("\n", ",").split(",")]
        out.append(list(dict.fromkeys(w for w in words if w)))
    return out


def shorten_answers(llm: BuilderLLM, questions: Sequence[str], answers: Sequence[str]) -> list[list[str]]:
    """Short key phrases per long free-text answer (PerLTQA-style answers)."""
    convs = [
        [
            {"role": "system", "content": SHORTEN_SYSTEM},
            {"role": "user", "content": f"Question: {q}\nAnswer: {a}"},
        ]
        for q, a in zip(questions, answers, strict=True)
    ]
    out = []
    for reply in llm.generate(convs, max_tokens=128):
        parts = [p.strip(" .") for p in _clean(reply).split(";")]
        out.append([p for p in parts if p])
    return out


def full_context_matches(
    llm: BuilderLLM, context: str, questions: Sequence[str], golds: Sequence[Sequence[str]]
) -> list[list[str]]:
    """Per question, the gold parts that the model's answer contains when it reads the whole `context`.

    An empty list means the model cannot answer the question even with everything in front of it, so
    the question cannot measure what a memory kept (PerLTQA: such questions are dropped, and the others
    keep only the gold parts the model found).
    """
    convs = [
        [
            {"role": "system", "content": FULL_CONTEXT_SYSTEM},
            {"role": "user", "content": f"Notes:\n{context}\n\nQuestion: {q}"},
        ]
        for q in questions
    ]
    out = []
    for parts, reply in zip(golds, llm.generate(convs, max_tokens=256), strict=True):
        answer = _clean(reply).lower()
        out.append([p for p in parts if p.lower() in answer])
    return out
