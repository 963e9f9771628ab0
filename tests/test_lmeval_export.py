"""`memalpha export lm-eval`: tasks built from the real raw samples, exported, found by lm-eval's TaskManager and
run by `lm_eval` itself against a scripted OpenAI-compatible server (its scores, the suite's overall included,
equal our scorer's on the same replies, because the prompts are the same) and against `transformers serve`
(the stop sequence and the template switch are accepted by a real server)."""

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
from benchmark.lmeval_export import END_OF_TURN, instance_mean, overall_share, overall_weights, process_results
from benchmark.metrics import score
from benchmark.running import run_agent
from tasks.build import build_task
from tasks.manifest import load_built

# two AR tasks with different metrics and one TTL task: competency rows and the overall score can differ
MEMBERS = [("squad", "validation"), ("locomo", "test"), ("ttl_trec_coarse", "validation")]
NAMES = ["memalpha_squad_validation", "memalpha_locomo_test", "memalpha_ttl_trec_coarse_validation"]
LOCAL = {**os.environ, "OPENAI_API_KEY": "none", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
THINKING_OFF = '{"enable_thinking": false}'


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
                "--chat-template-kwargs",
                THINKING_OFF,
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
    doc = {"instance_id": "a", "metric": "boxed_label_accuracy", "answers": ["3"], "overall_weight": 1.5}
    assert process_results(doc, ["<think>\\boxed{4}</think> \\boxed{3}"]) == {
        "score": ["a", 1.0],
        "overall": ["a", 1.0, 1.5],
    }


def test_the_mean_of_overall_shares_is_the_mean_of_competency_means():
    """3 AR tasks, 1 TTL task: a plain task mean would weigh AR 3:1; the shares weigh competencies 1:1."""
    by_competency = {"AR": ["a1", "a2", "a3"], "TTL": ["t1"]}
    scores = {"a1": 0.2, "a2": 0.4, "a3": 0.9, "t1": 0.1}
    weights = overall_weights(by_competency)
    assert weights == {"a1": 4 / 6, "a2": 4 / 6, "a3": 4 / 6, "t1": 2.0}
    shares = [overall_share([["i", scores[name], weights[name]]]) for name in scores]
    assert sum(shares) / len(shares) == pytest.approx(((0.2 + 0.4 + 0.9) / 3 + 0.1) / 2)


@pytest.mark.realdata
@pytest.mark.slow
def test_task_manager_finds_the_tasks_and_groups(exported):
    TaskManager = pytest.importorskip("lm_eval.tasks", reason="the lmeval extra is not installed").TaskManager

    found = set(TaskManager(include_path=str(exported)).all_tasks)
    assert {*NAMES, "memalpha_tasks", "memalpha_tasks_AR", "memalpha_tasks_TTL"} <= found


def run_lm_eval(model_args: str, include: Path, out: Path, cwd: Path, *extra: str) -> dict:
    """`lm_eval` (the CLI, in a subprocess) with local-chat-completions on the exported suite; its results."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lm_eval",
            "--model",
            "local-chat-completions",
            "--model_args",
            f"{model_args},num_concurrent=2,max_retries=1",
            "--apply_chat_template",
            "--include_path",
            str(include),
            "--tasks",
            "memalpha_tasks",
            "--output_path",
            str(out),
            *extra,
        ],
        env=LOCAL,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(next(out.rglob("results_*.json")).read_text())["results"]


def reply_from(docs: list[dict]):
    """Answers the gold (bare, so every metric gives 1) to every other question of the AR tasks and to
    three questions in four of the TTL task (so that the competencies score apart), else a wrong answer."""
    by_user = {d["user"]: (i, d) for i, d in enumerate(docs)}

    def reply(request):
        i, doc = by_user[request["messages"][-1]["content"]]
        gold = doc["answers"][0]
        if (i % 4 == 3) if doc["metric"] == "boxed_label_accuracy" else i % 2:
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
    results = run_lm_eval(f"model=scripted,base_url={server.base_url}/chat/completions", exported, out, tmp_path)
    assert all(r["stop"] == [END_OF_TURN] for r in server.requests)
    assert all(r["chat_template_kwargs"] == {"enable_thinking": False} for r in server.requests)
    lm_requests = [
        (r["messages"][0]["role"], r["messages"][0]["content"], r["messages"][1]["content"]) for r in server.requests
    ]
    assert sorted(lm_requests) == sorted(("system", d["system"], d["user"]) for d in docs)

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
    # the suite row is our overall (the mean of the competencies), not the plain mean of the tasks
    assert results["memalpha_tasks"]["overall,none"] == pytest.approx(ours["overall"], **close)
    task_mean = sum(results[n]["score,none"] for n in NAMES) / 3
    assert abs(task_mean - ours["overall"]) > 0.01  # the two rules differ on these replies


@pytest.mark.realdata
@pytest.mark.slow
def test_lm_eval_runs_against_transformers_serve(data, serve_tiny, tmp_path):
    """The real `lm_eval` CLI against a real server: the stop sequence and the thinking switch of the
    export are accepted (an empty `stop` list made `transformers serve` answer 500), and the suite's
    `overall` is the mean of the competency rows lm-eval computed."""
    pytest.importorskip("lm_eval", reason="the lmeval extra is not installed")
    exported = tmp_path / "small"
    small = ["--budget", "400", "--memory-tokens", "300", "--max-tokens", "4", "--chat-template-kwargs", THINKING_OFF]
    tasks = [t for t, _ in MEMBERS]
    command = ["export", "lm-eval", "--tasks", *tasks, "--data", str(data), "--out", str(exported)]
    assert main([*command, "--tokenizer", "simple", *small, "--quiet"]) == 0
    out = tmp_path / "lm_eval"
    model_args = f"model={serve_tiny.model},base_url={serve_tiny.base_url}/chat/completions"
    results = run_lm_eval(model_args, exported, out, tmp_path, "--limit", "3")
    ar = (results[NAMES[0]]["score,none"] + results[NAMES[1]]["score,none"]) / 2
    ttl = results[NAMES[2]]["score,none"]
    assert results["memalpha_tasks_AR"]["score,none"] == pytest.approx(ar)
    assert results["memalpha_tasks"]["overall,none"] == pytest.approx((ar + ttl) / 2)
