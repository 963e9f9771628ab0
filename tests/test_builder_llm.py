"""The builders' LLM steps wired to the reader backends: `tasks build --llm-model` against a server."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from tasks.manifest import load_built
from tasks.sources.squad import read_squad_file

pytestmark = pytest.mark.realdata


def test_closed_book_filter_runs_through_a_served_model(raw_dir, tmp_path, scripted_server):
    # The first build, without an LLM, tells which questions an instance keeps.
    plain = tmp_path / "plain"
    common = [
        "tasks",
        "build",
        "squad",
        "--from",
        "raw",
        "--raw-dir",
        str(raw_dir),
        "--tokenizer",
        "simple",
        "--limit",
        "1",
        "--quiet",
    ]
    assert main([*common, "--out", str(plain)]) == 0
    _, manifest = load_built(plain, "squad")
    assert manifest["llm_steps"]["closed_book_filter"]["status"] == "skipped"

    # A "model" that knows, closed-book, the answer of every question whose text has an even length.
    squad_file = next((raw_dir / "squad").glob("*.json"))
    gold = {qa.question: qa.answers[0] for p in read_squad_file(squad_file) for qa in p.qas}

    def reply(request):
        question = request["messages"][-1]["content"]
        return gold.get(question, "no idea") if len(question) % 2 == 0 else "I cannot say."

    server = scripted_server(reply)
    filtered = tmp_path / "filtered"
    assert (
        main(
            [
                *common,
                "--out",
                str(filtered),
                "--llm-model",
                "closed-book",
                "--llm-base-url",
                server.base_url,
                "--llm-cache",
                str(tmp_path / "llm.sqlite"),
            ]
        )
        == 0
    )
    assert server.count > 0
    data2, manifest2 = load_built(filtered, "squad")
    step = manifest2["llm_steps"]["closed_book_filter"]
    assert step["status"] == "applied" and step["llm"]["model"] == "closed-book"
    kept = [q["question"] for split in data2 for row in data2[split] for q in row["questions"]]
    assert kept and all(len(q) % 2 == 1 for q in kept)  # every closed-book-answerable question is gone
    assert manifest2["sha256"] != manifest["sha256"]
    asked = server.count
    assert (
        main(
            [
                *common,
                "--out",
                str(tmp_path / "again"),
                "--llm-model",
                "closed-book",
                "--llm-base-url",
                server.base_url,
                "--llm-cache",
                str(tmp_path / "llm.sqlite"),
            ]
        )
        == 0
    )
    assert server.count == asked  # the LLM answers are cached: a rebuild asks nothing again
    assert json.loads((tmp_path / "again" / "squad" / "manifest.json").read_text())["sha256"] == manifest2["sha256"]
