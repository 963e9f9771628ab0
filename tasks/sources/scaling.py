"""Length scaling: the same SQuAD questions over haystacks of 8k to 512k tokens.

One instance per length. The haystack holds the gold paragraphs of `questions` SQuAD validation
questions, spread evenly through padding paragraphs, up to `target_tokens` tokens of chunks (wrappers
included, never over). Questions, gold paragraphs and the padding order are drawn once for the whole
suite, not per length, so a longer haystack holds every paragraph of a shorter one.

Padding comes from the other validation paragraphs and, once those run out, from the SQuAD train split
(hub) or `train*.json` files (raw folder); questions come from validation only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import wrappers
from ..build import BuildContext
from ..chunking import Chunk, split_sentences
from ..errors import BuildError
from ..schema import Instance, Question
from .common import answer_in_chunks
from .qa import QA, dialogue_chunks
from .squad import Paragraph, is_train_file, load_paragraphs

MAX_ANSWER_TOKENS = 5  # the first gold answer must be shorter, as in the squad task


@dataclass
class Pool:
    """Paragraph texts in a fixed order, with their token counts."""

    texts: list[str]
    tokens: list[int]


def suite_rng(ctx: BuildContext, *salt: object) -> random.Random:
    """A generator shared by every length of the suite. `ctx.rng` salts with the task name, which holds
    the length, so it would draw different questions and padding at each length."""
    return random.Random(":".join(map(str, (ctx.seed, "length-scaling", *salt))))


def read_paragraphs(ctx: BuildContext, split: str, files: list[Path]) -> list[Paragraph]:
    """Distinct SQuAD paragraphs of one split; among raw `files`, those named `train*` are the train split.

    A repeated paragraph text is kept once, with all its questions (as the hub rows give it).
    """
    return load_paragraphs(ctx, split, [p for p in files if is_train_file(p) == (split == "train")])


def _findable_qa(paragraph: Paragraph, answer_tokens: dict[str, int]) -> QA | None:
    """The paragraph's first question with a short first answer that lies inside one sentence (so that
    no chunk boundary can cut it)."""
    sentences = split_sentences(paragraph.context)
    for qa in paragraph.qas:
        if answer_tokens[qa.answers[0]] < MAX_ANSWER_TOKENS and any(a in s for a in qa.answers for s in sentences):
            return qa
    return None


def pick_gold(ctx: BuildContext, paragraphs: list[Paragraph], tokens: list[int], n: int) -> list[tuple[int, QA]]:
    """`n` (paragraph index, question) pairs: the shortest paragraphs with a findable question, in a
    seeded order. Short gold paragraphs leave room for padding even in the 8k haystack."""
    firsts = list(dict.fromkeys(qa.answers[0] for p in paragraphs for qa in p.qas))
    answer_tokens = dict(zip(firsts, ctx.count_many(firsts), strict=True))
    order = list(range(len(paragraphs)))
    suite_rng(ctx, "gold").shuffle(order)
    candidates = [(i, qa) for i in order if (qa := _findable_qa(paragraphs[i], answer_tokens))]
    if len(candidates) < n:
        raise BuildError(
            f"{ctx.spec.name}: only {len(candidates)} SQuAD validation paragraphs have a "
            f"question with a short answer, {n} are needed"
        )
    # sorted() is stable: paragraphs of equal length keep their seeded order
    shortest = {i for i, _ in sorted(candidates, key=lambda c: tokens[c[0]])[:n]}
    return [(i, qa) for i, qa in candidates if i in shortest]


def layout(gold: Sequence[int], padding: Sequence[int]) -> list[int]:
    """Haystack order: the padding in order, with gold paragraph i at slot (2i+1)·L/(2·G)."""
    size = len(gold) + len(padding)
    slots = {(2 * i + 1) * size // (2 * len(gold)): g for i, g in enumerate(gold)}
    rest = iter(padding)
    return [slots[pos] if pos in slots else next(rest) for pos in range(size)]


class Haystack:
    """Packs the gold paragraphs with the first n padding paragraphs, remembering every size tried."""

    def __init__(self, ctx: BuildContext, pool: Pool, gold: list[int], padding: list[int]):
        self.ctx, self.pool, self.gold, self.padding = ctx, pool, gold, padding
        self.tried: dict[int, tuple[list[int], list[Chunk], int]] = {}

    def pack(self, n: int) -> int:
        if n not in self.tried:
            order = layout(self.gold, self.padding[:n])
            chunks = dialogue_chunks(self.ctx, [self.pool.texts[i] for i in order], salt="haystack")
            self.tried[n] = (order, chunks, sum(self.ctx.count_many([c.text for c in chunks])))
        return self.tried[n][2]

    def fit(self, target: int) -> int:
        """The largest n whose haystack stays within `target` tokens (-1 when even n = 0 is over).

        A bracketing search: the next guess closes the remaining gap at the mean paragraph size, and
        falls back to bisection if guessing does not converge quickly.
        """
        mean = sum(self.pool.tokens) / len(self.pool.tokens)
        lo, hi = -1, len(self.padding) + 1
        guess, tries = self._estimate(target), 0
        while hi - lo > 1:
            total = self.pack(guess)
            if total <= target:
                lo = guess
            else:
                hi = guess
            tries += 1
            guess = guess + int((target - total) / mean) if tries < 8 else (lo + hi) // 2
            guess = min(max(guess, lo + 1), hi - 1)
        return lo

    def _estimate(self, target: int) -> int:
        """Padding count whose paragraph tokens, plus wrapper overhead, about reach `target`."""
        overhead = self.ctx.counter.count(wrappers.dialogue("", wrappers.date_for(0), random.Random(0)))
        room = target * (1 - overhead / self.ctx.chunk_size) - sum(self.pool.tokens[i] for i in self.gold)
        n = 0
        while n < len(self.padding) and room >= self.pool.tokens[self.padding[n]]:
            room -= self.pool.tokens[self.padding[n]]
            n += 1
        return n


def _with_train(ctx: BuildContext, files: list[Path], pool: Pool, padding: list[int], target: int) -> None:
    """Append the shuffled train paragraphs to the padding when validation alone cannot fill `target`."""
    no_train = ctx.origin == "raw" and not any(is_train_file(p) for p in files)
    if sum(pool.tokens) >= target or no_train:
        return
    known = set(pool.texts)
    extra = [p.context for p in read_paragraphs(ctx, "train", files) if p.context not in known]
    suite_rng(ctx, "train padding").shuffle(extra)
    start = len(pool.texts)
    pool.texts.extend(extra)
    pool.tokens.extend(ctx.count_many(extra))
    padding.extend(range(start, len(pool.texts)))


def _gold_chunks(order: list[int], chunks: list[Chunk], gold: list[tuple[int, QA]]) -> dict[str, int]:
    """For each question, the first chunk that holds its gold paragraph (its depth in the haystack)."""
    slot_of = {paragraph: slot for slot, paragraph in enumerate(order)}
    first: dict[int, int] = {}
    for index, chunk in enumerate(chunks):
        for slot in chunk.units:
            first.setdefault(slot, index)
    return {qa.question_id: first[slot_of[i]] for i, qa in gold}


def build(ctx: BuildContext) -> dict[str, list[Instance]]:
    target = ctx.params["target_tokens"]
    files = ctx.raw_files() if ctx.origin == "raw" else []
    paragraphs = read_paragraphs(ctx, "validation", files)
    pool = Pool([p.context for p in paragraphs], ctx.count_many([p.context for p in paragraphs]))
    gold_pairs = pick_gold(ctx, paragraphs, pool.tokens, ctx.params["questions"])
    gold = [i for i, _ in gold_pairs]
    chosen = set(gold)
    padding = [i for i in range(len(paragraphs)) if i not in chosen]
    suite_rng(ctx, "padding").shuffle(padding)
    _with_train(ctx, files, pool, padding, target)
    available = sum(pool.tokens)
    if available < target:
        raise BuildError(
            f"{ctx.spec.name}: the haystack needs {target} tokens of SQuAD paragraphs, but the source holds "
            f"only {available} tokens in {len(pool.texts)} distinct paragraphs (counted with the "
            f"{ctx.counter.describe()['name']} tokenizer). Build from the hub, or add SQuAD's "
            "train-v1.1.json to the raw folder for padding."
        )

    haystack = Haystack(ctx, pool, gold, padding)
    n = haystack.fit(target)
    if n < 0:
        raise BuildError(
            f"{ctx.spec.name}: the {len(gold)} gold paragraphs alone take {haystack.pack(0)} "
            f"tokens, over the {target}-token target"
        )
    order, chunks, total = haystack.tried[n]
    texts = [c.text for c in chunks]
    questions = [Question(qa.question_id, qa.question, list(qa.answers)) for _, qa in gold_pairs]
    lost = [q.question_id for q in questions if not answer_in_chunks(q.answers, texts)]
    if lost:
        raise BuildError(f"{ctx.spec.name}: answers of {lost} are not in the chunks (builder bug)")
    ctx.notes.append(f"{n} padding paragraphs; {total} of {target} target tokens ({total / target:.1%})")
    instance_id = ctx.instance_id("haystack", *(q.question_id for q in questions))
    return {
        "test": [
            Instance(
                instance_id,
                texts,
                questions,
                {
                    "source": "squad",
                    "target_tokens": target,
                    "gold_paragraphs": len(gold),
                    "padding_paragraphs": n,
                    "padding_from_train": sum(1 for i in padding[:n] if i >= len(paragraphs)),
                    "gold_chunk": _gold_chunks(order, chunks, gold_pairs),
                },
            )
        ]
    }
