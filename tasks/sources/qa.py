"""Shared steps of the extractive-QA builders (SQuAD, HotpotQA, length scaling)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from .. import wrappers
from ..build import BuildContext
from ..chunking import Chunk, pack, pack_units
from ..llm import closed_book_keep
from ..schema import Question
from .common import answer_in_chunks


@dataclass
class QA:
    question_id: str
    question: str
    answers: list[str]
    question_type: str | None = None


def dialogue_chunks(
    ctx: BuildContext,
    texts: Sequence[str],
    *,
    salt: str,
    min_tokens: int | None = None,
    date_index: Callable[[int], int] = lambda i: i,
    whole: bool = False,
    keep_first_line: bool = False,
) -> list[Chunk]:
    """Pack texts into dialogue-wrapped chunks; sizes drawn uniformly from [min_tokens, chunk_size]
    when `min_tokens` is given (the original's variable chunk sizes), else the full chunk size.

    With `whole`, a text is never split across chunks unless it alone exceeds the chunk size: the drawn
    size is then a target, as in the original, which closed a chunk before the text that would pass it
    (a text over the target fills a chunk alone). `keep_first_line` keeps a title line with its text.
    """
    size_rng = ctx.rng(salt, "sizes")
    sizes: list[int] = []

    def budget(i: int) -> int:
        while len(sizes) <= i:
            sizes.append(size_rng.randint(min_tokens, ctx.chunk_size) if min_tokens else ctx.chunk_size)
        return sizes[i]

    def wrap(i: int, body: str) -> str:
        return wrappers.dialogue(body, wrappers.date_for(date_index(i)), ctx.rng(salt, "wrap", i))

    if whole:
        return pack_units(texts, ctx.counter, budget, limit=ctx.chunk_size, wrap=wrap, keep_first_line=keep_first_line)
    return pack(texts, ctx.counter, budget, wrap=wrap)


def select_questions(
    ctx: BuildContext,
    instance_id: str,
    qas: Sequence[QA],
    chunks: Sequence[str],
    *,
    max_answer_tokens: int | None,
    cap: int | None,
    non_extractive: Collection[str] = (),
) -> list[Question]:
    """The original's question selection, made deterministic.

    Keeps a QA when its first gold answer is short (< `max_answer_tokens`), some gold occurs verbatim in
    a chunk (or is one of `non_extractive`, compared lower-case: HotpotQA's yes/no answers), and (when an
    LLM is configured) the model cannot answer it closed-book; then samples at most `cap` of them,
    keeping their order.
    """
    free = {a.lower() for a in non_extractive}
    kept = [qa for qa in qas if answer_in_chunks(qa.answers, chunks) or any(a.lower() in free for a in qa.answers)]
    if max_answer_tokens is not None and kept:
        lengths = ctx.count_many([qa.answers[0] for qa in kept])
        kept = [qa for qa, n in zip(kept, lengths, strict=True) if n < max_answer_tokens]
    llm = ctx.llm_step("closed_book_filter", "drop questions the reader answers without the context")
    if llm is not None and kept:
        keep = closed_book_keep(llm, [qa.question for qa in kept], [qa.answers[0] for qa in kept])
        kept = [qa for qa, k in zip(kept, keep, strict=True) if k]
    if cap is not None and len(kept) > cap:
        chosen = set(ctx.rng(instance_id, "questions").sample(range(len(kept)), cap))
        kept = [qa for i, qa in enumerate(kept) if i in chosen]
    return [Question(qa.question_id, qa.question, list(qa.answers), qa.question_type) for qa in kept]
