"""`memalpha export lm-eval`: tasks built from the real raw samples, exported, found by lm-eval's TaskManager and
run by `lm_eval` itself against a scripted OpenAI-compatible server; its scores equal our scorer's on the same
replies, because the prompts are the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.agents.base import InstanceInfo
from benchmark.agents.baselines import LongContextAgent
from benchmark.cli import main
from benchmark.lmeval_export import instance_mean, process_results
from benchmark.metrics import score
from benchmark.running import run_agent
from tasks.build import build_task
from tasks.manifest import load_built

# two AR tasks with different metrics and one TTL task: competency rows and the overall score can differ
MEMBERS = [("squad", "validation"), ("locomo", "test"), ("ttl_trec_coarse", "validation")]
NAMES = ["memalpha_squad_validation", "memalpha_locomo_test", "memalpha_ttl_trec_coarse_validation"]
LOCAL = {**os.environ, "OPENAI_API_KEY": "none", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def data(raw_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    for task, _ in MEMBERS:
        build_task(task, out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=1, show_progress=False)
    return out


@pytest.fixture(scope="module")
def exported(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lmeval")
    tasks = [t for t, _ in MEMBERS]
    assert (
        main(
            [
                "export",
                "lm-eval",
                "--tasks",
                *tasks,
                "lme_train",
                "--split",
                "validation",
                "--data",
                str(data),
                "--out",
                str(out),
                "--tokenizer",
                "simple",
                "--quiet",
            ]
        )
        == 2
    )  # lme_train has no validation split
    assert (
        main(
            [
                "export",
                "lm-eval",
                "--tasks",
                *tasks,
                "--data",
                str(data),
                "--out",
                str(out),
                "--tokenizer",
                "simple",
                "--quiet",
            ]
        )
        == 0
    )
    return out


def docs_of(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / "data" / f"{name}.jsonl").read_text().splitlines()]


@pytest.mark.realdata
def test_export_writes_one_doc_per_question_with_the_long_context_prompt(exported, data):
    for (task, split), name in zip(MEMBERS, NAMES, strict=True):
        dataset, _ = load_built(data, task)
        row = dataset[split][0]
        docs = docs_of(exported, name)
        assert [(d["question_id"], d["answers"]) for d in docs] == [
            (q["question_id"], q["answers"]) for q in row["questions"]
        ]
        session = LongContextAgent(tokenizer="simple").new_session(
            InstanceInfo(row["instance_id"], task, "AR", len(row["chunks"]))
        )
        for chunk in row["chunks"]:
            session.observe(chunk)
        core = session.memory().core
        for doc, q in zip(docs, row["questions"], strict=True):
            assert f"<core_memory>\n{core}\n</core_memory>" in doc["system"]
            assert doc["user"].endswith(q["question"])
    readme = (exported / "README.md").read_text()
    assert "--include_path" in readme and "memalpha_tasks" in readme
    assert "from benchmark.lmeval_export import" in (exported / "utils.py").read_text()


@pytest.mark.realdata
def test_judge_tasks_are_skipped_with_a_note(data, tmp_path, capsys):
    assert (
        main(
            [
                "export",
                "lm-eval",
                "--tasks",
                "squad",
                "longmemeval_s",
                "--data",
                str(data),
                "--out",
                str(tmp_path),
                "--tokenizer",
                "simple",
                "--quiet",
            ]
        )
        == 0
    )
    assert "skipped longmemeval_s: scored by an LLM judge" in capsys.readouterr().err
    assert not list(tmp_path.glob("*longmemeval*"))
    group = (tmp_path / "memalpha_tasks.yaml").read_text()
    assert "longmemeval_s: scored by an LLM judge" in group


def test_instance_mean_weighs_instances_equally():
    items = [["a", 1.0], ["a", 1.0], ["a", 1.0], ["b", 0.0]]
    assert instance_mean(items) == 0.5  # a question mean would say 0.75
    doc = {"instance_id": "a", "metric": "boxed_label_accuracy", "answers": ["3"]}
    assert process_results(doc, ["<think>\\boxed{4}</think> \\boxed{3}"]) == {"score": ["a", 1.0]}


@pytest.mark.realdata
@pytest.mark.slow
def test_task_manager_finds_the_tasks_and_groups(exported):
    TaskManager = pytest.importorskip("lm_eval.tasks", reason="the lmeval extra is not installed").TaskManager

    found = set(TaskManager(include_path=str(exported)).all_tasks)
    assert {*NAMES, "memalpha_tasks", "memalpha_tasks_AR", "memalpha_tasks_TTL"} <= found


def reply_from(docs: list[dict]):
    """Answers the gold (bare, so every metric gives 1) to every other question, else a wrong answer."""
    by_user = {d["user"]: (i, d) for i, d in enumerate(docs)}

    def reply(request):
        i, doc = by_user[request["messages"][-1]["content"]]
        gold = doc["answers"][0]
        if i % 2:
            return "I do not know."
        return f"\\boxed{{{gold}}}" if doc["metric"] == "boxed_label_accuracy" else gold

    return reply


@pytest.mark.realdata
@pytest.mark.slow
def test_lm_eval_scores_equal_ours(exported, data, scripted_server, tmp_path):
    pytest.importorskip("lm_eval", reason="the lmeval extra is not installed")
    docs = [d for name in NAMES for d in docs_of(exported, name)]
    server = scripted_server(reply_from(docs))
    out = tmp_path / "lm_eval"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lm_eval",
            "--model",
            "local-chat-completions",
            "--model_args",
            f"model=scripted,base_url={server.base_url}/chat/completions,num_concurrent=1,max_retries=1",
            "--apply_chat_template",
            "--include_path",
            str(exported),
            "--tasks",
            "memalpha_tasks",
            "--output_path",
            str(out),
        ],
        env=LOCAL,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lm_requests = [
        (r["messages"][0]["role"], r["messages"][0]["content"], r["messages"][1]["content"]) for r in server.requests
    ]
    assert sorted(lm_requests) == sorted(("system", d["system"], d["user"]) for d in docs)
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]

    # the same replies through our pipeline: the long-context agent, then `memalpha score`
    run_agent(LongContextAgent(tokenizer="simple"), tmp_path / "run", data, MEMBERS, show_progress=False)
    server.requests.clear()
    assert (
        main(
            [
                "score",
                str(tmp_path / "run"),
                "--data",
                str(data),
                "--reader",
                "openai",
                "--model",
                "scripted",
                "--base-url",
                server.base_url,
                "--tokenizer",
                "simple",
                "--quiet",
            ]
        )
        == 0
    )
    ours = json.loads((tmp_path / "run" / "scores.json").read_text())
    assert sorted((r["messages"][0]["content"], r["messages"][1]["content"]) for r in server.requests) == sorted(
        (s, u) for _, s, u in lm_requests
    )

    close = {"abs": 1e-6}  # scores.json rounds to 6 decimals
    for (task, _), name in zip(MEMBERS, NAMES, strict=True):
        task_docs = docs_of(exported, name)
        reply = reply_from(docs)
        expected = sum(
            score(d["metric"], reply({"messages": [{"content": d["user"]}]}), d["answers"]) for d in task_docs
        ) / len(task_docs)
        assert 0 < expected < 1
        assert results[name]["score,none"] == pytest.approx(expected)
        assert ours["tasks"][task]["score"] == pytest.approx(expected, **close)
    competencies = [results[f"memalpha_tasks_{c}"]["score,none"] for c in ("AR", "TTL")]
    assert competencies == pytest.approx([ours["competencies"]["AR"], ours["competencies"]["TTL"]], **close)
    assert sum(competencies) / 2 == pytest.approx(ours["overall"], **close)
    # lm-eval averages a group over its leaf tasks, so the suite row is the plain mean of the tasks
    assert results["memalpha_tasks"]["score,none"] == pytest.approx(sum(results[n]["score,none"] for n in NAMES) / 3)
