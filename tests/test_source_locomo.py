"""LoCoMo builder on the real release file (locomo10.json)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from datasets import load_from_disk

from tasks.build import BuildContext, build_task
from tasks.errors import RawFormatError
from tasks.registry import get_task
from tasks.sources import locomo
from tasks.tokenization import get_counter

pytestmark = pytest.mark.realdata


def raw_records(raw_dir: Path) -> list[dict]:
    return json.loads((raw_dir / "locomo" / "locomo10.json").read_text(encoding="utf-8"))


def sessions(record: dict) -> list[tuple[str, list[dict]]]:
    conv = record["conversation"]
    keys = sorted((k for k in conv if re.fullmatch(r"session_\d+", k)), key=lambda k: int(k.split("_")[1]))
    return [(conv[f"{k}_date_time"], conv[k]) for k in keys if conv[k]]


@pytest.fixture(scope="module")
def built(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("locomo")
    result = build_task("locomo", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False)
    return result, load_from_disk(str(result.path))["test"]


def test_one_instance_per_conversation(built, raw_dir):
    _, ds = built
    assert len(ds) == 10
    ids = {json.loads(m)["sample_id"] for m in ds["metadata"]}
    assert ids == {r["sample_id"] for r in raw_records(raw_dir)}


def test_question_counts_match_the_documented_selection(built, raw_dir):
    _, ds = built
    by_sample = {json.loads(row["metadata"])["sample_id"]: row for row in ds}
    for record in raw_records(raw_dir):
        expected = [(j, qa) for j, qa in enumerate(record["qa"]) if qa["category"] != 5 and "answer" in qa]
        row = by_sample[record["sample_id"]]
        assert len(row["questions"]) == len(expected)
        for q, (j, qa) in zip(row["questions"], expected, strict=True):
            assert q["question_id"] == f"{record['sample_id']}-q{j}"
            assert q["answers"] == [str(qa["answer"]).strip()]
            assert q["question_type"] == locomo.CATEGORY_NAMES[qa["category"]]


def test_every_turn_and_date_is_in_the_chunks_in_order(built, raw_dir):
    _, ds = built
    by_sample = {json.loads(row["metadata"])["sample_id"]: row for row in ds}
    for record in raw_records(raw_dir):
        text = "\n".join(by_sample[record["sample_id"]]["chunks"])
        position = 0
        for stamp, turns in sessions(record):
            header = text.find(f", {stamp}]", position)
            assert header >= 0, stamp
            position = header
            for turn in turns:
                found = text.find(f"<{turn['speaker']}> {turn['text'].strip()}", position)
                assert found >= 0, turn["dia_id"]
                position = found
                if turn.get("blip_caption"):
                    assert f"[shares a photo: {turn['blip_caption'].strip()}]" in text


def test_chunks_within_limit(built):
    _, ds = built
    counter = get_counter("simple")
    limit = get_task("locomo").chunk_size
    for row in ds:
        assert max(counter.count_many(row["chunks"])) <= limit
        assert all(chunk.startswith("[Conversation session ") for chunk in row["chunks"])


def test_adversarial_questions_are_counted_in_the_manifest(built, raw_dir):
    result, _ = built
    adversarial = sum(qa["category"] == 5 for r in raw_records(raw_dir) for qa in r["qa"])
    assert any(f"left out {adversarial} adversarial" in note for note in result.manifest["notes"])


def test_rebuild_gives_the_same_hash(built, raw_dir, tmp_path):
    result, _ = built
    again = build_task("locomo", tmp_path, origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False)
    assert again.manifest["sha256"] == result.manifest["sha256"]


def test_long_sessions_are_split_with_their_header(raw_dir):
    """With a small chunk size, sessions go in parts; each part keeps the date, no turn is cut."""
    spec = dataclasses.replace(get_task("locomo"), chunk_size=160)
    ctx = BuildContext(
        spec=spec,
        origin="raw",
        source=spec.source("raw"),
        counter=get_counter("simple"),
        raw_root=raw_dir,
        show_progress=False,
    )
    instances = locomo.build(ctx)["test"]
    record = raw_records(raw_dir)[0]
    chunks = next(i.chunks for i in instances if i.metadata["sample_id"] == record["sample_id"])
    assert max(ctx.counter.count_many(chunks)) <= 160
    assert any(", continued]" in c for c in chunks)
    for chunk in chunks:
        assert re.match(r"\[Conversation session \d+ between Caroline and Melanie, [^\]]+\]\n", chunk)
    for _, turns in sessions(record):
        for turn in turns:
            assert any(turn["text"].strip() in c for c in chunks), turn["dia_id"]


def test_question_without_text_names_file_record_and_field(raw_dir, tmp_path):
    records = raw_records(raw_dir)
    del records[2]["qa"][5]["question"]
    (tmp_path / "locomo").mkdir()
    (tmp_path / "locomo" / "locomo10.json").write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(RawFormatError) as err:
        build_task(
            "locomo",
            tmp_path / "out",
            origin="raw",
            raw_dir=tmp_path,
            tokenizer="simple",
            show_progress=False,
        )
    message = str(err.value)
    assert "locomo10.json" in message
    assert f"record 2 ({records[2]['sample_id']}).qa[5]" in message
    assert err.value.field == "question"
