"""The `langmem` adapter against a scripted OpenAI-compatible server that answers LangMem's tool calls
(inserts, JSON patches of the memories LangMem shows it, the profile's forced `PatchDoc`) and serves
deterministic embeddings, on tasks built from the real SQuAD sample: each chunk goes through
`manager.invoke`, the exported memory is what LangMem itself holds, the settings and versions are
recorded, `memalpha eval` + `leaderboard add` run end to end, a store write LangMem drops is reported,
and a missing library names its extra."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
import sys
import threading
import uuid

import pytest
from agent_eval import eval_and_add, is_reader
from servers import Reply

from benchmark.agents import make_agent
from benchmark.agents.base import AgentOptionError, InstanceInfo, MissingExtraError
from benchmark.cache import ResponseCache
from benchmark.running import run_agent

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(importlib.util.find_spec("langmem") is None, reason="the langmem extra is not installed"),
]

STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def tag(chunk: str) -> str:
    return hashlib.sha256(chunk.encode()).hexdigest()[:8]


def call(name: str, args: dict) -> dict:
    return {
        "id": f"call_{uuid.uuid4().hex[:8]}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


def patch(doc_id: str, path: str, value: str) -> dict:
    return call(
        "PatchDoc",
        {
            "json_doc_id": doc_id,
            "planned_edits": "append",
            "patches": [{"op": "replace", "path": path, "value": value}],
        },
    )


class ScriptedLangMemModel:
    """What the scripted model answers to LangMem: per chunk one fact (`Fact <tag>.`) and one event
    (`Event <tag>.` at the chunk's own time stamp), as far as LangMem offers those tools; when LangMem
    shows it facts it already holds, it also patches the first one shown (`patched` keeps LangMem's
    id -> the text it patched in); the profile's notes get `Seen <tag>.` appended."""

    def __init__(self) -> None:
        self.patched: dict[str, str] = {}
        self.patches = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict) -> Reply | str:
        if is_reader(body):
            return "I do not know."
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        session = re.search(r"<session_[0-9a-f-]+>\n(.*)\n</session_", user, re.S).group(1)
        chunk = session.split("\n\n", 1)[1]  # after LangMem's "=== Human Message ===" header
        t = tag(chunk)
        shown = re.findall(r'<instance id=(\w+) schema_type="(\w+)">\n(.*?)\n</instance>', system, re.S)
        tools = [tool["function"]["name"] for tool in body["tools"]]
        if tools == ["PatchDoc"]:  # the profile: one document, updated in place
            ((doc_id, _, doc),) = shown
            notes = ast.literal_eval(doc)["notes"]
            return Reply(tool_calls=[patch(doc_id, "/notes", f"{notes} Seen {t}.".strip())])
        new = {"Memory": {"content": f"Fact {t}."}, "Event": {"when": STAMP.search(chunk)[0], "what": f"Event {t}."}}
        calls = [call(name, args) for name, args in new.items() if name in tools]
        facts = [(doc_id, ast.literal_eval(doc)) for doc_id, kind, doc in shown if kind == "Memory"]
        if facts:
            doc_id, doc = facts[0]
            text = f"{doc['content']} Again in {t}."
            with self._lock:
                self.patched[doc_id] = text
                self.patches += 1
            calls.append(patch(doc_id, "/content", text))
        return Reply(tool_calls=calls)


def langmem_id(instance_id: str, key: str) -> str:
    """The id LangMem shows the model for a stored memory (its `_stable_id`)."""
    return uuid.uuid5(uuid.NAMESPACE_DNS, str(("memories", instance_id, key))).hex


def options(server, **extra: str) -> dict[str, str]:
    return {"base_url": server.base_url, "model": "scripted", "embedding_dims": "64", **extra}


def observe_all(agent, iid: str, chunks: list[str]):
    session = agent.new_session(InstanceInfo(iid, "squad", "AR", len(chunks)))
    for chunk in chunks:
        session.observe(chunk)
    return session


