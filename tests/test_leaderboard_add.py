"""Re-scoring into the results store (`add`) with a fake reader on a board pinned to it, duplicates, other
scorers refused by name, failures that leave the store as it was, temp folders gone on every exit path,
and `init` -> fill in -> `validate` through the CLI."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from leaderboard_helpers import FakeReader, memory_line, metadata, pin_board, snapshot, write_submission, write_task

from benchmark.cli import main
from benchmark.prompting import ReaderPrompt
from benchmark.readers.base import ReaderError
from benchmark.scoring import SCORER_VERSION, score_run
from leaderboard.boards import get_board
from leaderboard.pins import ScorerMismatchError
from leaderboard.rescore import add_submission
from leaderboard.scratch import SCRATCH_PREFIX, scratch_dir
from leaderboard.store import DuplicateEntryError, ResultsStore, StoreError
from leaderboard.submission import SubmissionError
from leaderboard.validate import validate_submission
from tasks.errors import TaskError
from tasks.tokenization import SimpleCounter, get_counter

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


@pytest.fixture
def store(tmp_path) -> ResultsStore:
    """A store whose squad boards (v1 and memalpha-paper) pin the fake reader and the simple counter."""
    store = ResultsStore(tmp_path / "results")
    pin_board(store, ("task", "squad"))
    pin_board(store, ("task", "squad"), profile="memalpha-paper")
    return store


def test_add_with_the_paper_profile_goes_on_that_profiles_board(data, submission, store):
    validated = validate_submission(submission, data[0], store=store, profile="memalpha-paper")
    paper, _ = add_submission(validated, data[0], store, FakeReader(), counter=get_counter("simple"))
    assert paper["board"]["profile"] == paper["scorer"]["profile"] == "memalpha-paper@1"
    assert set(paper["scores"]["averages"]) == {"mean_of_competencies", "mean_of_tasks"}
    assert paper["scores"]["tasks"]["squad"]["metric"] == "memalpha-eval:squad_hotpotqa"
    assert paper["scorer"]["reader"]["sampling"]["temperature"] == 0.7  # the board profile's sampling
    ours, _ = add(submission, data, store)  # the same agent and version, on the v1 board
    assert ours["board"]["profile"] == "v1@2" and len(store.paths()) == 2 and ours["id"] != paper["id"]


def test_add_writes_one_record(data, submission, store):
    before = snapshot(submission)
    day = datetime.datetime.now(datetime.UTC).date()
    record, path = add(submission, data, store)
    assert datetime.date.fromisoformat(record["submitted"]) in (day, day + datetime.timedelta(days=1))
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


def test_a_second_identical_add_is_rejected_and_changes_nothing(data, submission, store):
    record, _ = add(submission, data, store)
    before = snapshot(store.root)
    reader = FakeReader()
    with pytest.raises(SubmissionError, match="is already on board squad"):
        add(submission, data, store, reader)
    assert reader.requests == 0
    with pytest.raises(DuplicateEntryError):  # the store refuses it too, even past validation
        store.add(record)
    # spacing and case, Cyrillic e, a no-break space and a full-width A: all look like "Test Agent"
    for i, name in enumerate([" test  AGENT", "T\u0435st Ag\u0435nt", "Test\u00a0\uff21gent"]):
        renamed = {**record, "id": f"squad--other-name-{i}", "agent": {"name": name, "version": "1.0"}}
        with pytest.raises(DuplicateEntryError, match="already exists"):
            store.add(renamed)
    assert snapshot(store.root) == before


def test_failures_leave_the_store_as_it_was(tmp_path, data, submission, store):
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


class OtherReader(FakeReader):
    def describe(self) -> dict:
        return {"backend": "fake", "model": "other-reader"}


class OtherCounter(SimpleCounter):
    def describe(self) -> dict:
        return {**super().describe(), "name": "other-counter"}


def test_only_the_scorer_the_board_pins_may_add(tmp_path, data, submission, store):
    unpinned = ResultsStore(tmp_path / "unpinned")
    with pytest.raises(StoreError, match=r"has no pinned scorer.*init-board --task squad --profile v1@2"):
        add(submission, data, unpinned)
    assert not unpinned.root.exists()
    before = snapshot(store.root)
    validated = validate_submission(submission, data[0], store=store)
    for reader, counter, differing in [
        (OtherReader(), get_counter("simple"), "reader model (--model): 'other-reader', pinned 'fake-reader'"),
        (FakeReader(), OtherCounter(), "tokenizer (--tokenizer): 'other-counter', pinned 'simple'"),
    ]:
        with pytest.raises(ScorerMismatchError) as err:
            add_submission(validated, data[0], store, reader, counter=counter)
        assert err.value.args[0].count("\n  - ") == 1 and differing in str(err.value)
        assert reader.requests == 0  # refused before any reader call
    assert snapshot(store.root) == before

    record, _ = add(submission, data, store)
    assert record["scorer"]["retriever"]["top_k"] == 20 and record["scorer"]["reader"]["sampling"]["max_tokens"] == 2048
    # a record scored otherwise never reaches the store, even written by hand
    forged = json.loads(json.dumps(record))
    forged.update(id="squad--forged", agent={"name": "Forged", "version": "1"})
    forged["scorer"]["retriever"]["top_k"] = 5
    forged["scorer"]["reader"]["sampling"]["temperature"] = 0.7
    with pytest.raises(ScorerMismatchError) as err:
        store.add(forged)
    assert "top-k (--top-k): 5, pinned 20" in str(err.value)
    assert "reader sampling temperature: 0.7, pinned 0.0" in str(err.value)


def test_a_boards_scorer_never_changes(tmp_path, data, submission, store):
    board = get_board("task", "squad")
    pin = store.pinned(board)
    assert store.pin(board, pin) == store.board_file(board)  # the same pin again: nothing changes
    with pytest.raises(ScorerMismatchError, match=r"already pins another scorer.*\n  - top_k: pinned 20, asked 5"):
        store.pin(board, replace(pin, top_k=5))
    # a store with entries scored otherwise cannot be pinned to another scorer
    legacy = ResultsStore(tmp_path / "legacy")
    record, _ = add(submission, data, store)
    legacy.root.mkdir()
    (legacy.root / f"{record['id']}.json").write_text(json.dumps(record))
    with pytest.raises(ScorerMismatchError, match=r"reader model .*: 'fake-reader', pinned 'tiny'"):
        legacy.pin(board, replace(pin, reader={"backend": "fake", "model": "tiny"}))
    assert not (legacy.root / "boards").exists()


def test_cli_init_board_and_add_check_the_options_against_the_pin(tmp_path, submission, data, capsys):
    results = tmp_path / "r"
    pin = ["leaderboard", "init-board", "--task", "squad", "--results", str(results), "--tokenizer", "simple"]
    assert main([*pin, "--reader", "openai", "--model", "tiny", "--max-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert "reader openai tiny" in out and "at most 8 answer tokens" in out and "tokenizer simple" in out
    doc = json.loads((results / "boards" / "task--squad--v1-2.json").read_text())
    assert doc["board"] == {"kind": "task", "name": "squad", "profile": "v1@2"}
    assert doc["scorer"]["reader"] == doc["scorer"]["judge"] == {"backend": "openai", "model": "tiny"}
    assert doc["scorer"]["sampling"]["max_tokens"] == 8 and doc["scorer"]["top_k"] == 20

    assert main([*pin, "--reader", "openai", "--model", "other"]) == 2
    assert "already pins another scorer" in capsys.readouterr().err
    add = ["leaderboard", "add", str(submission), "--data", str(data[0]), "--results", str(results)]
    before = snapshot(results)
    assert main([*add, "--top-k", "5", "--model", "other", "--base-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "drop --model other (pinned: tiny), --top-k 5 (pinned: 20)" in err
    assert main([*add, "--profile", "memalpha-paper"]) == 1  # the store lacks the pin: not a usage error
    assert "board squad (memalpha-paper@1) has no pinned scorer" in capsys.readouterr().err
    assert snapshot(results) == before


def wait_for_scratch_copy(scratch: Path, process: subprocess.Popen) -> Path:
    """The temporary run folder of a running `add`, once the memories are copied into it."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = sorted(scratch.glob(f"{SCRATCH_PREFIX}*/memories.jsonl"))
        if found:
            return found[0].parent
        if process.poll() is not None:
            pytest.fail(f"add ended ({process.returncode}) before scoring: {process.communicate()[1][-3000:]}")
        time.sleep(0.1)
    process.kill()
    pytest.fail("add never reached scoring")


