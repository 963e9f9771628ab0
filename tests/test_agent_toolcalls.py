"""Tool-call parsing in both formats, the OpenAI conversion, and the qwen-agent tool block (rendered by the
qwen-agent package itself)."""

from __future__ import annotations

import json
import re
import sys

import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from benchmark.agents.base import MissingExtraError
from reference_agent.environment import TOOL_SCHEMAS, MemoryEnvironment
from reference_agent.toolcalls import (
    FN_ARGS,
    FN_EXIT,
    FN_NAME,
    FN_RESULT,
    from_openai_tool_calls,
    loads_object,
    parse_qwen3,
    parse_qwen_agent,
    parse_response,
    qwen_agent_messages,
)
from tasks.tokenization import SimpleCounter

INSERT = {"memory_type": "semantic_memory", "content": "Lyon is in France."}
EVENT = {"memory_type": "episodic_memory", "content": "The user moved to Lyon.", "timestamp": "2024-03-02"}
CORE = {"memory_type": "core_memory", "new_content": "The user lives in Lyon."}


def block(name: str, arguments) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def marker_call(name: str, arguments: str) -> str:
    return f"{FN_NAME}: {name}\n{FN_ARGS}: {arguments}"


# -- qwen3 ---------------------------------------------------------------------------------------


def test_qwen3_several_calls_in_order_with_the_text_before_them():
    text = (
        "I will store the facts.\n"
        + block("new_memory_insert", INSERT)
        + "\n"
        + block("new_memory_insert", EVENT)
        + block("memory_update", CORE)
        + "\nDone"
    )
    parsed = parse_qwen3(text)
    assert parsed.reasoning == "I will store the facts."
    assert [(c.name, c.arguments, c.error) for c in parsed.calls] == [
        ("new_memory_insert", INSERT, None),
        ("new_memory_insert", EVENT, None),
        ("memory_update", CORE, None),
    ]
    assert json.loads(parsed.calls[0].raw_arguments) == {"name": "new_memory_insert", "arguments": INSERT}


def test_qwen3_arguments_given_as_a_json_string():
    text = f'<tool_call>{{"name": "memory_update", "arguments": {json.dumps(json.dumps(CORE))}}}</tool_call>'
    (c,) = parse_qwen3(text).calls
    assert (c.name, c.arguments, c.raw_arguments) == ("memory_update", CORE, json.dumps(CORE))


def test_qwen3_malformed_blocks_become_failed_calls():
    # single quotes are not repaired
    text = (
        "<tool_call>{'name': 'new_memory_insert', 'arguments': {}}</tool_call>"
        '<tool_call>{"arguments": {"content": "x"}}</tool_call>'
        '<tool_call>{"name": "memory_delete"}</tool_call>'
        '<tool_call>{"name": "memory_delete", "arguments": [1, 2]}</tool_call>' + block("new_memory_insert", INSERT)
    )
    calls = parse_qwen3(text).calls
    assert [c.arguments for c in calls[:4]] == [None] * 4
    assert "not valid JSON" in calls[0].error
    assert calls[1].error == "the tool call has no 'name'"
    assert calls[2].error == "the tool call has no 'arguments'"
    assert calls[3].error == "arguments: not a JSON object (list)" and calls[3].name == "memory_delete"
    assert calls[4].arguments == INSERT  # the good call after them still counts
    env = MemoryEnvironment(SimpleCounter())
    results = env.execute_all(calls)
    assert [r.status for r in results] == ["error"] * 4 + ["ok"]
    assert results[0].message.startswith("tool call: not valid JSON")
    assert results[3].message == "memory_delete: arguments: not a JSON object (list)"
    assert len(env.snapshot().semantic) == 1


def test_qwen3_trailing_text_after_the_json_is_dropped():
    text = '<tool_call>\n{"name": "memory_update", "arguments": ' + json.dumps(CORE) + "} (core)\n</tool_call>"
    (c,) = parse_qwen3(text).calls
    assert c.arguments == CORE and c.error is None


def test_qwen3_unclosed_last_block_counts():
    complete = "<tool_call>\n" + json.dumps({"name": "memory_update", "arguments": CORE})
    assert parse_qwen3(complete).calls[0].arguments == CORE
    cut = '<tool_call>\n{"name": "memory_update", "arguments": {"memory_type": "core_memory", "new_con'
    (c,) = parse_qwen3(block("new_memory_insert", INSERT) + cut).calls[1:]
    assert c.arguments is None and "not valid JSON" in c.error


