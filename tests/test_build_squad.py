"""Building a task end to end on the real SQuAD sample: invariants, hashes, errors, the CLI."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from hublayout import write_hub_repo

from benchmark.cli import main
from tasks.build import build_task
from tasks.errors import MissingRawFilesError, RawFormatError, SourceUnavailableError, TaskError
from tasks.manifest import load_built
from tasks.overlap import overlap
from tasks.sources.squad import read_squad_file
from tasks.tokenization import get_counter
from tasks.validate import validate_task

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def squad(raw_dir, built_dir):
    return build_task("squad", built_dir, origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False)


def squad_file(raw_dir):
    return next((raw_dir / "squad").glob("*.json"))


def test_invariants_against_the_raw_file(squad, raw_dir):
    data, manifest = load_built(squad.path)
    raw_qas = {qa.question_id: qa for p in read_squad_file(squad_file(raw_dir)) for qa in p.qas}
    counter = get_counter("simple")
    ids = []
    for split in ("train", "validation"):
        for row in data[split]:
            assert all(counter.count(c) <= 2048 for c in row["chunks"])
            assert sum(counter.count_many(row["chunks"])) == row["context_tokens"]
            assert 30 <= len(row["questions"]) <= 100 and len(row["chunks"]) == 10
            for q in row["questions"]:
                raw = raw_qas[q["question_id"]]  # every question comes from the raw file, unchanged
                assert q["question"] == raw.question and q["answers"] == raw.answers
                assert any(a in c for a in q["answers"] for c in row["chunks"])  # extractive: findable
                assert counter.count(q["answers"][0]) < 5
                ids.append(q["question_id"])
    assert len(ids) == len(set(ids)) == sum(manifest["splits"][s]["questions"] for s in manifest["splits"])
    assert manifest["splits"]["train"]["instances"] <= 100
    assert manifest["llm_steps"]["closed_book_filter"]["status"] == "skipped"
    assert manifest["inputs"][0]["sha256"] == "7185890ae4207b9362ec4d1da2bb6c58d56a2dc6f659f865a90d828afb8322d4"
    assert manifest["tokenizer"]["name"] == "simple"


def test_paragraphs_are_whole_under_a_real_bpe(raw_dir, qwen_bpe, tmp_path):
    """With Qwen's BPE, every chunk within 2,048 tokens and every SQuAD paragraph of an instance in one
    chunk, whole (the sample has no paragraph over the chunk size)."""
    result = build_task("squad", tmp_path, origin="raw", raw_dir=raw_dir, tokenizer=qwen_bpe.spec, show_progress=False)
    assert validate_task(result.path) == []  # re-counts every chunk with the manifest's tokenizer
    paragraphs = [p.context for p in read_squad_file(squad_file(raw_dir))]
    data, _ = load_built(result.path)
    placed = 0
    for split in data:
        for row in data[split]:
            counts = qwen_bpe.count_many(row["chunks"])
            assert max(counts) <= 2048 and sum(counts) == row["context_tokens"]
            for paragraph in paragraphs:
                holding = [c for c in row["chunks"] if paragraph[:60] in c]
                if holding:
                    assert any(paragraph in c for c in holding), paragraph[:60]
                    placed += 1
    assert placed >= 10 * sum(len(data[s]) for s in data)


def test_splits_are_disjoint(squad):
    data, _ = load_built(squad.path)
    assert not set(data["train"]["instance_id"]) & set(data["validation"]["instance_id"])
    report = overlap(squad.path, squad.path, split_a="train", split_b="validation")
    assert report.shared_questions == [] and report.shared_passages == []
    assert report.passages_a > 1000


def test_rebuild_gives_the_same_hash_and_other_seed_differs(squad, raw_dir, tmp_path):
    again = build_task("squad", tmp_path / "a", origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False)
    assert again.manifest["sha256"] == squad.manifest["sha256"]
    assert (again.path / "manifest.json").read_bytes() == (squad.path / "manifest.json").read_bytes()
    other = build_task(
        "squad",
        tmp_path / "b",
        origin="raw",
        raw_dir=raw_dir,
        tokenizer="simple",
        seed=7,
        show_progress=False,
    )
    assert other.manifest["sha256"] != squad.manifest["sha256"]


def test_validate_detects_tampering(squad, tmp_path):
    assert validate_task(squad.path) == []
    copy = tmp_path / "squad"
    shutil.copytree(squad.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["splits"]["train"]["sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    problems = validate_task(copy)
    assert any("field 'sha256': not the hash of the split hashes" in p for p in problems)


def test_missing_raw_dir_lists_expected_files(tmp_path):
    with pytest.raises(MissingRawFilesError) as err:
        build_task("squad", tmp_path / "out", origin="raw", raw_dir=tmp_path, tokenizer="simple", show_progress=False)
    assert str(tmp_path / "squad") in str(err.value) and "*.json" in str(err.value)


def test_malformed_raw_file_names_file_record_and_field(tmp_path):
    (tmp_path / "squad").mkdir()
    bad = tmp_path / "squad" / "dev.json"
    bad.write_text(
        json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{"question": "q?"}]}]}]})
    )
    with pytest.raises(RawFormatError) as err:
        build_task("squad", tmp_path / "out", origin="raw", raw_dir=tmp_path, tokenizer="simple", show_progress=False)
    message = str(err.value)
    assert str(bad) in message and "data[0].paragraphs[0].qas[0]" in message and "'answers'" in message
    bad.write_text('{"data": [\n  {"title": "T",\n  oops}]}')
    with pytest.raises(RawFormatError, match=r"dev\.json, line 3"):
        build_task("squad", tmp_path / "out", origin="raw", raw_dir=tmp_path, tokenizer="simple", show_progress=False)


def test_hub_layout_mirror_builds_the_same_instances(raw_dir, tmp_path, squad):
    rows = [
        {
            "id": qa.question_id,
            "title": p.title,
            "context": p.context,
            "question": qa.question,
            "answers": {"text": qa.answers, "answer_start": [p.context.find(a) for a in qa.answers]},
        }
        for p in read_squad_file(squad_file(raw_dir))
        for qa in p.qas
    ]
    write_hub_repo(tmp_path / "mirror", "rajpurkar/squad", {"plain_text": {"train": rows}})
    hub = build_task(
        "squad",
        tmp_path / "out",
        origin="hub",
        hub_mirror=tmp_path / "mirror",
        tokenizer="simple",
        show_progress=False,
    )
    assert hub.manifest["sha256"] == squad.manifest["sha256"]
    assert hub.manifest["inputs"][0]["hub"] == "rajpurkar/squad"
    with pytest.raises(SourceUnavailableError, match="hub mirror"):
        build_task(
            "squad",
            tmp_path / "out",
            origin="hub",
            hub_mirror=tmp_path,
            tokenizer="simple",
            show_progress=False,
        )


def test_limit_and_wrong_origin(raw_dir, tmp_path):
    small = build_task(
        "squad", tmp_path, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=2, show_progress=False
    )
    assert small.manifest["splits"]["train"]["instances"] == 2 and small.manifest["limit"] == 2
    with pytest.raises(TaskError, match="cannot be built --from"):
        build_task("locomo", tmp_path, origin="hub", tokenizer="simple")


def raw_build(raw_dir, out, *extra: str) -> list[str]:
    """`memalpha tasks build squad` from the raw sample, offline counter, no progress bars."""
    return [
        "tasks",
        "build",
        "squad",
        "--out",
        str(out),
        "--from",
        "raw",
        "--raw-dir",
        str(raw_dir),
        "--tokenizer",
        "simple",
        "--quiet",
        *extra,
    ]


def test_cli_build_show_validate_overlap(raw_dir, tmp_path, capsys, squad):
    out = tmp_path / "data"
    assert main(raw_build(raw_dir, out)) == 0
    assert squad.manifest["sha256"][:16] in capsys.readouterr().out
    assert main(["tasks", "show", str(out / "squad"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["splits"]["train"]["questions"] == squad.manifest["splits"]["train"]["questions"]
    assert main(["tasks", "validate", str(out)]) == 0
    assert re.search(r"^ok\s+.*squad$", capsys.readouterr().out, re.M)
    assert main(["tasks", "overlap", str(out / "squad"), str(squad.path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"]["shared"] == report["questions"]["a"] > 0
    assert main(["tasks", "build", "sqaud", "--out", str(out)]) == 2
    assert "did you mean 'squad'" in capsys.readouterr().err


def test_exclude_from_drops_the_questions_another_task_asks(raw_dir, tmp_path, capsys):
    first = build_task(
        "squad", tmp_path / "a", origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=1, show_progress=False
    )
    out = tmp_path / "b"
    assert main(raw_build(raw_dir, out, "--limit", "1", "--exclude-from", str(first.path))) == 0
    capsys.readouterr()
    data, manifest = load_built(out / "squad")
    report = overlap(first.path, out / "squad")
    assert report.shared_questions == [] and report.questions_b > 0
    assert any(i.get("excluded_questions_of") == "squad" for i in manifest["inputs"])
    dropped = [n for n in manifest["notes"] if n.startswith("excluded ")]
    assert dropped and not dropped[0].startswith("excluded 0 ")
    first_ids = {r["instance_id"] for s in load_built(first.path)[0].values() for r in s}
    assert not first_ids & {r["instance_id"] for s in data.values() for r in s}  # whole instances went