def test_temp_folder_goes_on_sigterm_and_one_left_by_sigkill_is_swept(tmp_path, data, submission):
    """A reader server that accepts connections and never answers keeps `add` scoring until it is killed."""
    silent = socket.create_server(("127.0.0.1", 0))
    results, scratch = tmp_path / "results", tmp_path / "scratch"
    scratch.mkdir()
    pin = ["init-board", "--task", "squad", "--results", str(results), "--tokenizer", "simple", "--reader", "openai"]
    assert main(["leaderboard", *pin, "--model", "silent"]) == 0
    command = [
        *(sys.executable, "-m", "benchmark.cli", "leaderboard", "add", str(submission), "--data", str(data[0])),
        *("--results", str(results), "--base-url", f"http://127.0.0.1:{silent.getsockname()[1]}/v1", "--quiet"),
        *("--cache", str(tmp_path / "cache.sqlite")),
    ]
    env = {**os.environ, "TMPDIR": str(scratch)}
    try:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            folder = wait_for_scratch_copy(scratch, process)
            process.send_signal(sig)
            process.communicate(timeout=120)
            if sig == signal.SIGTERM:
                assert process.returncode == 128 + signal.SIGTERM and not folder.exists()
            else:
                assert process.returncode == -signal.SIGKILL and folder.exists()  # nothing can clean up on SIGKILL
        with scratch_dir(scratch) as fresh:  # the next temporary folder there sweeps the orphan
            assert list(scratch.iterdir()) == [fresh]
        assert list(scratch.iterdir()) == []
        assert ResultsStore(results).records() == []
    finally:
        silent.close()


