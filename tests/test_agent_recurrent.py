"""The `memagent` and `mem1` agents on tasks built from the real SQuAD sample, through the OpenAI client
against a scripted server: the memory each reply overwrites, the prompt files, the response cache, a
failure confined to its instance, and `memalpha eval` + `leaderboard add` end to end."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from agent_eval import eval_and_add, is_reader
from servers import Reply

from benchmark.agents import AgentOptionError, make_agent
from benchmark.cache import ResponseCache
from benchmark.memory import read_memories
from benchmark.running import run_agent

pytestmark = pytest.mark.realdata
MEMBERS = [("squad", "validation")]


def gist(chunk: str) -> str:
    """What the scripted model keeps of a chunk: a short digest, different for every chunk."""
    return "c" + hashlib.sha256(chunk.encode()).hexdigest()[:8]


def between(text: str, start: str, end: str) -> str | None:
    found = re.search(re.escape(start) + "(.*?)" + re.escape(end), text, re.S)
    return found.group(1) if found else None


class MemAgentModel:
    """Appends the section's gist to the memory it was shown; `fail` names a (gist) to answer with HTTP 400."""

    def __init__(self, fail: str | None = None):
        self.fail = fail

    def __call__(self, body: dict) -> Reply | str:
        if is_reader(body):
            return "I do not know."
        prompt = body["messages"][-1]["content"]
        memory = between(prompt, "<memory>\n", "\n</memory>")
        section = between(prompt, "<section>\n", "\n</section>")
        if self.fail and gist(section) == self.fail:
            return Reply(status=400)
        previous = "" if memory.startswith("(empty") else memory
        return f"{previous} | {gist(section)}".strip(" |")


class Mem1Model:
    """Reasons, then writes the previous state plus the chunk's gist inside the tag; no tag at all for `skip`."""

    def __init__(self, tag: str = "think", skip: str | None = None):
        self.tag, self.skip = tag, skip

    def __call__(self, body: dict) -> str:
        if is_reader(body):
            return "I do not know."
        prompt = body["messages"][-1]["content"]
        state = between(prompt, f"<{self.tag}>\n", f"\n</{self.tag}>") or ""
        chunk = between(prompt, "<new_chunk>\n", "\n</new_chunk>")
        if self.skip and gist(chunk) == self.skip:
            return "Nothing new here."
        new = f"{state} | {gist(chunk)}".strip(" |")
        tag = self.tag
        return f"The chunk adds a little.\n<{tag}>\n{new}\n</{tag}>\nDone; <{tag}>a second block</{tag}>"


def folded(instance_chunks: list[str]) -> str:
    return " | ".join(gist(c) for c in instance_chunks)


def agent_options(server, **extra: str) -> dict[str, str]:
    return {"backend": "openai", "base_url": server.base_url, "model": "scripted", **extra}


@pytest.mark.parametrize(("name", "model"), [("memagent", MemAgentModel), ("mem1", Mem1Model)])
def test_the_final_memory_is_the_last_rewrite_of_the_core(
    name, model, squad_data, squad_chunks, scripted_server, tmp_path
):
    every = [c for cs in squad_chunks.values() for c in cs]
    assert len({gist(c) for c in every}) == len(every)  # each chunk leaves its own trace
    server = scripted_server(model())
    agent = make_agent(name, agent_options(server, memory_tokens="300"))
    summary = run_agent(agent, tmp_path / "run", squad_data, MEMBERS, show_progress=False)
    assert (summary.written, summary.failed) == (2, {})
    for record in read_memories(tmp_path / "run" / "memories.jsonl"):
        assert record.memory.core == folded(squad_chunks[record.instance_id])
        assert record.memory.semantic == () and record.memory.episodic == ()
        assert record.stats["generations"] == len(squad_chunks[record.instance_id]) and record.stats["kept"] == 0
    assert server.count == sum(len(c) for c in squad_chunks.values())
    temperature = {"memagent": 0.1, "mem1": 0.01}[name]
    for body in server.requests:
        assert (body["max_tokens"], body["temperature"], body["top_p"]) == (300, temperature, 0.95)
        assert [m["role"] for m in body["messages"]] == ["user"]


def test_mem1_keeps_its_state_when_a_reply_has_none_and_reads_the_tag_it_is_given(
    squad_data, squad_chunks, scripted_server, tmp_path
):
    iid, instance_chunks = next(iter(squad_chunks.items()))
    skipped = gist(instance_chunks[3])
    server = scripted_server(Mem1Model(tag="state", skip=skipped))
    agent = make_agent("mem1", agent_options(server, state_tag="state"))
    run_agent(agent, tmp_path / "run", squad_data, MEMBERS, show_progress=False)
    record = next(r for r in read_memories(tmp_path / "run" / "memories.jsonl") if r.instance_id == iid)
    assert record.memory.core == folded([c for c in instance_chunks if gist(c) != skipped])
    assert record.stats["kept"] == 1
    assert (
        "<state>" in server.requests[0]["messages"][0]["content"]
        and "<think>" not in server.requests[0]["messages"][0]["content"]
    )
    with pytest.raises(AgentOptionError, match="plain tag name"):
        make_agent("mem1", agent_options(server, state_tag="st>ate"))


ORIGINAL_STYLE = (  # the layout of a released checkpoint's prompt (our text): exact, trailing newline kept
    "{% block user %}Problem:\n{{ task }}\nMemory:\n{{ memory if memory else 'NONE' }}\nSection:\n{{ chunk }}\n"
    "Updated memory:\n{% endblock %}"
)


