"""The memalpha agent end to end: through the OpenAI client against a scripted server that answers fixed
tool calls in each format, on a task built from the real SQuAD sample; then against `transformers serve`
with a tiny random model; plus options, the prompt cap and the rendered chat prompt."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from servers import Reply

from benchmark.agents import AgentOptionError, InstanceInfo, make_agent
from benchmark.memory import Memory, MemoryEntry, read_memories
from benchmark.readers import ReaderError, ReaderResponse
from benchmark.running import run_agent
from reference_agent.agent import MemAlphaAgent
from reference_agent.environment import TOOL_SCHEMAS
from reference_agent.prompts import build_messages, chat_tools, memorize_prompt
from reference_agent.toolcalls import FN_ARGS, FN_NAME, FN_RESULT, QWEN_AGENT_STOP, ToolCall
from tasks.build import build_task
from tasks.manifest import load_built
from tasks.tokenization import SimpleCounter

MEMBERS = [("squad", None)]
MALFORMED = [  # (tool, arguments as written): each one a failed call that must change nothing
    ("new_memory_insert", '{"memory_type": "semantic_memory", "content": "cut off'),  # bad JSON
    ("memory_search", '{"memory_type": "semantic_memory", "query": "x"}'),  # unknown tool
    ("new_memory_insert", '{"memory_type": "procedural_memory", "content": "x"}'),  # wrong memory type
    ("memory_update", '{"memory_type": "semantic_memory", "memory_id": "s99", "new_content": "x"}'),  # unknown id
    ("new_memory_insert", '{"memory_type": "episodic_memory", "content": ""}'),  # empty content
]
CALLS_PER_INSTANCE, OK, SKIPPED, FAILED = 38, 32, 1, 5  # of `script` over 10 chunks


# --- the task and the scripted model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(raw_dir, tmp_path_factory) -> Path:
    """SQuAD with limit 2: four instances (two per split) of ten chunks each."""
    out = tmp_path_factory.mktemp("data")
    build_task("squad", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=2, show_progress=False)
    return out


@pytest.fixture(scope="module")
def chunk_index(data) -> dict[str, tuple[str, int]]:
    """chunk text -> (instance id, position)."""
    dataset, _ = load_built(data, "squad")
    index = {}
    for split in dataset.values():
        for row in split:
            for t, chunk in enumerate(row["chunks"]):
                index[chunk] = (row["instance_id"], t)
    assert len(index) == 40
    return index


def chunk_of(body: dict) -> str:
    user = body["messages"][-1]["content"]
    return re.search(r"<new_chunk>\n(.*)\n</new_chunk>", user, re.S).group(1)


def script(iid: str, t: int) -> list[tuple[str, str]]:
    """The calls the 'model' makes for chunk t of instance `iid`, as (tool, arguments JSON text)."""
    calls: list[tuple[str, dict]] = [
        ("new_memory_insert", {"memory_type": "semantic_memory", "content": f"{iid} fact {t}"}),
        (
            "new_memory_insert",
            {"memory_type": "episodic_memory", "content": f"{iid} event {t}", "timestamp": f"2024-01-{t + 1:02d}"},
        ),
        ("memory_update", {"memory_type": "core_memory", "new_content": f"{iid} read {t + 1} chunks"}),
    ]
    if t == 3:
        calls.append(("memory_update", {"memory_type": "semantic", "memory_id": "s1", "new_content": f"{iid} fact 1b"}))
        calls.append(("memory_delete", {"memory_type": "episodic_memory", "memory_id": "[e2]"}))
    if t == 5:  # an exact duplicate: skipped
        calls.append(("new_memory_insert", {"memory_type": "semantic_memory", "content": f"{iid} fact 5"}))
    written = [(name, json.dumps(args)) for name, args in calls]
    return written + MALFORMED if t == 7 else written


def expected_memory(iid: str) -> Memory:
    semantic = [MemoryEntry(f"s{t}", f"{iid} fact {'1b' if t == 1 else t}") for t in range(10)]
    episodic = [MemoryEntry(f"e{t}", f"{iid} event {t}", f"2024-01-{t + 1:02d}") for t in range(10) if t != 2]
    return Memory(f"{iid} read 10 chunks", tuple(semantic), tuple(episodic))


def as_tool_calls(calls: list[tuple[str, str]]) -> Reply:
    return Reply(
        content=None,
        tool_calls=[
            {"id": f"call_{k}", "type": "function", "function": {"name": name, "arguments": args}}
            for k, (name, args) in enumerate(calls)
        ],
    )


def as_qwen3_text(calls: list[tuple[str, str]]) -> Reply:
    blocks = [f'<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>' for name, args in calls]
    return Reply(content="I will store what is new.\n" + "\n".join(blocks))


def as_qwen_agent_text(calls: list[tuple[str, str]]) -> Reply:
    lines = [f"{FN_NAME}: {name}\n{FN_ARGS}: {args}" for name, args in calls]
    # a server honours the stop words; this one does not, so a made-up result and a call after it follow
    made_up = f'{FN_RESULT}: ok\n{FN_NAME}: memory_delete\n{FN_ARGS}: {{"memory_type": "core_memory"}}'
    return Reply(content="Storing the chunk.\n" + "\n".join(lines) + "\n" + made_up)


class Model:
    """The reply function of the scripted server: looks the chunk up and answers its script in one format."""

    def __init__(self, chunk_index, render, fail: tuple[str, int] | None = None):
        self.chunk_index, self.render, self.fail = chunk_index, render, fail
        self.seen: list[tuple[str, int]] = []  # (instance, position) in arrival order

    def __call__(self, body: dict) -> Reply:
        iid, t = self.chunk_index[chunk_of(body)]
        self.seen.append((iid, t))
        if (iid, t) == self.fail:
            return Reply(status=400)
        return self.render(script(iid, t))


def memalpha(server, **options: str):
    return make_agent(
        "memalpha",
        {"backend": "openai", "base_url": server.base_url, "model": "scripted", "tokenizer": "simple", **options},
    )


# --- end to end against the scripted server -----------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("render", "fmt"),
    [(as_tool_calls, "qwen3"), (as_qwen3_text, "qwen3"), (as_qwen_agent_text, "qwen-agent")],
    ids=["qwen3-server-parsed", "qwen3-text", "qwen-agent"],
)
def test_memories_from_fixed_tool_calls(render, fmt, data, chunk_index, scripted_server, tmp_path):
    model = Model(chunk_index, render)
    server = scripted_server(model)
    summary = run_agent(memalpha(server, format=fmt), tmp_path / "run", data, MEMBERS, show_progress=False)
    assert (summary.written, summary.failed) == (4, {})

    records = read_memories(tmp_path / "run" / "memories.jsonl")
    assert sorted(r.instance_id for r in records) == sorted({iid for iid, _ in chunk_index.values()})
    for record in records:
        assert record.memory == expected_memory(record.instance_id)  # the malformed calls harmed nothing
        stats = record.stats
        assert (stats["tool_calls"], stats["ok"], stats["skipped"], stats["failed"]) == (
            CALLS_PER_INSTANCE,
            OK,
            SKIPPED,
            FAILED,
        )
        assert (stats["generations"], stats["without_calls"], stats["chunks_seen"]) == (10, 0, 10)
        assert stats["prompt_tokens"] > 0 and stats["trimmed_prompts"] == 0

    # chunk t of every instance was asked for before any chunk t + 1
    positions = [t for _, t in model.seen]
    assert positions == sorted(positions) and len(positions) == 40

    # the request: greedy, thinking off, the format's tools or stop words, the memory so far in the prompt
    for body in server.requests:
        assert (body["temperature"], body["max_tokens"]) == (0.0, 2048)
        assert body["chat_template_kwargs"] == {"enable_thinking": False}
        if fmt == "qwen3":
            assert body["tools"] == chat_tools("qwen3") and "stop" not in body
        else:
            assert "tools" not in body and body["stop"] == list(QWEN_AGENT_STOP)
            assert f"{FN_NAME}: The name of tool 1" in body["messages"][0]["content"]
    some_iid = model.seen[0][0]
    [fifth] = [b for b in server.requests if chunk_index[chunk_of(b)] == (some_iid, 4)]
    system = fifth["messages"][0]["content"]
    assert f"<core_memory>\n{some_iid} read 4 chunks\n</core_memory>" in system
    assert f"[s1] {some_iid} fact 1b" in system and "[e2]" not in system


@pytest.mark.realdata
def test_a_failed_request_fails_only_its_instance(data, chunk_index, scripted_server, tmp_path):
    """With one request at a time the failing request stops the batch call before the others are sent:
    they are sent again one by one and their instances finish."""
    dataset, _ = load_built(data, "squad")
    victim = dataset["train"][0]["instance_id"]  # the first request of every step
    model = Model(chunk_index, as_tool_calls, fail=(victim, 4))
    server = scripted_server(model)
    summary = run_agent(memalpha(server, concurrency="1"), tmp_path / "run", data, MEMBERS, show_progress=False)

    assert summary.written == 3 and list(summary.failed) == [f"squad/{victim}"]
    [error] = [json.loads(line) for line in (tmp_path / "run" / "errors.jsonl").read_text().splitlines()]
    assert error["instance_id"] == victim and "HTTP 400" in error["error"]
    records = read_memories(tmp_path / "run" / "memories.jsonl")
    assert victim not in {r.instance_id for r in records}
    for record in records:
        assert record.memory == expected_memory(record.instance_id)
    assert model.seen.count((victim, 4)) == 2  # in the batch, then alone
    assert not [t for iid, t in model.seen if iid == victim and t > 4]
    assert all(model.seen.count((r.instance_id, 4)) == 1 for r in records)  # never sent in the failed batch


@pytest.mark.realdata
def test_a_rerun_with_the_response_cache_asks_the_model_nothing(data, chunk_index, scripted_server, tmp_path):
    server = scripted_server(Model(chunk_index, as_tool_calls))
    cache = str(tmp_path / "responses.sqlite")
    run_agent(memalpha(server, cache=cache), tmp_path / "first", data, MEMBERS, show_progress=False)
    assert server.count == 40
    run_agent(memalpha(server, cache=cache), tmp_path / "second", data, MEMBERS, show_progress=False)
    assert server.count == 40
    first, second = (read_memories(tmp_path / run / "memories.jsonl") for run in ("first", "second"))
    assert [r.memory for r in first] == [r.memory for r in second]
    assert all(r.stats["cached"] == 10 and r.stats["failed"] == FAILED for r in second)


# --- against a real server with a tiny random model ---------------------------------------------------


@pytest.mark.realdata
def test_smoke_run_against_transformers_serve(data, serve_tiny, tiny_model, tmp_path):
    """The random model writes no valid call: the run must still finish with a valid memories file."""
    agent = make_agent(
        "memalpha",
        {
            "backend": "openai",
            "base_url": serve_tiny.base_url,
            "model": serve_tiny.model,
            "tokenizer": str(tiny_model),
            "max_tokens": "8",
        },
    )
    summary = run_agent(agent, tmp_path / "run", data, MEMBERS, limit=1, show_progress=False)
    assert (summary.written, summary.failed) == (2, {})
    records = read_memories(tmp_path / "run" / "memories.jsonl")  # validates the file strictly
    for record in records:
        stats = record.stats
        assert stats["generations"] == 10
        assert 0 < stats["completion_tokens"] <= 80
        assert stats["prompt_tokens"] > 10 * 1000  # the tool schemas and the chunk reached the model
        assert stats["tool_calls"] == stats["ok"] + stats["skipped"] + stats["failed"]


# --- the prompt ---------------------------------------------------------------------------------------


class CannedReader:
    """A Reader answering every request with the same text; records each `generate` call."""

    def __init__(self, text: str = "Done"):
        self.text = text
        self.calls: list[list] = []

    def describe(self) -> dict:
        return {"backend": "canned"}

    def generate(self, requests, on_result=None):
        self.calls.append(list(requests))
        responses = [ReaderResponse.from_raw(self.text, 1, 1) for _ in requests]
        for i, response in enumerate(responses):
            if on_result is not None:
                on_result(i, response)
        return responses


def info(n: int = 0) -> InstanceInfo:
    return InstanceInfo(f"i{n}", "squad", "accurate_retrieval", 3)


def filled_session(agent: MemAlphaAgent):
    session = agent.new_session(info())
    for i in range(7):
        session.env.execute(ToolCall("new_memory_insert", {"memory_type": "semantic", "content": f"Fact {i}."}, ""))
    return session


def shown_ids(request) -> list[str]:
    return re.findall(r"\[(s\d+)\]", request.messages[0][1])


def test_the_window_is_halved_until_the_prompt_fits():
    chunk = "The Seine flows through Paris. " * 20
    probe = filled_session(MemAlphaAgent(CannedReader(), tokenizer="simple"))
    tool_tokens = SimpleCounter().count(json.dumps(chat_tools("qwen3"), ensure_ascii=False, separators=(",", ":")))
    sizes = {
        recent: sum(SimpleCounter().count(m["content"]) for m in build_messages(probe.env, chunk, recent=recent))
        + tool_tokens
        for recent in (5, 2, 1, 0)
    }
    assert sizes[5] > sizes[2] > sizes[1] > sizes[0]

    for cap, shown, trimmed, over in [
        (sizes[5], ["s2", "s3", "s4", "s5", "s6"], 0, 0),
        (sizes[5] - 1, ["s5", "s6"], 1, 0),
        (sizes[1], ["s6"], 1, 0),
        (sizes[0], [], 1, 0),
        (sizes[0] - 1, [], 1, 1),  # sent anyway, and counted
        (0, ["s2", "s3", "s4", "s5", "s6"], 0, 0),  # no cap
    ]:
        session = filled_session(MemAlphaAgent(CannedReader(), tokenizer="simple", max_prompt_tokens=str(cap)))
        assert shown_ids(session.request(chunk)) == shown, cap
        assert (session.turn_stats.trimmed_prompts, session.turn_stats.over_limit_prompts) == (trimmed, over)


def test_a_step_is_one_reader_call_for_every_session():
    reader = CannedReader(text='<tool_call>\n{"name": "memory_delete", "arguments": {"memory_type": "core"}}')
    agent = MemAlphaAgent(reader, tokenizer="simple")
    sessions = [agent.new_session(info(n)) for n in range(5)]
    assert agent.observe_batch(sessions, [f"chunk {n}" for n in range(5)]) == [None] * 5
    [call] = reader.calls
    assert [chunk_of({"messages": r.message_dicts()}) for r in call] == [f"chunk {n}" for n in range(5)]
    assert all(s.stats()["ok"] == 1 and s.stats()["generations"] == 1 for s in sessions)
    sessions[0].observe("one more")  # a session alone goes through the same path
    assert len(reader.calls) == 2 and sessions[0].stats()["generations"] == 2


def test_the_qwen3_prompt_through_the_real_chat_template_lists_the_tools(tiny_model):
    from transformers import AutoTokenizer

    agent = MemAlphaAgent(CannedReader(), tokenizer="simple")
    request = agent.new_session(info()).request("Alice moved to Lyon in 2021.")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompt = tokenizer.apply_chat_template(
        request.message_dicts(),
        tools=request.tool_dicts(),
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    for schema in TOOL_SCHEMAS:
        assert json.dumps(schema, ensure_ascii=False) in prompt
    assert "<new_chunk>\nAlice moved to Lyon in 2021.\n</new_chunk>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # the qwen-agent format describes the tools in the system message instead
    agent_fmt = MemAlphaAgent(CannedReader(), tokenizer="simple", format="qwen-agent")
    qwen_agent = agent_fmt.new_session(info()).request("x")
    assert qwen_agent.tools is None and qwen_agent.params.stop == QWEN_AGENT_STOP
    assert all(f"### {s['function']['name']}" in qwen_agent.messages[0][1] for s in TOOL_SCHEMAS)


# --- options ------------------------------------------------------------------------------------------


def test_describe_records_every_option_and_the_prompt_hash_but_no_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    agent = make_agent(
        "memalpha", {"backend": "openai", "base_url": "http://gpu:8000/v1", "tokenizer": "simple", "recent": "2"}
    )
    description = agent.describe()
    assert description["prompt_sha256"] == memorize_prompt().sha256
    assert description["options"] == {
        "format": "qwen3",
        "max_tokens": 2048,
        "temperature": 0.0,
        "recent": 2,
        "max_prompt_tokens": 6144,
        "tokenizer": "simple",
        "prompt_file": None,
        "cache": None,
        "backend": "openai",
        "model": "YuWangX/Memalpha-4B",
        "base_url": "http://gpu:8000/v1",
        "concurrency": 16,
        "timeout": 600.0,
        "max_retries": 5,
    }
    assert description["reader"]["base_url"] == "http://gpu:8000/v1"
    assert "sk-very-secret" not in json.dumps(description)
    assert "prompt_file_sha256" not in description
    # the qwen-agent format's prompt includes the tool block the package renders: another hash
    other = MemAlphaAgent(CannedReader(), tokenizer="simple", format="qwen-agent")
    assert (
        other.describe()["prompt_sha256"] == memorize_prompt().sha256_for("qwen-agent") != description["prompt_sha256"]
    )


ORIGINAL_STYLE = (  # a prompt file as a user holding other strings would write it: exact text, no stripping
    "{% block system %}SYSTEM core=[{{ core }}] shown={{ semantic | map(attribute='id') | join(',') }} "
    "of {{ semantic_total }}{% endblock %}"
    "{% block user %}Chunk:\n{{ chunk }}\nLimit {{ max_new_tokens }}.\n{% endblock %}"
)


@pytest.mark.parametrize("fmt", ["qwen3", "qwen-agent"])
def test_a_prompt_file_replaces_our_wording_and_its_hash_is_recorded(fmt, tmp_path):
    path = tmp_path / "original.jinja"
    path.write_text(ORIGINAL_STYLE, "utf-8")
    agent = MemAlphaAgent(CannedReader(), tokenizer="simple", prompt_file=str(path), format=fmt, recent="2")
    session = filled_session(agent)
    system, user = session.request("The Seine.").messages
    assert user == ("user", "Chunk:\nThe Seine.\nLimit 1638.\n")
    assert system[1].startswith("SYSTEM core=[] shown=s5,s6 of 7")
    assert (system[1] == "SYSTEM core=[] shown=s5,s6 of 7") == (fmt == "qwen3")  # qwen-agent adds its tools
    described = agent.describe()
    assert described["options"]["prompt_file"] == str(path)
    assert described["prompt_file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert described["prompt_version"] == "file"
    assert described["prompt_sha256"] != MemAlphaAgent(CannedReader(), tokenizer="simple").describe()["prompt_sha256"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{% block user %}{{ chunk }}{% endblock %}", "no block system"),
        (
            "{% block system %}x{% endblock %}{% block user %}x{% endblock %}{% block tools %}{% endblock %}",
            "unknown block tools",
        ),
        ("{% block system %}{{ core }{% endblock %}{% block user %}{% endblock %}", "line 1"),
        ("{% block system %}{{ persona }}{% endblock %}{% block user %}x{% endblock %}", "'persona' is undefined"),
    ],
)
def test_a_bad_prompt_file_is_named_in_the_error(text, message, tmp_path):
    path = tmp_path / "bad.jinja"
    path.write_text(text, "utf-8")
    with pytest.raises(AgentOptionError, match=message) as caught:
        agent = MemAlphaAgent(CannedReader(), tokenizer="simple", prompt_file=str(path))
        agent.new_session(info()).request("chunk")
    assert str(path) in str(caught.value)
    with pytest.raises(AgentOptionError, match="cannot read it"):
        MemAlphaAgent(CannedReader(), tokenizer="simple", prompt_file=str(tmp_path / "missing.jinja"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "blue"}, "unknown option"),
        ({"reader": "x"}, "unknown option"),  # the reader is handed in from Python only
        ({"format": "hermes"}, "choose one of qwen3, qwen-agent"),
        ({"backend": "tgi"}, "choose one of openai, vllm, hf"),
        ({"max_tokens": "many"}, "must be an integer"),
        ({"temperature": "hot"}, "must be a number"),
        ({"recent": "-1"}, "must be at least 0"),
        ({"backend": "hf", "base_url": "http://x/v1"}, "base_url is for the openai backend"),
        ({"backend": "openai"}, "base_url"),  # make_reader: the server address is required
    ],
)
def test_bad_options_are_rejected(options, message):
    with pytest.raises((AgentOptionError, ReaderError), match=message):
        make_agent("memalpha", {"tokenizer": "simple", **options})


def test_a_handed_in_reader_takes_no_reader_options():
    with pytest.raises(AgentOptionError, match=r"unknown option.*backend"):
        MemAlphaAgent(CannedReader(), backend="openai", tokenizer="simple")
    agent = MemAlphaAgent(CannedReader(), tokenizer="simple")
    assert agent.describe()["reader"] == {"backend": "canned"}
    assert "backend" not in agent.describe()["options"]
