"""Scoring end to end: a built task, a memories file, a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import MALFORMED_REPLIES, TRANSIENT_ERRORS, Faults, Reply

from benchmark.cli import main
from benchmark.memory import Memory, MemoryEntry, MemoryRecord, write_memories
from benchmark.readers import openai_reader
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
    assert scores["scorer"]["profile"] == "v1@2" and all(p["profile"] == "v1@2" for p in predictions)
    assert scores["warnings"] == [] and scores["tasks"]["squad"]["origin"] == "raw"
    assert scores["averages"] == {"mean_of_competencies": scores["overall"]}
    assert scores["format"] == "memalpha-bench/scores@2"
    assert scores["uncertainty"]["tasks"]["squad"] == {"se": None, "ci": None}  # one instance: no spread to measure
    report = (run / "report.md").read_text()
    assert rows(data)[1]["instance_id"] not in report  # another split's instance is not missing from this score
    assert "Standard errors: over instances" in report and "| SE " in report
    timings = report.split("## Timings")[1].split("\n## ")[0]
    table = {
        cells[0]: [float(c.replace(",", "")) for c in cells[1:]]
        for line in timings.splitlines()
        if line.startswith("| ") and "phase" not in line
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert list(table) == ["load", "retrieval and prompts", "reader", "judge", "metrics", "total"]
    assert table["total"][0] == pytest.approx(sum(wall for wall, _ in list(table.values())[:-1]), abs=0.02)
    assert table["reader"][0] > 0 and table["judge"] == [0.0, 0.0]  # squad has no judge
    assert "Peak memory of the process:" in timings
    assert "| squad" in capsys.readouterr().out

    before = (run / "scores.json").read_bytes()
    assert main(score_args(run, data, server.base_url)) == 0
    assert server.count == n  # re-scoring asked the reader nothing
    assert (run / "scores.json").read_bytes() == before
    assert f"({n} from the response cache)" in (run / "report.md").read_text()


def test_paper_profile_with_a_template_file_records_both_and_warns_on_the_tasks_origin(
    data, tmp_path, scripted_server, capsys
):
    run = tmp_path / "run"
    write_run(run, data)
    seen = []

    def reply(request):
        seen.append(request)
        return "I think it is " + request["messages"][-1]["content"]

    server = scripted_server(reply)
    template = tmp_path / "mine.jinja"
    template.write_text(
        "{% block system %}MEMORY FOR {{ task }}: {{ core }}{% for e in semantic %}\n- {{ e.content }}{% endfor %}"
        "{% endblock %}{% block user %}{{ question }}{% endblock %}",
        encoding="utf-8",
    )
    args = score_args(run, data, server.base_url, "scripted", "--profile", "memalpha-paper")
    assert main([*args, "--reader-template", str(template)]) == 0
    assert "warning: squad: built --from raw (squad), not from the release the paper used" in capsys.readouterr().err
    scores = json.loads((run / "scores.json").read_text())
    assert scores["scorer"]["profile"] == "memalpha-paper@1" and scores["warnings"][0].startswith("squad: built")
    assert scores["scorer"]["template"] == {
        "name": "reader_file:mine.jinja",
        "sha256": hashlib.sha256(template.read_bytes()).hexdigest(),
        "file": str(template),
    }
    assert scores["tasks"]["squad"]["metric"] == "memalpha-eval:squad_hotpotqa"
    assert set(scores["averages"]) == {"mean_of_competencies", "mean_of_tasks"}
    assert scores["scorer"]["retriever"]["idf_floor"] == "0.25 x mean idf"
    predictions = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert {p["profile"] for p in predictions} == {"memalpha-paper@1"}
    assert seen[0]["messages"][0]["content"].startswith("MEMORY FOR squad:")
    assert seen[0]["temperature"] == 0.7 and seen[0]["top_p"] == 0.95  # the memory server's sampling
    report = (run / "report.md").read_text()
    assert "Scorer profile: memalpha-paper@1" in report and "- squad: built --from raw" in report


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


# --- faults: malformed replies, persistent failures, resume -------------------------------------------


@pytest.fixture
def no_waits(monkeypatch) -> None:
    """Retries go again at once (the backoff is the reader's business, tested on its own)."""

    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(openai_reader, "pause", no_wait)


def test_scores_with_injected_faults_equal_scores_without(data, tmp_path, scripted_server, no_waits):
    """A server that answers 30% of requests with a malformed reply or a transient error (every class in
    turn): with retries the predictions and scores are those of a clean server."""
    train = write_run(tmp_path / "clean", data)
    write_run(tmp_path / "faulty", data)
    clean = scripted_server(gold_for_even(train))
    faults = Faults(gold_for_even(train), 0.3, {**MALFORMED_REPLIES, **TRANSIENT_ERRORS}, seed=7)
    faulty = scripted_server(faults)
    assert main(score_args(tmp_path / "clean", data, clean.base_url)) == 0
    retries = ("--max-retries", "12", "--concurrency", "4")
    assert main(score_args(tmp_path / "faulty", data, faulty.base_url, "scripted", *retries)) == 0

    n = len(train["questions"])
    assert clean.count == n and faulty.count == n + sum(faults.injected.values())
    assert all(count > 0 for count in faults.injected.values()), faults.injected  # every class was sent
    predictions = [(run / "predictions.jsonl").read_text() for run in (tmp_path / "clean", tmp_path / "faulty")]
    assert predictions[0] == predictions[1]
    scores = [json.loads((run / "scores.json").read_text()) for run in (tmp_path / "clean", tmp_path / "faulty")]
    for kept in scores:
        del kept["scorer"]["reader"]["base_url"]  # the only difference: the two servers' addresses
    assert scores[0] == scores[1]
    assert scores[0]["tasks"]["squad"]["score"] == pytest.approx(sum(i % 2 == 0 for i in range(n)) / n)


def test_failed_questions_are_listed_nothing_is_scored_and_a_resume_asks_only_them(
    data, tmp_path, scripted_server, capsys, no_waits
):
    run = tmp_path / "run"
    train = write_run(run, data)
    questions = train["questions"]
    broken = {
        questions[1]["question"]: MALFORMED_REPLIES["null content"],
        questions[4]["question"]: MALFORMED_REPLIES["an HTML page"],
        questions[6]["question"]: Reply(status=400, message="prompt holds an invalid token"),
    }
    healthy = {"on": False}
    answer = gold_for_even(train)

    def reply(body):
        question = body["messages"][-1]["content"]
        return broken[question] if question in broken and not healthy["on"] else answer(body)

    server = scripted_server(reply)
    assert main(score_args(run, data, server.base_url)) != 0
    err = capsys.readouterr().err
    failed_ids = [questions[i]["question_id"] for i in (1, 4, 6)]
    instance = train["instance_id"]
    for question_id in failed_ids:
        assert f"squad/{instance}/{question_id} (reader)" in err
    assert "3 of" in err and "run the same command again" in err
    lines = [json.loads(line) for line in (run / "failures.jsonl").read_text().splitlines()]
    assert [(f["instance_id"], f["question_id"], f["phase"]) for f in lines] == [
        (instance, q, "reader") for q in failed_ids
    ]
    reasons = [f["reason"] for f in lines]
    assert "no content" in reasons[0] and "502 Bad Gateway" in reasons[1]
    assert "HTTP 400: prompt holds an invalid token" in reasons[2]
    assert not (run / "scores.json").exists() and not (run / "predictions.jsonl").exists()

    # the same failures again: the file is rewritten, not appended to
    assert main(score_args(run, data, server.base_url)) != 0
    assert len((run / "failures.jsonl").read_text().splitlines()) == 3

    healthy["on"] = True
    asked_before = server.count
    assert main(score_args(run, data, server.base_url)) == 0
    resumed = {body["messages"][-1]["content"] for body in server.requests[asked_before:]}
    assert resumed == set(broken) and server.count - asked_before == 3
    assert not (run / "failures.jsonl").exists()
    n = len(questions)
    scores = json.loads((run / "scores.json").read_text())
    assert scores["tasks"]["squad"]["score"] == pytest.approx(sum(i % 2 == 0 for i in range(n)) / n)


def test_a_failed_judge_verdict_is_a_failed_question_too(tmp_path, scripted_server, capsys, no_waits):
    """LLM-judged questions: a verdict that never comes fails the question (phase judge); the resume
    asks the judge for that verdict alone and the reader nothing."""
    from test_source_longmemeval import oracle

    raw = tmp_path / "raw" / "longmemeval"
    raw.mkdir(parents=True)
    (raw / "longmemeval_oracle.json").write_text(json.dumps(oracle()))
    data = tmp_path / "data"
    build_task("lme_train", data, origin="raw", raw_dir=raw.parent, tokenizer="simple", show_progress=False)
    row = load_built(data, "lme_train")[0]["train"][0]
    run = tmp_path / "run"
    run.mkdir()
    write_memories(run / "memories.jsonl", [MemoryRecord(row["instance_id"], "lme_train", Memory("lamps", (), ()))])
    target = row["questions"][2]["question"]
    healthy = {"on": False}

    def verdict(body):
        if target in body["messages"][-1]["content"] and not healthy["on"]:
            return MALFORMED_REPLIES["empty choices"]
        return "yes"

    reader, judge = scripted_server(lambda body: "in the hall"), scripted_server(verdict)
    command = [*score_args(run, data, reader.base_url), "--judge-base-url", judge.base_url]
    assert main(command) != 0
    lines = [json.loads(line) for line in (run / "failures.jsonl").read_text().splitlines()]
    assert [(f["question_id"], f["phase"]) for f in lines] == [(row["questions"][2]["question_id"], "judge")]
    assert "no choices" in lines[0]["reason"]
    assert f"/{row['questions'][2]['question_id']} (judge)" in capsys.readouterr().err

    healthy["on"] = True
    asked = reader.count, judge.count
    assert main(command) == 0
    assert reader.count == asked[0] and judge.count == asked[1] + 1
    assert json.loads((run / "scores.json").read_text())["tasks"]["lme_train"]["score"] == 1.0
