"""Scorer profiles: look-up, what each binds, and `memalpha metric` (the metric path users and tests share)."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.profiles import (
    PAPER_METRICS,
    ProfileError,
    get_profile,
    is_paper_task,
    profile_ids,
    release_warnings,
)
from tasks.catalog import LABEL_PROMPT
from tasks.registry import all_tasks, get_suite
from tasks.wrappers import label_question


def test_profiles_resolve_by_name_or_exact_version():
    assert get_profile().id == get_profile("v1").id == "v1@2"  # a name alone is its latest version
    assert get_profile("v1@1").id == "v1@1" and get_profile("memalpha-paper").id == "memalpha-paper@1"
    assert set(profile_ids()) == {"v1@1", "v1@2", "memalpha-paper@1", "memalpha-train@1"}
    for bad, hint in (("memalpha_paper", "memalpha-paper"), ("v1@9", "v1@2")):
        with pytest.raises(ProfileError, match=f"unknown scorer profile '{bad}'; did you mean '{hint}'"):
            get_profile(bad)


@pytest.mark.parametrize("profile", ["v1@1", "v1@2", "memalpha-paper@1", "memalpha-train@1"])
def test_every_task_has_a_metric_in_every_profile(profile):
    p = get_profile(profile)
    for spec in all_tasks():
        reward_without_judge = p.name == "memalpha-train" and spec.name == "longmemeval_s"
        assert p.scorer_for(spec.name).judged == (spec.metric == "llm_judge" and not reward_without_judge)
    with pytest.raises(ProfileError, match="no metric for task 'nope'"):
        p.scorer_for("nope")


def test_the_paper_profile_scores_paper_tasks_as_mem_alpha_and_the_others_as_memoryagentbench():
    paper = get_profile("memalpha-paper")
    paper_tasks = set(get_suite("memalpha-train").tasks) | set(get_suite("mab-paper").tasks)
    for task in paper_tasks:
        assert paper.scorer_for(task).id.startswith("memalpha-eval:") or paper.scorer_for(task).judged
    for task in ("eventqa", "detective_qa", "factconsolidation_sh", "locomo", "scaling_squad_8k"):
        assert paper.scorer_for(task).id.startswith("mab:") and not is_paper_task(task)
    assert set(PAPER_METRICS) | {t.name for t in all_tasks() if t.name.startswith("scaling_")} == {
        t.name for t in all_tasks()
    }
    # the training reward: ',' keywords for booksum, ROUGE-L for infbench_sum, no judge for longmemeval_s
    train = get_profile("memalpha-train")
    assert train.scorer_for("booksum").id == "memalpha-train:booksum_keywords"
    assert train.scorer_for("infbench_sum").id == "memalpha-train:infbench_sum_rougeL"
    assert paper.scorer_for("longmemeval_s").judged and not train.scorer_for("longmemeval_s").judged
    assert train.scorer_for("lme_train").judged and train.judge.verdict is paper.judge.verdict


def test_what_each_profile_retrieves_with():
    question = label_question("how do I reset my card pin")
    user = f"{LABEL_PROMPT}\n\n{question}"
    assert get_profile("memalpha-paper").retrieval.query_text(question, user, "boxed_label_accuracy") == user
    assert get_profile("v1@2").retrieval.query_text(question, user, "boxed_label_accuracy") == (
        "how do I reset my card pin"
    )
    assert get_profile("v1@2").retrieval.query_text("Who?", "x\n\nWho?", "substring_em") == "Who?"
    assert get_profile("v1@1").retrieval.query_text(question, user, "boxed_label_accuracy") == question
    assert get_profile("memalpha-paper").retrieval.epsilon == get_profile("v1@2").retrieval.epsilon == 0.25
    assert get_profile("v1@1").retrieval.epsilon is None


def test_release_warnings_only_for_paper_tasks_not_built_from_the_papers_release():
    manifests = {
        "squad": {"origin": "raw", "source": {"id": "squad"}},
        "booksum": {"origin": "release", "source": {"id": "YuWangX/Memalpha"}},
        "icl_nlu": {"origin": "hub", "source": {"id": "ai-hyz/MemoryAgentBench"}},
        "locomo": {"origin": "raw", "source": {"id": "locomo"}},  # beyond the paper: no warning
    }
    warnings = release_warnings(get_profile("memalpha-paper"), manifests)
    assert [w.split(":")[0] for w in warnings] == ["icl_nlu", "squad"]
    assert "YuWangX/Memalpha / YuWangX/Memalpha-Memoryagentbench" in warnings[0]
    assert release_warnings(get_profile("v1"), manifests) == []


@pytest.mark.parametrize("command", [["score"], ["eval"], ["metric"], ["leaderboard", "add"]])
def test_every_scoring_command_takes_a_profile_and_explains_it(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "--profile" in out
    assert ("--reader-template" in out) == (command in (["score"], ["eval"]))


# ---------------------------------------------------------------- memalpha metric


def run_metric(capsys, *args: str) -> tuple[int, list[dict], str]:
    capsys.readouterr()
    code = main(["metric", *args])
    captured = capsys.readouterr()
    return code, [json.loads(x) for x in captured.out.splitlines()], captured.err


LINES = [
    {"task": "squad", "prediction": "It is in Paris, France.", "golds": ["paris"]},
    {"task": "icl_banking77", "prediction": "\\boxed{\\text{3}}", "golds": ["3"]},
    {"task": "booksum", "prediction": "War and peace.", "golds": ["war, peace,love"]},
    {"task": "lme_train", "prediction": "He moved to Lyon.", "golds": ["Lyon"], "judge_reply": "Yes, nothing missing."},
]


def test_metric_scores_each_line_in_order_by_the_profile(tmp_path, capsys):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in LINES) + "\n\n", encoding="utf-8")
    code, paper, _ = run_metric(capsys, str(path), "--profile", "memalpha-paper")
    assert code == 0 and [p["task"] for p in paper] == [x["task"] for x in LINES]
    assert [p["score"] for p in paper] == [1.0, 0.0, 0.5, 0.0]  # nested box fails; "a,b" is one keyword; "no"
    assert paper[0]["scorer"] == "memalpha-eval:squad_hotpotqa" and paper[3]["scorer"] == "memalpha-eval:rubric"
    assert {k: paper[0][k] for k in LINES[0]} == LINES[0]  # the line comes back as given, plus the score
    code, ours, _ = run_metric(capsys, str(path))
    assert code == 0 and [p["score"] for p in ours] == pytest.approx([1.0, 1.0, 2 / 3, 1.0])


def test_metric_reads_stdin(capsys, monkeypatch):
    import io

    stdin = io.TextIOWrapper(io.BytesIO((json.dumps(LINES[0]) + "\n").encode()))  # read as bytes, by .buffer
    monkeypatch.setattr("sys.stdin", stdin)
    code, out, _ = run_metric(capsys, "--profile", "memalpha-train@1")
    assert code == 0 and out[0]["score"] == 1.0 and out[0]["scorer"] == "memalpha-train:squad_hotpotqa"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        (json.dumps(["a"]), "line 2: expected a JSON object, found list"),
        (json.dumps({"task": "nope", "prediction": "x", "golds": ["y"]}), "line 2, field 'task': profile v1@2 has no"),
        (json.dumps({"task": "squad", "prediction": 3, "golds": ["y"]}), "line 2, field 'prediction'"),
        (json.dumps({"task": "squad", "prediction": "x", "golds": []}), "line 2, field 'golds': expected a non-empty"),
        (json.dumps({"task": "squad", "prediction": "x", "golds": [1]}), "line 2, field 'golds'"),
        (json.dumps({"task": "longmemeval_s", "prediction": "x", "golds": ["y"]}), "line 2, field 'judge_reply'"),
    ],
)
def test_metric_names_file_line_and_field_and_keeps_earlier_lines(tmp_path, capsys, bad, message):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(LINES[0]) + "\n" + bad + "\n" + json.dumps(LINES[1]) + "\n", encoding="utf-8")
    code, out, err = run_metric(capsys, str(path))
    assert code == 1 and f"{path}, {message}" in err
    assert [o["task"] for o in out] == ["squad"]  # the line before the bad one was written


def test_metric_refuses_what_the_original_scorer_failed_on(tmp_path, capsys):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"task": "eventqa", "prediction": "paris", "golds": [["Paris"], ["Lyon"]]}) + "\n")
    code, _, err = run_metric(capsys, str(path), "--profile", "memalpha-paper")
    assert code == 1 and "field 'golds': the original scorer mab:eventqa_parsed fails on this input" in err
    code, out, _ = run_metric(capsys, str(path))  # v1 takes every alias
    assert code == 0 and out[0]["score"] == 1.0


def test_metric_on_a_missing_file_and_an_unknown_profile(tmp_path, capsys):
    assert main(["metric", str(tmp_path / "none.jsonl")]) == 1
    assert "none.jsonl: cannot read" in capsys.readouterr().err
    assert main(["metric", "--profile", "paper", str(tmp_path / "none.jsonl")]) == 2
    assert "unknown scorer profile 'paper'" in capsys.readouterr().err
