"""BookSum builder on small synthetic books, as raw JSON lines and as a hub-layout parquet mirror."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date
from itertools import pairwise
from pathlib import Path

import datasets.config
import pytest
from datasets import load_from_disk
from hublayout import write_hub_repo

from tasks.build import UnpinnedSourceWarning, build_task
from tasks.errors import RawFormatError
from tasks.llm import KEYWORDS_SYSTEM
from tasks.tokenization import get_counter

BOOKS = 5
SENTENCES = {"short": 30, "medium": 700, "long": 3000}  # 1 chunk, about 6-7 chunks, over 20 chunks
READING = re.compile(r"\[Reading log, (\d{4}-\d\d-\d\d): [^\]]*\]\n<User> (.*)\n\n<System> ", re.S)


def chapter_text(book: int, chapter: str, n: int) -> str:
    words = ("river", "castle", "letter", "storm", "garden", "harbour", "lantern")
    return " ".join(
        f"In {chapter} of book {book}, person {k % 13} carried the {words[k % 7]} past mile {k}." for k in range(n)
    )


def make_rows() -> list[dict]:
    rows = []
    for b in range(BOOKS):
        sizes = ["short", "medium", "medium"] + (["long"] if b == 0 else [])
        for c, size in enumerate(sizes):
            chapter = f"chapter {c + 1}"
            rows.append(
                {
                    "bid": b,
                    "book_title": f"Book {b}",
                    "chapter_id": chapter,
                    "is_aggregate": False,
                    "text": chapter_text(b, chapter, SENTENCES[size]),
                    "summary": [
                        {
                            "source": "s",
                            "text": f"In book {b}, {chapter}, a {size} journey ends.",
                            "analysis": "",
                        }
                    ],
                }
            )
    rows.append(
        {
            "bid": 9,
            "book_title": "Book 9",
            "chapter_id": "chapter 1",
            "is_aggregate": False,
            "text": chapter_text(9, "chapter 1", SENTENCES["medium"]),
            "summary": [],
        }
    )
    return rows


def expected_chapters(rows: Sequence[dict]) -> set[tuple[str, str]]:
    """The medium chapters with a summary: the others give 1 chunk or more than 20."""
    return {
        (r["book_title"], r["chapter_id"])
        for r in rows
        if r["summary"] and r["text"].count(" past mile ") == SENTENCES["medium"]
    }


def write_raw(root: Path, rows: Sequence[dict]) -> Path:
    folder = root / "booksum" / "chapters"
    folder.mkdir(parents=True)
    for name, part in (("train", rows[::2]), ("test", rows[1::2])):
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for row in part:
                if row["summary"]:  # a plain summary string is taken too (the hub mirror has the list)
                    row = {**row, "summary": row["summary"][0]["text"]}
                f.write(json.dumps(row) + "\n")
    return root


class KeywordLLM:
    """A stand-in for a builder LLM: the same keyword line for every summary."""

    def describe(self) -> dict[str, object]:
        return {"model": "fixed-keywords"}

    def generate(self, conversations: Sequence[list[dict[str, str]]], *, max_tokens: int) -> list[str]:
        assert all(conv[0]["content"] == KEYWORDS_SYSTEM for conv in conversations)
        return ["<think>reading</think>journey, book, ending" for _ in conversations]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return make_rows()


@pytest.fixture(scope="module")
def raw_root(rows, tmp_path_factory) -> Path:
    return write_raw(tmp_path_factory.mktemp("raw"), rows)


@pytest.fixture(scope="module")
def built(raw_root, tmp_path_factory):
    result = build_task(
        "booksum",
        tmp_path_factory.mktemp("out"),
        origin="raw",
        raw_dir=raw_root,
        tokenizer="simple",
        show_progress=False,
    )
    return result, load_from_disk(str(result.path))


def all_rows(ds):
    return [row for split in ("train", "validation") for row in ds[split]]


def test_one_instance_per_chapter_within_the_chunk_range(built, rows):
    result, ds = built
    found = {(m["book_title"], m["chapter_id"]) for m in (json.loads(r["metadata"]) for r in all_rows(ds))}
    assert found == expected_chapters(rows)
    assert all(5 <= len(r["chunks"]) <= 20 for r in all_rows(ds))
    notes = " ".join(result.manifest["notes"])
    assert "left out 1 chapters without text or reference summary" in notes
    assert f"left out {BOOKS + 1} chapters with fewer than 5 or more than 20 chunks" in notes


def test_chunks_hold_the_whole_chapter_within_the_limit(built, rows):
    _, ds = built
    counter = get_counter("simple")
    texts = {(r["book_title"], r["chapter_id"]): r["text"] for r in rows}
    for row in all_rows(ds):
        assert max(counter.count_many(row["chunks"])) <= 2048
        meta = json.loads(row["metadata"])
        bodies = [READING.match(chunk).group(2) for chunk in row["chunks"]]
        assert " ".join(bodies).split() == texts[(meta["book_title"], meta["chapter_id"])].split()


def test_dates_advance_one_to_three_days_and_frame_the_question(built):
    _, ds = built
    for row in all_rows(ds):
        dates = [date.fromisoformat(READING.match(chunk).group(1)) for chunk in row["chunks"]]
        assert dates[0] == date(2024, 1, 1)
        assert all(1 <= (b - a).days <= 3 for a, b in pairwise(dates))
        (question,) = row["questions"]
        assert f"from {dates[0]} to {dates[-1]}." in question["question"]


def test_without_llm_the_gold_is_the_reference_summary(built, rows):
    result, ds = built
    assert result.manifest["llm_steps"]["keyword_extraction"]["status"] == "skipped"
    summaries = {(r["book_title"], r["chapter_id"]): r["summary"][0]["text"] for r in rows if r["summary"]}
    for row in all_rows(ds):
        meta = json.loads(row["metadata"])
        assert row["questions"][0]["answers"] == [summaries[(meta["book_title"], meta["chapter_id"])]]


def test_books_never_straddle_the_split(built):
    _, ds = built
    books = {s: {json.loads(m)["book_title"] for m in ds[s]["metadata"]} for s in ("train", "validation")}
    assert books["train"] and books["validation"]
    assert not books["train"] & books["validation"]
    assert not set(ds["train"]["instance_id"]) & set(ds["validation"]["instance_id"])


def test_rebuild_and_hub_mirror_give_the_same_hash(built, raw_root, rows, tmp_path, monkeypatch):
    result, _ = built
    again = build_task(
        "booksum", tmp_path / "again", origin="raw", raw_dir=raw_root, tokenizer="simple", show_progress=False
    )
    assert again.manifest["sha256"] == result.manifest["sha256"]
    # `datasets` caches a local hub-layout copy by repo name and config, not by content: keep it private
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    mirror = tmp_path / "mirror"
    splits = {"train": rows[::2], "test": rows[1::2]}  # the raw fixture's two files
    write_hub_repo(mirror, "ubaada/booksum-complete-cleaned", {"chapters": splits})
    with pytest.warns(UnpinnedSourceWarning, match="ubaada/booksum-complete-cleaned"):  # no pinned revision
        hub = build_task(
            "booksum", tmp_path / "hub", origin="hub", hub_mirror=mirror, tokenizer="simple", show_progress=False
        )
    assert [i["split"] for i in hub.manifest["inputs"]] == ["train", "test"]
    assert hub.manifest["sha256"] == result.manifest["sha256"]


def test_keyword_extraction_through_a_builder_llm(raw_root, tmp_path):
    result = build_task(
        "booksum",
        tmp_path,
        origin="raw",
        raw_dir=raw_root,
        tokenizer="simple",
        show_progress=False,
        llm=KeywordLLM(),
    )
    step = result.manifest["llm_steps"]["keyword_extraction"]
    assert step["status"] == "applied" and step["llm"] == {"model": "fixed-keywords"}
    ds = load_from_disk(str(result.path))
    for row in all_rows(ds):
        assert row["questions"][0]["answers"] == ["journey", "book", "ending"]
        assert json.loads(row["metadata"])["gold"] == "keywords"


def test_malformed_line_names_file_line_and_field(rows, tmp_path):
    root = write_raw(tmp_path, rows)
    path = root / "booksum" / "chapters" / "train.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    broken = json.loads(lines[1])
    del broken["text"]
    lines[1] = json.dumps(broken)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RawFormatError) as err:
        build_task("booksum", tmp_path / "out", origin="raw", raw_dir=root, tokenizer="simple", show_progress=False)
    assert str(path) in str(err.value) and "line 2" in str(err.value)
    assert err.value.field == "text"