def test_init_fill_validate(tmp_path, data, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "memories.jsonl").write_text("".join(json.dumps(memory_line("squad", i)) + "\n" for i in IDS))
    score_run(run, data[0], FakeReader(), counter=get_counter("simple"), show_progress=False)  # a real scores.json
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
    """`memalpha leaderboard add` end to end: a real OpenAI-compatible server on 127.0.0.1 answers, on a board
    pinned to that tiny model with 4 answer tokens (6 questions: at most 24 generated tokens)."""
    results = tmp_path / "results"
    reader = ["--reader", "openai", "--model", serve_tiny.model, "--tokenizer", "simple"]
    init = ["leaderboard", "init-board", "--task", "squad", "--results", str(results), "--max-tokens", "4"]
    assert main([*init, *reader]) == 0
    args = [
        "leaderboard",
        "add",
        str(submission),
        "--data",
        str(data[0]),
        "--results",
        str(results),
        "--base-url",
        serve_tiny.base_url,
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "--quiet",
    ]
    assert main(args) == 0
    (record,) = ResultsStore(results).records()
    assert record["status"] == "rescored"
    assert record["scorer"]["reader"]["model"] == serve_tiny.model
    assert record["scorer"]["reader"]["sampling"]["max_tokens"] == 4
    assert record["scorer"]["budget"]["counter"]["name"] == "simple"
    assert record["scores"]["tasks"]["squad"]["questions"] == 6
    capsys.readouterr()
    assert main([*args, *reader]) != 0  # the same submission again: a duplicate, rejected
    assert "already" in capsys.readouterr().err.lower()
    assert len(ResultsStore(results).records()) == 1