def test_qwen3_calls_while_thinking_are_not_calls():
    draft = block("memory_delete", {"memory_type": "core_memory"})
    real = block("new_memory_insert", INSERT)
    assert [c.arguments for c in parse_qwen3(f"<think>maybe {draft}</think>\n{real}").calls] == [INSERT]
    # the opening tag was in the prompt: only "...</think>" is in the response
    assert [c.arguments for c in parse_qwen3(f"maybe {draft}\n</think>\n\n{real}").calls] == [INSERT]
    # ran out while thinking
    assert parse_qwen3(f"<think>I could write {real} but").calls == ()


def test_qwen3_text_without_calls():
    parsed = parse_qwen3("Done")
    assert parsed.calls == () and parsed.reasoning == "Done"


# -- OpenAI tool_calls ----------------------------------------------------------------------------


def test_openai_tool_calls_from_dicts_and_sdk_objects():
    sdk = ChatCompletionMessageFunctionToolCall(
        id="call_1", type="function", function={"name": "new_memory_insert", "arguments": json.dumps(INSERT)}
    )

    def fn(**function):
        return {"type": "function", "function": function}

    calls = from_openai_tool_calls(
        [
            sdk,
            {"id": "call_2", **fn(name="memory_update", arguments=json.dumps(CORE))},
            fn(name="new_memory_insert", arguments=EVENT),  # already decoded
            fn(name="memory_delete", arguments="{'memory_type': 'core'}"),
            fn(arguments="{}"),
        ]
    )
    assert [(c.name, c.arguments) for c in calls[:3]] == [
        ("new_memory_insert", INSERT),
        ("memory_update", CORE),
        ("new_memory_insert", EVENT),
    ]
    assert calls[3].name == "memory_delete" and calls[3].arguments is None
    assert "not valid JSON" in calls[3].error
    assert calls[4].error == "the tool call has no function name"
    assert from_openai_tool_calls(None) == [] and from_openai_tool_calls([]) == []


# -- qwen-agent ------------------------------------------------------------------------------------


def test_qwen_agent_several_calls_and_the_reasoning_before_them():
    text = (
        "The chunk is about Lyon.\n"
        + marker_call("new_memory_insert", json.dumps(INSERT))
        + "\n"
        + marker_call("new_memory_insert", json.dumps(EVENT))
        + "\n"
        + marker_call("memory_update", json.dumps(CORE))
    )
    parsed = parse_qwen_agent(text)
    assert parsed.reasoning == "The chunk is about Lyon."
    assert [(c.name, c.arguments) for c in parsed.calls] == [
        ("new_memory_insert", INSERT),
        ("new_memory_insert", EVENT),
        ("memory_update", CORE),
    ]


def test_qwen_agent_arguments_end_at_their_last_brace():
    text = marker_call("new_memory_insert", json.dumps(INSERT) + "  <!-- stored -->\nthat is all")
    (c,) = parse_qwen_agent(text).calls
    assert c.arguments == INSERT and c.raw_arguments == json.dumps(INSERT)


def test_qwen_agent_made_up_results_and_everything_after_them_are_ignored():
    text = (
        marker_call("new_memory_insert", json.dumps(INSERT))
        + f"\n{FN_RESULT}: {{'status': 'ok'}}\n"
        + marker_call("memory_delete", '{"memory_type": "core_memory"}')
        + f"\n{FN_EXIT}: Done."
    )
    assert [c.arguments for c in parse_qwen_agent(text).calls] == [INSERT]
    only_return = marker_call("memory_update", json.dumps(CORE)) + f"\n{FN_EXIT}: stored"
    assert [c.arguments for c in parse_qwen_agent(only_return).calls] == [CORE]


def test_qwen_agent_malformed_calls():
    text = (
        f"{FN_NAME}: memory_delete\n"  # no arguments marker
        + marker_call("new_memory_insert", "{'memory_type': 'semantic_memory', 'content': 'x'}")
        + "\n"
        + marker_call("new_memory_insert", '{"memory_type": "semantic_memory", "content": "cut')
        + "\n"
        + marker_call("new_memory_insert", '"just a string"')
    )
    calls = parse_qwen_agent(text).calls
    assert [c.name for c in calls] == ["memory_delete"] + ["new_memory_insert"] * 3
    assert all(c.arguments is None for c in calls)
    assert calls[0].error == f"no {FN_ARGS} after the tool name"
    assert "not valid JSON" in calls[1].error and "not valid JSON" in calls[2].error
    assert calls[3].error == "arguments: not a JSON object (str)"


def test_qwen_agent_repeated_args_are_calls_of_the_same_tool():
    text = f"{FN_NAME}: new_memory_insert\n{FN_ARGS}: {json.dumps(INSERT)}\n{FN_ARGS}: {json.dumps(EVENT)}"
    assert [(c.name, c.arguments) for c in parse_qwen_agent(text).calls] == [
        ("new_memory_insert", INSERT),
        ("new_memory_insert", EVENT),
    ]


