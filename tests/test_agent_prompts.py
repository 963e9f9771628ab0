"""The memorising prompt: memory state window, chunk, response limit, formats, template hash."""

from __future__ import annotations

import re
import shutil

import pytest

from reference_agent import prompts
from reference_agent.environment import TOOL_SCHEMAS, MemoryEnvironment
from reference_agent.prompts import MemorizePrompt, build_messages, chat_tools, max_new_tokens
from reference_agent.toolcalls import FN_ARGS, FN_NAME, ToolCall
from tasks.tokenization import SimpleCounter


def filled(semantic: int, episodic: int) -> MemoryEnvironment:
    env = MemoryEnvironment(SimpleCounter())
    core = {"memory_type": "core", "new_content": "The user reads about rivers."}
    env.execute(ToolCall("memory_update", core, ""))
    for i in range(semantic):
        fact = {"memory_type": "semantic", "content": f"River fact {i}."}
        env.execute(ToolCall("new_memory_insert", fact, ""))
    for i in range(episodic):
        env.execute(
            ToolCall(
                "new_memory_insert",
                {"memory_type": "episodic", "content": f"Trip {i}.", "timestamp": f"2024-05-{i + 1:02d}"},
                "",
            )
        )
    return env


def block(system: str, kind: str) -> str:
    return re.search(rf"<{kind}_memory>.*?</{kind}_memory>", system, re.S).group(0)


def test_system_shows_core_in_full_and_only_the_last_five_entries_with_ids():
    system, _ = (m["content"] for m in build_messages(filled(7, 3), "chunk"))
    assert "<core_memory>\nThe user reads about rivers.\n</core_memory>" in system
    semantic = block(system, "semantic")
    assert "showing the last 5 of 7" in semantic
    assert re.findall(r"\[(s\d+)\] River fact", semantic) == ["s2", "s3", "s4", "s5", "s6"]
    assert "River fact 1." not in system and "[s1]" not in system
    episodic = block(system, "episodic")
    assert "showing the last 3 of 3" in episodic
    assert "[e0] (2024-05-01) Trip 0." in episodic and "[e2] (2024-05-03) Trip 2." in episodic


def test_window_size_and_empty_memory():
    system = build_messages(filled(7, 3), "chunk", recent=2)[0]["content"]
    assert re.findall(r"\[([se]\d+)\]", system) == ["s5", "s6", "e1", "e2"]
    assert "showing the last 2 of 7" in system and "showing the last 2 of 3" in system
    empty = build_messages(MemoryEnvironment(SimpleCounter()), "chunk")[0]["content"]
    for kind in ("core", "semantic", "episodic"):
        assert block(empty, kind) == f"<{kind}_memory>\n(empty)\n</{kind}_memory>"
    assert "showing" not in empty


def test_user_message_holds_the_chunk_and_the_response_limit():
    chunk = "Dialogue at 2024-05-01\n<User> I swam in the Rhône {today}."
    messages = build_messages(filled(1, 1), chunk)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert f"<new_chunk>\n{chunk}\n</new_chunk>" in user
    assert "at most 1638 tokens" in user
    assert "at most 800 tokens" in build_messages(filled(1, 1), chunk, response_limit=1000)[1]["content"]
    assert chunk not in messages[0]["content"]
    assert (max_new_tokens(2048), max_new_tokens(1000)) == (1638, 800)


def test_formats_differ_only_by_the_tool_block():
    env = filled(2, 2)
    qwen3 = build_messages(env, "chunk", fmt="qwen3")
    agent = build_messages(env, "chunk", fmt="qwen-agent")
    assert qwen3[1] == agent[1]
    assert FN_NAME not in qwen3[0]["content"]
    assert agent[0]["content"].startswith(qwen3[0]["content"] + "\n\n# Tools\n")
    tool_block = agent[0]["content"][len(qwen3[0]["content"]) :]
    assert f"{FN_NAME}: The name of tool 1" in tool_block and FN_ARGS in tool_block
    for schema in TOOL_SCHEMAS:
        assert f"### {schema['function']['name']}" in tool_block


def test_chat_tools_per_format():
    tools = chat_tools("qwen3")
    assert tools == TOOL_SCHEMAS
    tools[0]["function"]["name"] = "changed"  # a copy: the module's schemas stay intact
    assert TOOL_SCHEMAS[0]["function"]["name"] == "new_memory_insert"
    assert chat_tools("qwen-agent") is None
    with pytest.raises(ValueError, match="unknown tool-call format"):
        chat_tools("json")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown tool-call format"):
        build_messages(filled(0, 0), "chunk", fmt="xml")  # type: ignore[arg-type]


def test_template_hash_is_stable_and_tracks_the_templates(tmp_path, monkeypatch):
    sha = MemorizePrompt().sha256
    assert re.fullmatch(r"[0-9a-f]{64}", sha) and MemorizePrompt().sha256 == sha
    shutil.copytree(prompts.TEMPLATES, tmp_path, dirs_exist_ok=True)
    user = tmp_path / "memorize_user_v1.jinja"
    user.write_text(user.read_text("utf-8").replace("three steps", "3 steps"), "utf-8")
    monkeypatch.setattr(prompts, "TEMPLATES", tmp_path)
    changed = MemorizePrompt()
    assert changed.sha256 != sha
    assert "3 steps" in changed.build_messages(filled(0, 0), "chunk")[1]["content"]


def test_every_tool_and_memory_type_is_named_in_the_instructions():
    system, user = (m["content"] for m in build_messages(filled(0, 0), "chunk"))
    assert "at most 512 tokens" in system
    assert "memory_update" in user and "new_memory_insert" in user
    for kind in ("core", "semantic", "episodic"):
        assert f"{kind} memory" in system.lower()