def test_each_chunk_goes_through_langmem_and_the_export_is_what_it_holds(squad_chunks, scripted_server):
    model = ScriptedLangMemModel()
    server = scripted_server(model)
    agent = make_agent("langmem", options(server))
    iid, chunks = next(iter(squad_chunks.items()))
    session = observe_all(agent, iid, chunks)
    memory = session.memory()

    # LangMem's own account, read from its stores directly
    held = session.collection.store.search(("memories", iid), limit=1000)
    facts = {langmem_id(iid, i.key): i.value["content"]["content"] for i in held if i.value["kind"] == "Memory"}
    events = [i.value["content"] for i in held if i.value["kind"] == "Event"]
    assert sorted(e.content for e in memory.semantic) == sorted(facts.values())
    assert sorted((e.content, e.timestamp) for e in memory.episodic) == sorted((e["what"], e["when"]) for e in events)
    assert memory.core == session.profile.store.get(("memories", iid), "default").value["content"]["notes"]

    # ... and what the scripted model told it: one fact and one event per chunk, in chunk order, the
    # facts it patched holding the patched text; the profile patched at every chunk
    assert [e.content.split(" Again in ")[0] for e in memory.semantic] == [f"Fact {tag(c)}." for c in chunks]
    assert model.patched and set(model.patched) <= set(facts)
    assert all(facts[i] == text for i, text in model.patched.items())
    assert [(e.content, e.timestamp) for e in memory.episodic] == [
        (f"Event {tag(c)}.", STAMP.search(c)[0]) for c in chunks
    ]
    assert [e.id for e in memory.semantic] == [f"s{i}" for i in range(len(chunks))]
    assert [e.id for e in memory.episodic] == [f"e{i}" for i in range(len(chunks))]
    assert memory.core == " ".join(f"Seen {tag(c)}." for c in chunks)

    # cost: two LLM calls per chunk (collection, profile), tokens as the server counted them
    calls = [b for b in server.requests if not is_reader(b)]
    stats = session.stats()
    assert stats["generations"] == len(calls) == 2 * len(chunks)
    assert stats["prompt_tokens"] == sum(len((m.get("content") or "").split()) for b in calls for m in b["messages"])
    assert stats["writes"] == 3 * len(chunks) + model.patches  # a fact, an event, the notes; the patched facts
    assert all(any(c in b["messages"][-1]["content"] for b in calls) for c in chunks)
    assert all(b["temperature"] == 0.0 and b["chat_template_kwargs"] == {"enable_thinking": False} for b in calls)
    profile_calls = [b for b in calls if [t["function"]["name"] for t in b["tools"]] == ["PatchDoc"]]
    assert len(profile_calls) == len(chunks)
    assert all(b["tool_choice"] == {"type": "function", "function": {"name": "PatchDoc"}} for b in profile_calls)
    # every stored memory was embedded through the server, at the asked size
    embedded = [text for r in server.embedding_requests for text in r["input"]]
    assert all(any(f"Fact {tag(c)}." in text for text in embedded) for c in chunks)
    assert all(r["dimensions"] == 64 and r["model"] == "text-embedding-3-small" for r in server.embedding_requests)
    agent.close()