def test_a_prompt_file_is_sent_exactly_and_its_hash_is_recorded(squad_data, squad_chunks, scripted_server, tmp_path):
    path = tmp_path / "original.jinja"
    path.write_text(ORIGINAL_STYLE, "utf-8")

    def model(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        return gist(between(prompt, "Section:\n", "\nUpdated memory:"))

    server = scripted_server(model)
    agent = make_agent("memagent", agent_options(server, prompt_file=str(path), task="Answer questions."))
    run_agent(agent, tmp_path / "run", squad_data, MEMBERS, show_progress=False)
    first = squad_chunks[next(iter(squad_chunks))]
    sent = [b["messages"][0]["content"] for b in server.requests]
    assert f"Problem:\nAnswer questions.\nMemory:\nNONE\nSection:\n{first[0]}\nUpdated memory:\n" in sent
    assert f"Problem:\nAnswer questions.\nMemory:\n{gist(first[0])}\nSection:\n{first[1]}\nUpdated memory:\n" in sent
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert config["agent"]["prompt_sha256"] == digest and config["agent"]["prompt_version"] == "file"
    assert config["agent_identity"]["prompt_sha256"] == digest
    # a changed file is another run: resuming into the same folder is refused
    path.write_text(ORIGINAL_STYLE.replace("Problem", "Task"), "utf-8")
    agent = make_agent("memagent", agent_options(server, prompt_file=str(path), task="Answer questions."))
    with pytest.raises(Exception, match="holds a different run"):
        run_agent(agent, tmp_path / "run", squad_data, MEMBERS, show_progress=False)
    path.write_text("{% block user %}{{ chunk }}{% endblock %}{% block assistant %}x{% endblock %}", "utf-8")
    with pytest.raises(AgentOptionError, match="unknown block assistant"):
        make_agent("memagent", agent_options(server, prompt_file=str(path)))


def test_a_rerun_with_the_response_cache_asks_the_model_nothing(squad_data, scripted_server, tmp_path):
    server = scripted_server(MemAgentModel())
    cache = str(tmp_path / "agent.sqlite")
    run_agent(
        make_agent("memagent", agent_options(server, cache=cache)),
        tmp_path / "a",
        squad_data,
        MEMBERS,
        show_progress=False,
    )
    sent = server.count
    run_agent(
        make_agent("memagent", agent_options(server, cache=cache)),
        tmp_path / "b",
        squad_data,
        MEMBERS,
        show_progress=False,
    )
    assert server.count == sent
    first, second = (read_memories(tmp_path / run / "memories.jsonl") for run in ("a", "b"))
    assert [r.memory for r in first] == [r.memory for r in second]
    assert all(r.stats["cached"] == r.stats["generations"] for r in second)


@pytest.mark.parametrize(("name", "model"), [("memagent", MemAgentModel), ("mem1", Mem1Model)])
def test_a_resumed_run_replays_its_answers_from_the_runs_own_cache(name, model, squad_data, scripted_server, tmp_path):
    """Without a `cache` option every model answer goes through the run's cache (RUN/.cache/agent.sqlite):
    a run that lost its unfinished instances asks the model nothing it had answered; a `cache` of the
    agent's own is used instead of the run's."""
    server = scripted_server(model())
    run = tmp_path / "run"
    run_agent(make_agent(name, agent_options(server)), run, squad_data, MEMBERS, show_progress=False)
    sent, first = server.count, {r.instance_id: r.memory for r in read_memories(run / "memories.jsonl")}
    (run / "memories.jsonl").unlink()  # as a kill before any instance was handed in leaves it
    again = run_agent(make_agent(name, agent_options(server)), run, squad_data, MEMBERS, show_progress=False)
    assert server.count == sent and again.reused_answers == sent
    assert {r.instance_id: r.memory for r in read_memories(run / "memories.jsonl")} == first

    own = tmp_path / "own.sqlite"
    other = tmp_path / "other"
    run_agent(make_agent(name, agent_options(server, cache=str(own))), other, squad_data, MEMBERS, show_progress=False)
    with ResponseCache(own) as mine, ResponseCache(other / ".cache" / "agent.sqlite") as runs:
        assert (len(mine), len(runs)) == (sent, 0)


def test_a_failed_request_fails_only_its_instance(squad_data, squad_chunks, scripted_server, tmp_path):
    victim, victim_chunks = next(iter(squad_chunks.items()))
    server = scripted_server(MemAgentModel(fail=gist(victim_chunks[2])))
    summary = run_agent(
        make_agent("memagent", agent_options(server, max_retries="0")),
        tmp_path / "run",
        squad_data,
        MEMBERS,
        show_progress=False,
    )
    assert summary.written == 1 and list(summary.failed) == [f"squad/{victim}"]
    assert "HTTP 400" in summary.failed[f"squad/{victim}"]
    (record,) = read_memories(tmp_path / "run" / "memories.jsonl")
    assert record.instance_id != victim and record.memory.core == folded(squad_chunks[record.instance_id])


@pytest.mark.parametrize(("name", "model"), [("memagent", MemAgentModel), ("mem1", Mem1Model)])
def test_eval_and_leaderboard_add_end_to_end(name, model, squad_data, squad_chunks, scripted_server, tmp_path):
    server = scripted_server(model())
    records, config, entry = eval_and_add(name, agent_options(server), squad_data, server.base_url, tmp_path)
    assert {r.instance_id: r.memory.core for r in records} == {iid: folded(c) for iid, c in squad_chunks.items()}
    assert config["agent"]["name"] == name and config["agent"]["reader"]["model"] == "scripted"
    assert entry["status"] == "rescored" and entry["board"] == {"kind": "task", "name": "squad", "profile": "v1@2"}
    assert entry["agent"] == {"name": name, "version": "test"} and entry["model"] == "scripted"
    assert entry["scores"]["tasks"]["squad"]["instances"] == 2 and entry["memory_tokens"] > 0
