"""The `mem0` adapter against a scripted OpenAI-compatible server (chat for mem0's extraction, and a
deterministic embeddings endpoint), on tasks built from the real SQuAD sample: each chunk goes through
`Memory.add`, the exported memory is what mem0 itself holds, the settings and version are recorded,
`memalpha eval` + `leaderboard add` run end to end, and a missing library names its extra."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys

import pytest
from agent_eval import eval_and_add, is_reader

from benchmark.agents import make_agent
from benchmark.agents.base import InstanceInfo, MissingExtraError
from benchmark.running import run_agent

# Not imported here: mem0 reads MEM0_DIR and MEM0_TELEMETRY once, when first imported (by the agent).
pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(importlib.util.find_spec("mem0") is None, reason="the mem0 extra is not installed"),
]


@pytest.fixture(scope="module", autouse=True)
def mem0_home(tmp_path_factory):
    """mem0's settings folder and telemetry switch, read once when mem0 is first imported."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-home")))
        mp.setenv("MEM0_TELEMETRY", "False")
        yield


def facts_of(chunk: str) -> list[str]:
    """What the scripted extractor finds in a chunk: two facts named after it."""
    tag = hashlib.sha256(chunk.encode()).hexdigest()[:8]
    return [f"Fact {tag} one", f"Fact {tag} two"]


def extractor(body: dict) -> str:
    """mem0's extraction call: a JSON object of new memories, from the 'New Messages' section."""
    if is_reader(body):
        return "I do not know."
    prompt = body["messages"][-1]["content"]
    new = re.search(r"## New Messages\nuser: (.*?)\n\n\n## ", prompt, re.S).group(1)
    facts = facts_of(new)
    return json.dumps({"memory": [{"id": str(i), "text": text} for i, text in enumerate(facts)]})


def options(server, **extra: str) -> dict[str, str]:
    return {"base_url": server.base_url, "model": "scripted", "embedding_dims": "64", **extra}


def test_each_chunk_goes_through_add_and_the_export_is_what_mem0_holds(squad_chunks, scripted_server, tmp_path):
    server = scripted_server(extractor)
    agent = make_agent("mem0", options(server, workdir=str(tmp_path / "stores")))
    assert sys.modules["mem0.memory.telemetry"].MEM0_TELEMETRY is False  # nothing is sent anywhere
    iid, instance_chunks = next(iter(squad_chunks.items()))
    session = agent.new_session(InstanceInfo(iid, "squad", "AR", len(instance_chunks)))
    for chunk in instance_chunks:
        session.observe(chunk)
    memory = session.memory()
    held = session.library.get_all(filters={"user_id": iid}, top_k=1000)["results"]  # mem0's own account
    assert sorted(e.content for e in memory.semantic) == sorted(m["memory"] for m in held)
    assert [e.content for e in memory.semantic] == [f for c in instance_chunks for f in facts_of(c)]  # added order
    assert [e.id for e in memory.semantic] == [f"s{i}" for i in range(len(held))]
    assert memory.core == "" and memory.episodic == ()
    stats = session.stats()
    assert stats["generations"] == len(instance_chunks) and stats["added"] == stats["held"] == len(held)
    # every chunk reached mem0's LLM as the new message; the embedder was asked through the server
    prompts = [b["messages"][-1]["content"] for b in server.requests]
    assert all(any(c in p for p in prompts) for c in instance_chunks)
    assert server.embedding_requests and all(r["dimensions"] == 64 for r in server.embedding_requests)
    assert (tmp_path / "stores" / f"squad-{iid}" / "history.db").is_file()
    agent.close()
    assert (tmp_path / "stores").is_dir()  # a workdir given by the user is kept


def test_the_run_config_records_the_library_version_and_settings(squad_data, scripted_server, tmp_path):
    from importlib.metadata import version

    server = scripted_server(extractor)
    agent = make_agent("mem0", options(server, temperature="0"))
    workdir = agent.workdir
    run_agent(agent, tmp_path / "run", squad_data, [("squad", "validation")], limit=1, show_progress=False)
    assert not workdir.exists()  # the agent's own temporary stores are removed at the end
    described = json.loads((tmp_path / "run" / "config.json").read_text())["agent"]
    library = described["library"]
    assert library["package"] == "mem0ai" and library["version"] == version("mem0ai")
    assert library["settings"]["vector_store"]["provider"] == "qdrant"
    assert library["settings"]["embedder"]["config"] == {
        "model": "text-embedding-3-small",
        "openai_base_url": server.base_url,
        "embedding_dims": 64,
    }
    assert library["settings"]["llm"]["temperature"] == 0.0
    assert all(b["temperature"] == 0.0 for b in server.requests)


def test_eval_and_leaderboard_add_end_to_end(squad_data, squad_chunks, scripted_server, tmp_path):
    server = scripted_server(extractor)
    records, config, entry = eval_and_add("mem0", options(server), squad_data, server.base_url, tmp_path)
    for record in records:
        assert [e.content for e in record.memory.semantic] == [
            f for c in squad_chunks[record.instance_id] for f in facts_of(c)
        ]
    assert config["agent"]["library"]["package"] == "mem0ai"
    assert entry["status"] == "rescored" and entry["agent"] == {"name": "mem0", "version": "test"}
    assert entry["scores"]["tasks"]["squad"]["instances"] == 2


def test_a_rerun_with_the_response_cache_asks_the_llm_nothing(squad_data, scripted_server, tmp_path):
    server = scripted_server(extractor)
    cache = str(tmp_path / "agent.sqlite")
    for run in ("a", "b"):
        run_agent(
            make_agent("mem0", options(server, cache=cache)),
            tmp_path / run,
            squad_data,
            [("squad", "validation")],
            limit=1,
            show_progress=False,
        )
        if run == "a":
            sent = server.count
    assert server.count == sent > 0


def test_a_resumed_run_replays_mem0s_llm_calls_from_the_runs_cache(squad_data, scripted_server, tmp_path):
    """mem0's LLM calls go through the run's cache when no `cache` is given; its embeddings do not."""
    server = scripted_server(extractor)
    run = tmp_path / "run"

    def once():
        agent = make_agent("mem0", options(server))
        return run_agent(agent, run, squad_data, [("squad", "validation")], limit=1, show_progress=False)

    once()
    sent, embedded = server.count, len(server.embedding_requests)
    (run / "memories.jsonl").unlink()  # the instance starts over, as after a kill
    again = once()
    assert server.count == sent > 0 and again.reused_answers == sent
    assert len(server.embedding_requests) == 2 * embedded


def test_without_mem0_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mem0", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'memalpha-bench\[mem0\]'"):
        make_agent("mem0", {"base_url": "http://127.0.0.1:9/v1"})