def test_kinds_semantic_is_langmem_alone_and_the_config_records_it(squad_data, scripted_server, tmp_path):
    from importlib.metadata import version

    model = ScriptedLangMemModel()
    server = scripted_server(model)
    agent = make_agent(
        "langmem", options(server, kinds="semantic", query_limit="8", temperature="0.5", template_kwargs="omit")
    )
    run_agent(agent, tmp_path / "run", squad_data, [("squad", "validation")], limit=1, show_progress=False)
    (line,) = (tmp_path / "run" / "memories.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["memory"]["core"] == "" and record["memory"]["episodic"] == []
    assert len(record["memory"]["semantic"]) == record["stats"]["chunks_seen"] == record["stats"]["generations"]
    # one manager, LangMem's own Memory schema only (PatchDoc once it holds facts to show)
    assert {t["function"]["name"] for b in server.requests for t in b["tools"]} == {"Memory", "PatchDoc"}
    assert all(b["temperature"] == 0.5 and "chat_template_kwargs" not in b for b in server.requests)

    described = json.loads((tmp_path / "run" / "config.json").read_text())["agent"]
    library = described["library"]
    assert library["package"] == "langmem" and library["version"] == version("langmem")
    assert library["versions"]["trustcall"] == version("trustcall")
    from langmem.knowledge.extraction import _MEMORY_INSTRUCTIONS

    assert library["settings"]["managers"] == {
        "collection": {
            "schemas": ["Memory (LangMem's own)"],
            "instructions": _MEMORY_INSTRUCTIONS,
            "enable_inserts": True,
            "enable_deletes": False,
            "query_limit": 8,
            "store": "langgraph InMemoryStore, embeddings index",
        }
    }
    assert library["settings"]["llm"]["model"] == "scripted" and library["settings"]["llm"]["temperature"] == 0.5
    assert library["settings"]["embedder"]["dimensions"] == 64
    assert described["options"]["kinds"] == "semantic" and described["options"]["base_url"] == server.base_url
    assert "api_key" not in json.dumps(described)


@pytest.mark.parametrize(
    ("base_url", "mode", "sent"),
    [
        ("http://127.0.0.1:8000/v1", "auto", True),
        ("https://api.openai.com/v1", "auto", False),
        ("https://api.openai.com/v1", "send", True),
        ("http://127.0.0.1:8000/v1", "omit", False),
    ],
)
def test_the_thinking_switch_is_left_out_where_the_server_rejects_it(base_url, mode, sent):
    agent = make_agent("langmem", {"base_url": base_url, "template_kwargs": mode})
    expected = {"chat_template_kwargs": {"enable_thinking": False}} if sent else None
    assert agent.llm.extra_body == expected
    assert agent.describe()["library"]["settings"]["llm"]["chat_template_kwargs"] == (expected or {}).get(
        "chat_template_kwargs"
    )
    agent.close()


def test_eval_and_leaderboard_add_end_to_end(squad_data, squad_chunks, scripted_server, tmp_path):
    server = scripted_server(ScriptedLangMemModel())
    records, config, entry = eval_and_add("langmem", options(server), squad_data, server.base_url, tmp_path)
    assert {r.instance_id for r in records} == set(squad_chunks)
    for record in records:
        chunks = squad_chunks[record.instance_id]
        assert [e.content.split(" Again in ")[0] for e in record.memory.semantic] == [f"Fact {tag(c)}." for c in chunks]
        assert [e.timestamp for e in record.memory.episodic] == [STAMP.search(c)[0] for c in chunks]
        assert record.memory.core == " ".join(f"Seen {tag(c)}." for c in chunks)
    assert config["agent"]["library"]["package"] == "langmem"
    assert entry["status"] == "rescored" and entry["agent"] == {"name": "langmem", "version": "test"}
    assert entry["scores"]["tasks"]["squad"]["instances"] == 2


def test_langmem_takes_no_response_cache_so_a_resumed_instance_asks_again(squad_data, scripted_server, tmp_path):
    server = scripted_server(ScriptedLangMemModel())
    run = tmp_path / "run"

    def once():
        agent = make_agent("langmem", options(server))
        return run_agent(agent, run, squad_data, [("squad", "validation")], limit=1, show_progress=False)

    once()
    sent = server.count
    (run / "memories.jsonl").unlink()  # the instance starts over, as after a kill
    again = once()
    assert again.reused_answers == 0 and server.count == 2 * sent > 0
    with ResponseCache(run / ".cache" / "agent.sqlite") as runs:
        assert len(runs) == 0


def test_a_store_write_langmem_drops_is_reported(squad_chunks, scripted_server):
    """LangMem's invoke swallows the error of a store write (here: the embedding of a new memory fails);
    the agent fails the instance instead of handing in a memory with a hole."""
    stored = '"kind"'  # a store write embeds the stored value, LangMem's search embeds the conversation
    server = scripted_server(ScriptedLangMemModel(), embedding_status=lambda r: 400 if stored in r["input"][0] else 200)
    agent = make_agent("langmem", options(server, kinds="semantic"))
    iid, chunks = next(iter(squad_chunks.items()))
    session = agent.new_session(InstanceInfo(iid, "squad", "AR", len(chunks)))
    with pytest.raises(RuntimeError, match=r"LangMem reported writing memory .* its store does not hold it"):
        session.observe(chunks[0])
    assert any(stored in r["input"][0] for r in server.embedding_requests)  # the write was tried
    agent.close()


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({}, "base_url=URL is required"),
        ({"cache": "x.sqlite"}, "no response cache"),
        ({"query_limit": "3"}, "query_limit=3 must be at least 4"),
        ({"kinds": "semantic,procedural"}, "give one or more of semantic, episodic, core"),
        ({"backend": "vllm"}, "unknown option"),
    ],
)
def test_options_it_cannot_honour_are_refused(opts, message):
    base = {} if not opts else {"base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(AgentOptionError, match=message):
        make_agent("langmem", {**base, **opts})


@pytest.mark.parametrize("module", ["langmem", "langchain_openai", "langgraph.store.memory"])
def test_without_the_libraries_the_error_names_the_extra(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=r"the langmem agent needs .* pip install 'memalpha-bench\[langmem\]'"):
        make_agent("langmem", {"base_url": "http://127.0.0.1:9/v1"})
