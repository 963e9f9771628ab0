"""Re-scoring into the results store (`add`) with a fake reader, duplicates, failures that leave the store
as it was, and `init` -> fill in -> `validate` through the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from leaderboard_helpers import FakeReader, memory_line, metadata, snapshot, write_submission, write_task

from benchmark.cli import main
from benchmark.prompting import ReaderPrompt
from benchmark.readers.base import ReaderError
from benchmark.scoring import SCORER_VERSION
from leaderboard.rescore import add_submission
from leaderboard.store import DuplicateEntryError, ResultsStore
from leaderboard.submission import SubmissionError
from leaderboard.validate import validate_submission
from tasks.errors import TaskError
from tasks.tokenization import get_counter

IDS = ["v0", "v1", "v2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("data")
    return root, {"squad": write_task(root, "squad", {"train": ["t0"], "validation": IDS})}


@pytest.fixture
def submission(tmp_path, data) -> Path:
    lines = [
        memory_line("squad", iid, core="The user likes colours.", semantic=["The sky is blue.", "Roses."])
        for iid in IDS
    ]
    return write_submission(tmp_path / "sub", metadata(("task", "squad"), data[1]), lines)


def add(submission: Path, data, store: ResultsStore, reader=None):
    validated = validate_submission(submission, data[0], store=store)
    return add_submission(validated, data[0], store, reader or FakeReader(), counter=get_counter("simple"))


def test_add_with_the_paper_profile_goes_on_that_profiles_board(tmp_path, data, submission):
    store = ResultsStore(tmp_path / "results")
    validated = validate_submission(submission, data[0], store=store, profile="memalpha-paper")
    paper, _ = add_submission(validated, data[0], store, FakeReader(), counter=get_counter("simple"))
    assert paper["board"]["profile"] == paper["scorer"]["profile"] == "memalpha-paper@1"
    assert set(paper["scores"]["averages"]) == {"mean_of_competencies", "mean_of_tasks"}
    assert paper["scores"]["tasks"]["squad"]["metric"] == "memalpha-eval:squad_hotpotqa"
    assert paper["scorer"]["reader"]["sampling"]["temperature"] == 0.7  # the board profile's sampling
    ours, _ = add(submission, data, store)  # the same agent and version, on the v1 board
    assert ours["board"]["profile"] == "v1@2" and len(store.paths()) == 2 and ours["id"] != paper["id"]


def test_add_writes_one_record(tmp_path, data, submission):
    store = ResultsStore(tmp_path / "results")
    before = snapshot(submission)
    record, path = add(submission, data, store)
    assert [p.name for p in store.paths()] == [path.name] == [f"{record['id']}.json"]
    assert store.records() == [record] and json.loads(path.read_text()) == record
    assert snapshot(submission) == before  # the submission is only read
    assert record["status"] == "rescored" and record["board"] == {"kind": "task", "name": "squad", "profile": "v1@2"}
    assert record["scorer"]["profile"] == "v1@2" and record["scores"]["averages"] == {"mean_of_competencies": 0.5}
    assert "origin" in record["scores"]["tasks"]["squad"]
    assert record["agent"] == {"name": "Test Agent", "version": "1.0"} and record["license"] == "MIT"
    task = record["scores"]["tasks"]["squad"]
    assert task["score"] == 0.5 and task["instances"] == 3 and task["questions"] == 6
    assert record["scores"]["overall"] == 0.5 and record["scores"]["competencies"] == {"AR": 0.5}
    # core (5 tokens, the full stop counts) + two entries (5 + 2) with the simple counter, in each instance
    assert task["memory_tokens_mean"] == 12 and record["memory_tokens"] == 12
    assert record["scorer"]["version"] == SCORER_VERSION
    assert record["scorer"]["template"]["sha256"] == ReaderPrompt().sha256
    assert record["scorer"]["retriever"]["top_k"] == 20 and record["scorer"]["reader"]["model"] == "fake-reader"
    assert record["task_hashes"] == data[1]
    digest = hashlib.sha256((submission / "memories.jsonl").read_bytes()).hexdigest()
    assert record["memories"] == {
        "sha256": digest,
        "bytes": (submission / "memories.jsonl").stat().st_size,
        "instances": 3,
    }
    assert record["contamination"] == {"possible": False, "reasons": []}


def test_a_second_identical_add_is_rejected_and_changes_nothing(tmp_path, data, submission):
    store = ResultsStore(tmp_path / "results")
    record, _ = add(submission, data, store)
    before = snapshot(store.root)
    reader = FakeReader()
    with pytest.raises(SubmissionError, match="is already on board squad"):
        add(submission, data, store, reader)
    assert reader.requests == 0
    with pytest.raises(DuplicateEntryError):  # the store refuses it too, even past validation
        store.add(record)
    renamed = {**record, "id": "squad--other-name", "agent": {"name": " test  AGENT", "version": "1.0"}}
    with pytest.raises(DuplicateEntryError, match="already exists"):
        store.add(renamed)
    assert snapshot(store.root) == before


def test_failures_leave_the_store_as_it_was(tmp_path, data, submission):
    store = ResultsStore(tmp_path / "results")
    other = write_submission(
        tmp_path / "other",
        metadata(("task", "squad"), data[1], agent={"name": "Other", "version": "2"}),
        [memory_line("squad", iid) for iid in IDS],
    )
    add(other, data, store)
    before = snapshot(store.root)
    with pytest.raises(ReaderError):
        add(submission, data, store, FakeReader(fail=True))
    assert snapshot(store.root) == before
    validated = validate_submission(submission, data[0], store=store)
    with open(submission / "memories.jsonl", "a") as f:  # changed after validation
        f.write("\n")
    with pytest.raises(TaskError, match="changed since it was validated"):
        add_submission(validated, data[0], store, FakeReader(), counter=get_counter("simple"))
    unchecked = validate_submission(other)
    with pytest.raises(TaskError, match="--data"):
        add_submission(unchecked, data[0], store, FakeReader(), counter=get_counter("simple"))
    assert snapshot(store.root) == before


def test_an_unreadable_record_is_an_error(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(TaskError, match=r"bad\.json"):
        ResultsStore(tmp_path).records()


def test_add_refuses_settings_other_than_the_pinned_ones(tmp_path, submission, data, capsys):
    code = main(
        [
            "leaderboard",
            "add",
            str(submission),
            "--data",
            str(data[0]),
            "--results",
            str(tmp_path / "r"),
            "--top-k",
            "5",
            "--reader",
            "openai",
            "--base-url",
            "http://127.0.0.1:9",
        ]
    )
    assert code == 2 and "--top-k 5 (pinned: 20)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_init_fill_validate(tmp_path, data, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "memories.jsonl").write_text("".join(json.dumps(memory_line("squad", i)) + "\n" for i in IDS))
    (run / "scores.json").write_text(json.dumps({"overall": 0.1, "task_hashes": data[1]}))
    (run / "config.json").write_text(json.dumps({"agent": {"name": "chunk-store", "options": {"model": "m-1"}}}))
    sub = tmp_path / "sub"
    assert main(["leaderboard", "init", str(run), "--out", str(sub)]) == 0
    doc = json.loads((sub / "submission.json").read_text())
    assert doc["task"] == "squad" and doc["task_hashes"] == data[1]
    assert doc["agent"]["name"] == "chunk-store" and doc["model"] == "m-1"
    assert (sub / "memories.jsonl").read_bytes() == (run / "memories.jsonl").read_bytes()

    capsys.readouterr()
    assert main(["leaderboard", "validate", str(sub), "--data", str(data[0])]) == 1  # invalid: a runtime failure
    err = capsys.readouterr().err
    for fld in ("agent.version", "parameters", "link", "contact", "license", "trained_on[0]"):
        assert f"field '{fld}': still the TODO placeholder" in err
    doc.update(
        agent={"name": "chunk-store", "version": "0.1"},
        parameters="32B",
        link="https://example.org",
        contact="me@example.org",
        license="MIT",
        trained_on=[],
    )
    (sub / "submission.json").write_text(json.dumps(doc))
    assert main(["leaderboard", "validate", str(sub), "--data", str(data[0])]) == 0
    assert "OK: chunk-store 0.1 for board squad (task, profile v1@2), 3 instances" in capsys.readouterr().out

    assert main(["leaderboard", "init", str(run), "--out", str(sub)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_init_guesses_the_suite_or_leaves_a_placeholder(tmp_path):
    from leaderboard.skeleton import guess_board
    from tasks.registry import get_suite

    assert guess_board(sorted(get_suite("mab-paper").tasks)) == ("suite", "mab-paper")
    assert guess_board(["squad"]) == ("task", "squad")
    kind, name = guess_board(["hotpotqa", "squad"])
    assert kind == "suite" and name.startswith("TODO")


@pytest.mark.slow
def test_cli_add_against_transformers_serve(tmp_path, data, submission, serve_tiny, capsys):
    """`memalpha leaderboard add` end to end: a real OpenAI-compatible server on 127.0.0.1 answers."""
    results = tmp_path / "results"
    args = [
        "leaderboard",
        "add",
        str(submission),
        "--data",
        str(data[0]),
        "--results",
        str(results),
        "--reader",
        "openai",
        "--model",
        serve_tiny.model,
        "--base-url",
        serve_tiny.base_url,
        "--tokenizer",
        "simple",
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "--quiet",
    ]
    assert main(args) == 0
    (record,) = ResultsStore(results).records()
    assert record["status"] == "rescored"
    assert record["scorer"]["reader"]["model"] == serve_tiny.model
    assert record["scores"]["tasks"]["squad"]["questions"] == 6
    assert 0.0 <= record["scores"]["overall"] <= 1.0
    capsys.readouterr()
    assert main(args) != 0  # the same submission again: a duplicate, rejected
    assert "already" in capsys.readouterr().err.lower()
    assert len(ResultsStore(results).records()) == 1
