"""Scoring end to end: a built task, a memories file, a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import Reply

from benchmark.cli import main
from benchmark.memory import Memory, MemoryEntry, MemoryRecord, write_memories
from tasks.build import build_task
from tasks.chunking import split_sentences
from tasks.manifest import load_built

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def data(raw_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    build_task("squad", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=1, show_progress=False)
    return out


def rows(data: Path):
    dataset, _ = load_built(data, "squad")
    return dataset["train"][0], dataset["validation"][0]


def write_run(run: Path, data: Path, *, with_unknown: bool = False, sentences: bool = False) -> dict:
    """A chunk-store style memory for the train instance: every chunk (or sentence) one semantic entry."""
    train, _ = rows(data)
    run.mkdir(parents=True, exist_ok=True)
    texts = [s.strip() for c in train["chunks"] for s in split_sentences(c)] if sentences else train["chunks"]
    records = [
        MemoryRecord(
            train["instance_id"],
            "squad",
            Memory("", tuple(MemoryEntry(f"s{i}", t) for i, t in enumerate(texts) if t), ()),
        )
    ]
    if with_unknown:
        records.append(MemoryRecord("squad-nope", "squad", Memory()))
    write_memories(run / "memories.jsonl", records)
    return train


def gold_for_even(train):
    """A reader that knows the gold of every other question (by question text in the user message)."""
    golds = {q["question"]: (i, q["answers"][0]) for i, q in enumerate(train["questions"])}

    def reply(request):
        question = request["messages"][-1]["content"]
        i, gold = golds[question]
        return f"The answer is {gold}." if i % 2 == 0 else "I do not know."

    return reply


def score_args(run: Path, data: Path, base_url: str, model: str = "scripted", *extra: str) -> list[str]:
    return [
        "score",
        str(run),
        "--data",
        str(data),
        "--reader",
        "openai",
        "--model",
        model,
        "--base-url",
        base_url,
        "--tokenizer",
        "simple",
        "--quiet",
        "--max-retries",
        "1",
        "--timeout",
        "20",
        *extra,
    ]


def test_score_writes_predictions_scores_report_and_rescoring_is_free(data, tmp_path, scripted_server, capsys):
    run = tmp_path / "run"
    train = write_run(run, data)
    server = scripted_server(gold_for_even(train))
    assert main(score_args(run, data, server.base_url)) == 0
    n = len(train["questions"])
    assert server.count == n

    predictions = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert [p["question_id"] for p in predictions] == [q["question_id"] for q in train["questions"]]
    first = predictions[0]
    assert set(first) >= {
        "instance_id",
        "task",
        "question_id",
        "question",
        "prediction",
        "answers",
        "score",
        "retrieved",
        "prompt_tokens",
        "completion_tokens",
    }
    assert first["score"] == 1.0 and predictions[1]["score"] == 0.0
    assert first["retrieved"]["episodic"] == [] and 0 < len(first["retrieved"]["semantic"]) <= 10
    assert first["prompt_tokens"] > 0 and first["completion_tokens"] == len(first["prediction"].split())

    scores = json.loads((run / "scores.json").read_text())
    expected = sum(i % 2 == 0 for i in range(n)) / n
    assert scores["tasks"]["squad"]["score"] == pytest.approx(expected)
    assert scores["overall"] == scores["competencies"]["AR"] == scores["tasks"]["squad"]["score"]
    assert scores["tasks"]["squad"]["memory_tokens_mean"] > 1000
    assert scores["task_hashes"]["squad"] == load_built(data, "squad")[1]["sha256"]
    assert len(scores["scorer"]["template"]["sha256"]) == 64 and scores["scorer"]["retriever"]["k1"] == 1.5
    assert "mean per instance" in scores["scorer"]["aggregation"]
    report = (run / "report.md").read_text()
    assert rows(data)[1]["instance_id"] not in report  # another split's instance is not missing from this score
    assert "| squad" in capsys.readouterr().out

    before = (run / "scores.json").read_bytes()
    assert main(score_args(run, data, server.base_url)) == 0
    assert server.count == n  # re-scoring asked the reader nothing
    assert (run / "scores.json").read_bytes() == before
    assert f"({n} from the response cache)" in (run / "report.md").read_text()


def test_unknown_instance_is_an_error_naming_it(data, tmp_path, scripted_server, capsys):
    run = tmp_path / "run"
    write_run(run, data, with_unknown=True)
    server = scripted_server(lambda request: "x")
    assert main(score_args(run, data, server.base_url)) == 1
    assert "squad/squad-nope" in capsys.readouterr().err and server.count == 0


def test_failing_reader_stops_with_error_and_keeps_answers(data, tmp_path, scripted_server, capsys):
    run = tmp_path / "run"
    train = write_run(run, data)
    target = train["questions"][5]["question"]
    healthy = {"on": False}

    def reply(request):
        if request["messages"][-1]["content"] == target and not healthy["on"]:
            return Reply(status=503)
        return "some answer"

    server = scripted_server(reply)
    assert main(score_args(run, data, server.base_url, "scripted", "--concurrency", "1")) == 1
    err = capsys.readouterr().err
    assert "503" in err and server.base_url in err
    asked_first = server.count
    healthy["on"] = True
    assert main(score_args(run, data, server.base_url, "scripted", "--concurrency", "1")) == 0
    n = len(train["questions"])
    answered_before = asked_first - 2  # the failed request was tried twice (one retry)
    assert server.count - asked_first == n - answered_before  # nothing answered before is asked again


@pytest.mark.slow
def test_real_server_run_killed_midway_resumes_without_asking_twice(data, tmp_path, serve_tiny):
    """`memalpha score` against `transformers serve` with a tiny model: kill it mid-run, resume."""
    run = tmp_path / "run"
    train = write_run(run, data, sentences=True)  # short entries keep the tiny model's prompts small
    n = len(train["questions"])
    cache = run / ".cache" / "responses.sqlite"
    command = [
        sys.executable,
        "-m",
        "benchmark",
        *score_args(
            run,
            data,
            serve_tiny.base_url,
            serve_tiny.model,
            "--max-tokens",
            "4",
            "--concurrency",
            "2",
            "--top-k",
            "2",
        ),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    answered = 0
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if cache.exists():
            with sqlite3.connect(cache) as db:
                try:
                    answered = db.execute("select count(*) from responses").fetchone()[0]
                except sqlite3.OperationalError:
                    answered = 0
            if answered >= 10:
                break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.kill()
    process.wait()
    with sqlite3.connect(cache) as db:
        kept = db.execute("select count(*) from responses").fetchone()[0]
    assert 10 <= kept < n
    assert not (run / "scores.json").exists()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    report = (run / "report.md").read_text()
    assert f"questions answered: {n} ({kept} from the response cache)" in report
    scores = json.loads((run / "scores.json").read_text())
    assert scores["tasks"]["squad"]["questions"] == n
    assert scores["scorer"]["reader"]["model"] == serve_tiny.model
