"""BookSum chapters read as dated reading events, one instance per chapter, one summary question.

Origins: the hub (`ubaada/booksum-complete-cleaned`, config `chapters`, splits train and test, as the
original), the same rows as JSON lines under `DIR/booksum/chapters/*.jsonl`, and Mem-alpha's processed
release. A chapter is cut into sentence chunks of at most the chunk size, dated from 2024-01-01 on,
a random 1-3 days apart; chapters outside [min_chunks, max_chunks] chunks are left out. The gold is
the keyword list an LLM extracts from the reference summary (the summary itself when no LLM is set).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from .. import wrappers
from ..build import BuildContext
from ..chunking import chunk_text
from ..errors import RawFormatError
from ..llm import extract_keywords
from ..schema import Instance, Question
from .common import field as get_field
from .common import read_jsonl, split_by_group

HUB_SPLITS = ("train", "test")


@dataclass
class Chapter:
    book: str
    chapter_id: str
    text: str
    summary: str


def summary_text(record: dict[str, Any], path: Any, where: str) -> str:
    """The first reference summary: `summary[0]["text"]`, or a plain string; "" when there is none."""
    value = record.get("summary")
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("text", "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RawFormatError(
            path, where, "expected a text, a list of {text} objects or a list of texts", field="summary"
        )
    return value.strip()


def read_chapter(record: Any, path: Any, where: str) -> Chapter:
    book = get_field(record, "book_title", str, path, where)
    chapter_id = get_field(record, "chapter_id", (str, int), path, where)
    text = get_field(record, "text", str, path, where)
    return Chapter(book.strip(), str(chapter_id).strip(), text, summary_text(record, path, where))


def raw_chapters(ctx: BuildContext) -> Iterator[Chapter]:
    for path in ctx.raw_files():
        for lineno, record in read_jsonl(path):
            yield read_chapter(record, path, f"line {lineno}")


def hub_chapters(ctx: BuildContext) -> Iterator[Chapter]:
    for split in HUB_SPLITS:
        location = f"hub dataset {ctx.source.id} (config {ctx.source.config}, split {split})"
        for i, row in enumerate(ctx.hub_dataset(split)):
            yield read_chapter(row, location, f"row {i}")


def usable_chapters(ctx: BuildContext, chapters: Iterable[Chapter]) -> list[Chapter]:
    """Chapters with a summary, one per (book, chapter id), sorted: the build does not depend on row order."""
    kept: dict[tuple[str, str], Chapter] = {}
    no_summary = duplicates = 0
    for chapter in chapters:
        key = (chapter.book, chapter.chapter_id)
        if not chapter.summary or not chapter.text.strip():
            no_summary += 1
        elif key in kept:
            duplicates += 1
        else:
            kept[key] = chapter
    if no_summary:
        ctx.notes.append(f"left out {no_summary} chapters without text or reference summary")
    if duplicates:
        ctx.notes.append(f"left out {duplicates} repeated (book_title, chapter_id) rows; the first was kept")
    return [kept[k] for k in sorted(kept)]


def reading_chunks(ctx: BuildContext, chapter: Chapter) -> tuple[list[str], list[str]]:
    """The chapter as dated reading chunks, and the date of each."""
    stream = wrappers.date_stream(ctx.rng("dates", chapter.book, chapter.chapter_id), min_days=1, max_days=3)
    dates: list[str] = []

    def date(i: int) -> str:
        dates.extend(stamp[:10] for stamp in islice(stream, max(0, i + 1 - len(dates))))
        return dates[i]

    chunks = chunk_text(chapter.text, ctx.counter, ctx.chunk_size, wrap=lambda i, body: wrappers.reading(body, date(i)))
    return [c.text for c in chunks], dates[: len(chunks)]


def too_long(ctx: BuildContext, chapter: Chapter) -> bool:
    """A shortcut with the same outcome as chunking: more tokens than `max_chunks` full chunks can hold."""
    return ctx.counter.count(chapter.text) > ctx.params["max_chunks"] * ctx.chunk_size


def chapter_instance(ctx: BuildContext, chapter: Chapter, chunks: list[str], dates: list[str]) -> Instance:
    question = f"Summarize the part of the book I read from {dates[0]} to {dates[-1]}."
    return Instance(
        ctx.instance_id(chapter.book, chapter.chapter_id),
        chunks,
        [Question("summary", question, [chapter.summary])],
        {
            "source": "booksum",
            "book_title": chapter.book,
            "chapter_id": chapter.chapter_id,
            "reading_dates": {"start": dates[0], "end": dates[-1]},
            "reference_summary": chapter.summary,
            "gold": "reference_summary",
        },
    )


def use_keywords(ctx: BuildContext, splits: dict[str, list[Instance]]) -> dict[str, list[Instance]]:
    """Replace each reference summary by its keyword list (an LLM step; skipped without an LLM)."""
    purpose = "replace each reference summary by the keywords a summary must mention"
    llm = ctx.llm_step("keyword_extraction", purpose)
    if llm is None:
        return splits
    instances = [inst for split in splits.values() for inst in split]
    keywords = extract_keywords(llm, [inst.questions[0].answers[0] for inst in instances])
    empty = set()
    for inst, words in zip(instances, keywords, strict=True):
        if words:
            inst.questions[0].answers = words
            inst.metadata["gold"] = "keywords"
        else:
            empty.add(inst.instance_id)
    if empty:
        ctx.notes.append(f"left out {len(empty)} chapters whose keyword extraction returned nothing")
    return {name: [i for i in split if i.instance_id not in empty] for name, split in splits.items()}


def build(ctx: BuildContext) -> dict[str, list[Instance]]:
    if ctx.origin == "release":
        from .memalpha_release import build_memalpha_release

        return build_memalpha_release(ctx)
    chapters = usable_chapters(ctx, raw_chapters(ctx) if ctx.origin == "raw" else hub_chapters(ctx))
    lo, hi = ctx.params["min_chunks"], ctx.params["max_chunks"]
    instances, out_of_range = [], 0
    for chapter in ctx.progress(chapters, "chapters"):
        chunks, dates = ([], []) if too_long(ctx, chapter) else reading_chunks(ctx, chapter)
        if not lo <= len(chunks) <= hi:
            out_of_range += 1
            continue
        instances.append(chapter_instance(ctx, chapter, chunks, dates))
    ctx.notes.append(f"left out {out_of_range} chapters with fewer than {lo} or more than {hi} chunks")
    splits = split_by_group(instances, [i.metadata["book_title"] for i in instances], seed=ctx.seed)
    if ctx.limit:  # before the LLM step, so that it runs only on what the build keeps
        splits = {name: split[: ctx.limit] for name, split in splits.items()}
    return use_keywords(ctx, splits)