def test_qwen_agent_edge_cases():
    assert parse_qwen_agent("Nothing to memorise. Done").calls == ()
    flower = {"memory_type": "semantic_memory", "content": "The ✿ is a flower mark."}
    same_line = f"{FN_NAME}: new_memory_insert {FN_ARGS}: {json.dumps(flower, ensure_ascii=False)}"
    assert [c.arguments for c in parse_qwen_agent(same_line).calls] == [flower]
    no_colon = f"{FN_NAME} memory_update\n{FN_ARGS} {json.dumps(CORE)}"
    assert [(c.name, c.arguments) for c in parse_qwen_agent(no_colon).calls] == [("memory_update", CORE)]
    unknown = parse_qwen_agent(marker_call("remember", "{}")).calls
    result = MemoryEnvironment(SimpleCounter()).execute(unknown[0])
    assert result.message.startswith("unknown tool 'remember'")


def test_parse_response_dispatches_on_the_format():
    assert parse_response(block("memory_update", CORE), "qwen3").calls[0].arguments == CORE
    assert parse_response(block("memory_update", CORE), "qwen-agent").calls == ()
    markers = marker_call("memory_update", json.dumps(CORE))
    assert parse_response(markers, "qwen-agent").calls[0].arguments == CORE
    with pytest.raises(ValueError, match="unknown tool-call format 'hermes'"):
        parse_response("", "hermes")  # type: ignore[arg-type]


def test_loads_object_is_strict():
    assert loads_object(' {"a": 1} trailing') == ({"a": 1}, None)
    assert loads_object('{"a": 1}}') == ({"a": 1}, None)
    for bad in ("", "{a: 1}", "{'a': 1}", '{"a": 1,}', '{"a": ', "[1]", "null"):
        value, error = loads_object(bad)
        assert value is None and error, bad
    # what a model may emit that made json.loads raise RecursionError or ValueError: a failed call, not a crash
    assert loads_object('{"a": ' + "[" * 100_000) == (None, "not valid JSON (nested too deep)")
    assert loads_object('{"a": 1} ' + "[" * 100_000) == ({"a": 1}, None)  # the text after the object is ignored
    value, error = loads_object('{"a": ' + "7" * 5000 + "}")
    assert value is None and error.startswith("not valid JSON (Exceeds the limit (4300 digits)")


# -- the qwen-agent tool block --------------------------------------------------------------------


def test_the_qwen_agent_package_appends_its_tool_block_to_the_system_message():
    """The layout the original's notes record for qwen-agent 0.0.29 (lang en, parallel calls)."""
    given = [{"role": "system", "content": "Memorise."}, {"role": "user", "content": "A chunk."}]
    system, user = qwen_agent_messages(given, TOOL_SCHEMAS)
    assert user == given[1]
    assert system["role"] == "system" and system["content"].startswith("Memorise.\n\n# Tools\n\n")
    text = system["content"]
    assert "## You have access to the following tools:" in text
    for schema in TOOL_SCHEMAS:
        fn = schema["function"]
        heading = text.index(f"### {fn['name']}\n\n{fn['name']}: {fn['description']} Parameters: ")
        params = re.search(r"Parameters: (\{.*\}) Format the arguments as a JSON object\.", text[heading:]).group(1)
        assert json.loads(params) == fn["parameters"]
    fmt = text[text.rindex("## ") :]
    assert fmt.startswith("## Insert the following command in your reply when you need to call N tools in parallel:")
    markers = re.findall("✿[A-Z]+✿", fmt)
    assert markers == [FN_NAME, FN_ARGS] * 3 + [FN_RESULT] * 3 + [FN_EXIT]
    assert "[new_memory_insert,memory_update,memory_delete]" in fmt
    # bare function dicts render the same; the messages given are not changed
    assert qwen_agent_messages(given, [s["function"] for s in TOOL_SCHEMAS])[0] == system
    assert given[0]["content"] == "Memorise."


def test_without_the_qwen_agent_package_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "qwen_agent.llm.fncall_prompts.qwen_fncall_prompt", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'memalpha-bench\[qwen-agent\]'"):
        qwen_agent_messages([{"role": "user", "content": "x"}], TOOL_SCHEMAS)


def test_a_reply_in_the_described_format_executes():
    reply = "\n".join(
        marker_call(n, json.dumps(a, ensure_ascii=False))
        for n, a in [("new_memory_insert", INSERT), ("new_memory_insert", EVENT), ("memory_update", CORE)]
    )
    env = MemoryEnvironment(SimpleCounter())
    results = env.execute_all(parse_qwen_agent(reply + f"\n{FN_RESULT}: ok").calls)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert env.core == CORE["new_content"] and env.snapshot().episodic[0].timestamp == "2024-03-02"
