"""`memalpha eval --suite` from first use: the 9 MemoryAgentBench sets of the paper built from a local copy
of their hub repo (`MEMALPHA_HUB_MIRROR`), infbench_sum's keyword extraction done by the reader, run and
scored against a real `transformers serve`; and the stops before any work when that cannot succeed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hublayout import write_hub_repo
from servers import free_port
from test_source_mab import REPO, book_row, icl_row, lme_row, metadata, ruler_row

from benchmark.cli import main
from tasks.build import build_task
from tasks.registry import get_suite

ICL_SOURCES = (
    "icl_banking77_5900shot_balance",
    "icl_clinic150_7050shot_balance",
    "icl_nlu_8296shot_balance",
    "icl_trec_coarse_6600shot_balance",
    "icl_trec_fine_6400shot_balance",
)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """A local copy of the MemoryAgentBench hub repo with one small row per set of the mab-paper suite."""
    root = tmp_path_factory.mktemp("hub")
    icl = [{**icl_row(), "metadata": metadata(source, qa_pair_ids=["icl-0", "icl-1"])} for source in ICL_SOURCES]
    write_hub_repo(
        root,
        REPO,
        {
            None: {
                "Accurate_Retrieval": [
                    ruler_row("ruler_qa1_197K", 0, 100),
                    ruler_row("ruler_qa2_421K", 500, 50),
                    lme_row(),
                ],
                "Test_Time_Learning": icl,
                "Long_Range_Understanding": [book_row("infbench_sum_eng_shots2", 1)],
                "Conflict_Resolution": [],
            }
        },
    )
    return root


@pytest.fixture
def first_use(mirror, tmp_path, monkeypatch) -> Path:
    """No --data: tasks are built into $MEMALPHA_DATA from the mirror, as from the hub on a fresh machine."""
    monkeypatch.setenv("MEMALPHA_HUB_MIRROR", str(mirror))
    monkeypatch.setenv("MEMALPHA_DATA", str(tmp_path / "tasks"))
    return tmp_path / "tasks"


def eval_suite(run: Path, base_url: str, model: str, *extra: str) -> list[str]:
    return [
        "eval",
        "--agent",
        "chunk-store",
        "--suite",
        "mab-paper",
        "--out",
        str(run),
        "--reader",
        "openai",
        "--base-url",
        base_url,
        "--model",
        model,
        "--tokenizer",
        "simple",
        "--limit",
        "1",
        "--limit-questions",
        "1",
        "--max-tokens",
        "4",
        "--top-k",
        "2",
        "--max-retries",
        "0",
        "--quiet",
        *extra,
    ]


def test_eval_suite_builds_with_the_readers_llm_step_and_scores_every_task(first_use, serve_tiny, tmp_path):
    run = tmp_path / "run"
    assert main(eval_suite(run, serve_tiny.base_url, serve_tiny.model)) == 0
    suite = [task for task, _ in get_suite("mab-paper").members]
    manifest = json.loads((first_use / "infbench_sum" / "manifest.json").read_text())
    step = manifest["llm_steps"]["keyword_extraction"]
    assert step["status"] == "applied" and step["llm"]["model"] == serve_tiny.model
    assert manifest["tokenizer"]["spec"] == "simple"  # --tokenizer governs the first-use builds too
    scores = json.loads((run / "scores.json").read_text())
    assert sorted(scores["tasks"]) == sorted(suite)  # infbench_sum among them: nothing refused at the end
    assert scores["tasks"]["infbench_sum"]["metric"] == "keyword_recall"
    assert scores["scorer"]["judge"]["model"] == serve_tiny.model  # longmemeval_s is judged
    config = json.loads((run / "config.json").read_text())
    assert config["task_hashes"] == scores["task_hashes"]


def test_run_stops_before_any_work_when_a_build_needs_an_llm(first_use, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["run", "--agent", "chunk-store", "--suite", "mab-paper", "--out", str(run), "--tokenizer", "simple"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "building infbench_sum (keyword_extraction) needs an LLM; name one with --build-llm-model MODEL" in err
    assert "memalpha tasks build infbench_sum" in err
    assert not first_use.exists() and not run.exists()  # nothing built, nothing run


def test_a_dead_judge_stops_eval_before_builds_and_agents(first_use, serve_tiny, tmp_path, capsys):
    run = tmp_path / "run"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    assert main(eval_suite(run, serve_tiny.base_url, serve_tiny.model, "--judge-base-url", dead)) == 1
    assert f"judge: nothing answers at {dead}" in capsys.readouterr().err
    assert not first_use.exists() and not (run / "memories.jsonl").exists()


def test_data_built_without_its_llm_step_is_refused_before_agents(mirror, serve_tiny, tmp_path, capsys):
    data = tmp_path / "data"
    for task, _ in get_suite("mab-paper").members:
        build_task(task, data, hub_mirror=mirror, tokenizer="simple", show_progress=False)  # no LLM
    run = tmp_path / "run"
    assert main([*eval_suite(run, serve_tiny.base_url, serve_tiny.model), "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert f"{data / 'infbench_sum'} was built without its LLM step keyword_extraction" in err
    assert f"memalpha tasks build infbench_sum --out {data} --llm-model MODEL" in err
    assert not run.exists()
