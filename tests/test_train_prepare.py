"""`memalpha train prepare` on tasks built from the real raw samples: the parquet columns verl reads."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmark.cli import main
from reference_agent.training_data import AGENT_NAME, prepare
from tasks.atomic import TEMP_PREFIX, OutputError
from tasks.build import build_task
from tasks.errors import TaskError
from tasks.manifest import load_built

pytestmark = pytest.mark.realdata
TASKS = ("squad", "ttl_trec_coarse")


@pytest.fixture(scope="module")
def built(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("built-train")
    for task in TASKS:
        build_task(task, out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=2, show_progress=False)
    return out


def test_rows_carry_what_verl_and_the_recipe_read(built, tmp_path):
    summary = prepare(built, tmp_path, tasks=list(TASKS))
    train = pq.read_table(tmp_path / "train.parquet")
    assert set(train.column_names) == {
        "prompt",
        "data_source",
        "agent_name",
        "reward_model",
        "chunks",
        "questions",
        "extra_info",
    }
    rows = train.to_pylist()
    expected = []
    for task in TASKS:
        data, manifest = load_built(built, task)
        expected += [(task, r, manifest["sha256"]) for r in data["train"].to_list()]
    assert len(rows) == len(expected) == summary.rows["train.parquet"]
    for index, (row, (task, source, sha)) in enumerate(zip(rows, expected, strict=True)):
        assert row["data_source"] == task and row["agent_name"] == AGENT_NAME
        assert row["prompt"][0]["role"] == "user" and source["instance_id"] in row["prompt"][0]["content"]
        assert json.loads(row["chunks"]) == source["chunks"]  # every chunk, in order, unchanged
        questions = json.loads(row["questions"])
        assert [q["question_id"] for q in questions] == [q["question_id"] for q in source["questions"]]
        assert all(q["answers"] == s["answers"] for q, s in zip(questions, source["questions"], strict=True))
        assert row["extra_info"] == {
            "index": index,  # verl's sample index
            "instance_id": source["instance_id"],
            "task": task,
            "split": "train",
            "num_chunks": len(source["chunks"]),
            "num_questions": len(source["questions"]),
            "context_tokens": source["context_tokens"],
            "task_sha256": sha,
        }
        assert row["reward_model"] == {"style": "memalpha", "ground_truth": ""}
    val = pq.read_table(tmp_path / "val.parquet").to_pylist()
    assert {r["extra_info"]["split"] for r in val} == {"validation"}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["task_hashes"] == summary.tasks and set(summary.tasks) == set(TASKS)


def test_cli_limit_and_no_validation(built, tmp_path, capsys):
    code = main(
        [
            "train",
            "prepare",
            "--data",
            str(built),
            "--out",
            str(tmp_path),
            "--tasks",
            "squad",
            "--val-suite",
            "none",
            "--limit",
            "1",
        ]
    )
    assert code == 0 and "train.parquet: 1 rows" in capsys.readouterr().out
    assert pq.read_table(tmp_path / "train.parquet").num_rows == 1
    assert not (tmp_path / "val.parquet").exists()


def test_missing_task_fails_before_writing(built, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "prepare", "--data", str(built), "--out", str(out)]) == 1  # the whole suite: failure
    assert "hotpotqa" in capsys.readouterr().err and not out.exists()
    with pytest.raises(TaskError, match="not in suite memalpha-train"):
        prepare(built, out, tasks=["ruler_qa1_197k"])


def test_a_failed_prepare_keeps_the_older_files_whole(built, tmp_path, monkeypatch):
    """The parquet files and their manifest are replaced as one set (tasks.atomic): a full disk while the
    second file is written leaves every older file as it was, and no temporary file."""
    prepare(built, tmp_path, tasks=list(TASKS), limit=1)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"train.parquet", "val.parquet", "manifest.json"}
    real_write = pq.write_table
    calls = []

    def full_disk_on_second(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:
            Path(where).write_bytes(b"PAR1 cut")  # a part written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", full_disk_on_second)
    with pytest.raises(OutputError, match=r"val\.parquet: cannot write \(No space left on device\); older files"):
        prepare(built, tmp_path, tasks=list(TASKS), limit=2)
    assert all(Path(c).parent == tmp_path and Path(c).name.startswith(TEMP_PREFIX) for c in calls)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.setattr(pq, "write_table", real_write)
    assert prepare(built, tmp_path, tasks=list(TASKS), limit=2).rows["train.parquet"] == 2 * len(TASKS)
    assert pq.read_table(tmp_path / "train.parquet").num_rows == 2 * len(TASKS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "train.parquet", "val.parquet"]
    prepare(built, tmp_path, tasks=list(TASKS), val_suite=None)  # no validation now: the older one goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "train.parquet"]
