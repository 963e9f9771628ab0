"""The memory tool environment: every tool, every error, and the memory left alone by failed calls."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from benchmark.memory import MemoryEntry
from reference_agent.environment import (
    TOOL_SCHEMAS,
    TRUNCATION_MARKER,
    MemoryEnvironment,
    ToolStats,
    normalize_memory_type,
)
from reference_agent.toolcalls import ToolCall
from tasks.tokenization import SimpleCounter

COUNTER = SimpleCounter()


def call(name: str, **arguments) -> ToolCall:
    return ToolCall(name, arguments, "")


def insert(kind: str, content: str, **extra) -> ToolCall:
    return call("new_memory_insert", memory_type=kind, content=content, **extra)


def update(kind: str, content: str, **extra) -> ToolCall:
    return call("memory_update", memory_type=kind, new_content=content, **extra)


def delete(kind: str, **extra) -> ToolCall:
    return call("memory_delete", memory_type=kind, **extra)


@pytest.fixture
def env() -> MemoryEnvironment:
    """A memory with core, three semantic and two episodic entries."""
    env = MemoryEnvironment(COUNTER)
    results = env.execute_all(
        [
            update("core_memory", "The user is reading a travel diary."),
            insert("semantic_memory", "Lyon is in France."),
            insert("semantic_memory", "The Rhône flows through Lyon."),
            insert("semantic_memory", "Paris has 20 arrondissements."),
            insert("episodic_memory", "The user arrived in Lyon.", timestamp="2024-03-02"),
            insert("episodic_memory", "The user visited a museum."),
        ]
    )
    assert all(r.status == "ok" for r in results)
    return env


def test_inserts_get_sequential_ids_per_type(env):
    mem = env.snapshot()
    assert mem.core == "The user is reading a travel diary."
    assert [e.id for e in mem.semantic] == ["s0", "s1", "s2"]
    assert mem.episodic == (
        MemoryEntry("e0", "The user arrived in Lyon.", "2024-03-02"),
        MemoryEntry("e1", "The user visited a museum.", None),
    )


def test_exact_duplicate_is_skipped_not_added_and_not_an_error(env):
    before = env.snapshot()
    result = env.execute(insert("semantic", "  Lyon is in France. "))  # same text once stripped
    assert (result.ok, result.status) == (True, "skipped")
    assert env.snapshot() == before
    assert env.stats == ToolStats(calls=7, ok=6, skipped=1, failed=0)
    # the same text in the other memory type is not a duplicate; a near-duplicate is not either
    assert env.execute(insert("episodic", "Lyon is in France.")).status == "ok"
    assert env.execute(insert("semantic", "Lyon is in France")).status == "ok"


def test_ids_are_never_reused_after_delete(env):
    assert env.execute(delete("semantic", memory_id="s2")).status == "ok"
    assert env.execute(delete("episodic", memory_id="e1")).status == "ok"
    assert env.execute(insert("semantic", "Marseille is a port.")).message == "inserted semantic entry s3"
    assert env.execute(insert("episodic", "The user left.")).message == "inserted episodic entry e2"
    assert [e.id for e in env.snapshot().semantic] == ["s0", "s1", "s3"]


def test_deleted_or_replaced_text_can_be_inserted_again(env):
    env.execute(delete("semantic", memory_id="s0"))
    assert env.execute(insert("semantic", "Lyon is in France.")).status == "ok"
    env.execute(update("semantic", "The Rhône and the Saône meet in Lyon.", memory_id="s1"))
    assert env.execute(insert("semantic", "The Rhône flows through Lyon.")).status == "ok"
    assert env.execute(insert("semantic", "The Rhône and the Saône meet in Lyon.")).status == "skipped"


def test_update_replaces_an_entry_in_place(env):
    result = env.execute(update("semantic_memory", "Lyon is the third city of France.", memory_id="s0"))
    assert result.status == "ok" and result.message == "updated semantic entry s0"
    assert env.snapshot().semantic[0] == MemoryEntry("s0", "Lyon is the third city of France.")
    # episodic keeps its timestamp unless a new one is given
    env.execute(update("episodic", "The user arrived in Lyon by train.", memory_id="e0"))
    assert env.snapshot().episodic[0] == MemoryEntry("e0", "The user arrived in Lyon by train.", "2024-03-02")
    env.execute(update("episodic", "By train.", memory_id="e0", timestamp="2024-03-03"))
    assert env.snapshot().episodic[0].timestamp == "2024-03-03"


def test_updates_are_not_deduplicated(env):
    assert env.execute(update("semantic", "Lyon is in France.", memory_id="s1")).status == "ok"
    assert [e.content for e in env.snapshot().semantic].count("Lyon is in France.") == 2
    env.execute(delete("semantic", memory_id="s0"))  # one copy left: the text is still held
    assert env.execute(insert("semantic", "Lyon is in France.")).status == "skipped"


def test_core_update_and_delete(env):
    assert env.execute(update("core", "  New summary.  ")).message == "core memory rewritten"
    assert env.core == "New summary."
    assert env.execute(delete("core")).message == "core memory cleared"
    assert env.core == "" and len(env.snapshot().semantic) == 3
    # a memory_id given with core is not used
    assert env.execute(update("core", "Again.", memory_id="s0")).status == "ok"
    assert env.core == "Again." and env.snapshot().semantic[0].content == "Lyon is in France."


def test_delete_removes_the_entry(env):
    assert env.execute(delete("episodic_memory", memory_id="e0")).message == "deleted episodic entry e0"
    assert [e.id for e in env.snapshot().episodic] == ["e1"]


def test_bracketed_ids_as_shown_in_the_prompt_are_accepted(env):
    assert env.execute(delete("semantic", memory_id=" [s1] ")).status == "ok"
    assert [e.id for e in env.snapshot().semantic] == ["s0", "s2"]


@pytest.mark.parametrize("words,truncated", [(512, False), (513, True), (2000, True)])
def test_core_is_capped_at_512_tokens_at_a_word_boundary(words, truncated):
    env = MemoryEnvironment(COUNTER)
    text = " ".join(f"w{i}" for i in range(words))
    result = env.execute(update("core", text))
    assert result.status == "ok" and ("truncated" in result.message) == truncated
    assert COUNTER.count(env.core) <= 512
    if not truncated:
        assert env.core == text
        return
    marker = TRUNCATION_MARKER.format(limit=512)
    assert env.core.endswith(marker)
    kept = env.core[: -len(marker)]
    assert text.startswith(kept + " ")  # whole words only
    n = len(kept.split())
    assert COUNTER.count(" ".join(text.split()[: n + 1]) + marker) > 512  # the longest prefix that fits


def test_core_limit_is_configurable_and_keeps_newlines():
    env = MemoryEnvironment(COUNTER, core_limit=30)
    text = "Line one has words.\nLine two has more words.\n" * 5
    env.execute(update("core", text))
    assert COUNTER.count(env.core) <= 30
    assert env.core.startswith("Line one has words.\nLine two")
    assert env.core.endswith(TRUNCATION_MARKER.format(limit=30))
    env.execute(update("core", "-" * 100))  # one "word" of 100 tokens: only the marker is left
    assert env.core == TRUNCATION_MARKER.format(limit=30).strip()


@pytest.mark.parametrize(
    "spelling",
    [
        "semantic",
        "semantic_memory",
        "Semantic Memory",
        "semantic memory",
        "semantic-memory",
        "SEMANTIC_MEMORY",
        " semantic ",
        "Semantic",
    ],
)
def test_memory_type_spellings_are_normalised(spelling):
    assert normalize_memory_type(spelling) == "semantic"
    env = MemoryEnvironment(COUNTER)
    assert env.execute(insert(spelling, "A fact.")).status == "ok"
    assert env.snapshot().semantic[0].content == "A fact."


@pytest.mark.parametrize(
    "spelling",
    ["semantics", "memory", "semantic episodic", "semantic_memory_x", "", "core memory memory", None, 3, ["semantic"]],
)
def test_other_memory_type_values_are_rejected(spelling):
    assert normalize_memory_type(spelling) is None


def test_schema_enums_name_memory_types():
    for schema in TOOL_SCHEMAS:
        enum = schema["function"]["parameters"]["properties"]["memory_type"]["enum"]
        assert {normalize_memory_type(v) for v in enum} <= {"core", "semantic", "episodic"}
        assert None not in {normalize_memory_type(v) for v in enum}


BAD_CALLS = [
    (ToolCall("memory_search", {"memory_type": "semantic", "query": "x"}, ""), "unknown tool 'memory_search'"),
    (ToolCall("new_memory_insert", None, "{'memory_type': 'x'}", "arguments are not valid JSON"), "not valid JSON"),
    (ToolCall("new_memory_insert", None, ""), "no arguments"),
    (call("new_memory_insert", content="A fact."), "missing required argument(s) 'memory_type'"),
    (call("new_memory_insert", memory_type="semantic"), "missing required argument(s) 'content'"),
    (call("memory_update", memory_type="core"), "missing required argument(s) 'new_content'"),
    (insert("semantic", "A fact.", memory_id="s0"), "unknown argument(s) 'memory_id'"),
    (insert("semantic", "A fact.", importance=3), "unknown argument(s) 'importance'"),
    (insert("procedural", "A fact."), "unknown memory_type 'procedural'"),
    (insert("semantic", 42), "'content' must be a string"),
    (insert("semantic", "   "), "'content' is empty"),
    (insert("episodic", "An event.", timestamp=20240302), "'timestamp' must be a string"),
    (insert("core", "The user likes tea."), "core memory takes no inserts"),
    (update("core", ""), "'new_content' is empty"),
    (update("semantic", "New text."), "'memory_id' is required"),
    (update("semantic", "New text.", memory_id=None), "'memory_id' is required"),
    (update("semantic", "New text.", memory_id=0), "'memory_id' must be a string"),
    (update("semantic", "New text.", memory_id="s9"), "no semantic entry with id 's9'"),
    (update("semantic", "New text.", memory_id="e0"), "(e0 is an episodic id)"),
    (update("episodic", "New text.", memory_id="e0", timestamp=["x"]), "'timestamp' must be a string"),
    (delete("semantic"), "'memory_id' is required"),
    (delete("episodic", memory_id="e7"), "no episodic entry with id 'e7'"),
    (delete("semantic", memory_id="S0"), "no semantic entry with id 'S0'"),
]


@pytest.mark.parametrize("bad,message", BAD_CALLS, ids=[m for _, m in BAD_CALLS])
def test_failed_calls_leave_the_memory_unchanged(env, bad, message):
    before, core, stats = (
        env.snapshot(),
        env.core,
        ToolStats(**{k: getattr(env.stats, k) for k in ("calls", "ok", "skipped", "failed")}),
    )
    result = env.execute(bad)
    assert (result.ok, result.status) == (False, "error")
    assert message in result.message
    assert env.snapshot() == before and env.core == core
    assert env.stats == ToolStats(stats.calls + 1, stats.ok, stats.skipped, stats.failed + 1)
    # and nothing is broken afterwards: the next insert gets the next id
    assert env.execute(insert("semantic", "Fresh fact.")).message == "inserted semantic entry s3"


def test_random_arguments_never_raise_and_failures_change_nothing(env):
    rng = random.Random(0)
    values = [
        None,
        "",
        "  ",
        0,
        1.5,
        True,
        [],
        {},
        ["s0"],
        "semantic",
        "episodic_memory",
        "core",
        "Core Memory",
        "s0",
        "s1",
        "e0",
        "e5",
        "[e1]",
        "Some text.",
        "Lyon is in France.",
        "2024-01-01",
    ]
    keys = ["memory_type", "content", "new_content", "memory_id", "timestamp", "query"]
    names = ["new_memory_insert", "memory_update", "memory_delete", "nope"]
    outcomes = set()
    for _ in range(3000):
        args = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 4))}
        before = env.snapshot()
        result = env.execute(ToolCall(rng.choice(names), args, ""))
        outcomes.add(result.status)
        if not result.ok:
            assert env.snapshot() == before
    assert {"ok", "error"} <= outcomes
    assert env.stats.calls == 3006 and env.stats.ok + env.stats.skipped + env.stats.failed == 3006


def test_snapshot_is_the_memory_file_shape(env):
    mem = env.snapshot().to_json()
    assert mem["semantic"][0] == {"id": "s0", "content": "Lyon is in France."}
    assert mem["episodic"][0] == {"id": "e0", "content": "The user arrived in Lyon.", "timestamp": "2024-03-02"}
    ids = [e["id"] for e in mem["semantic"] + mem["episodic"]]
    assert all(re.fullmatch(r"[se]\d+", i) for i in ids) and len(set(ids)) == len(ids)


def test_total_tokens_counts_core_and_contents_only(env):
    mem = env.snapshot()
    texts = [env.core, *(e.content for e in mem.semantic), *(e.content for e in mem.episodic)]
    assert env.total_tokens() == sum(COUNTER.count(t) for t in texts) > 0
    assert MemoryEnvironment(COUNTER).total_tokens() == 0


def test_recent_returns_the_last_entries_oldest_first(env):
    for i in range(4):
        env.execute(insert("semantic", f"Fact {i}."))
    shown, total = env.recent("semantic", 5)
    assert total == 7 and [e.id for e in shown] == ["s2", "s3", "s4", "s5", "s6"]
    assert env.recent("episodic", 5)[0] == env.snapshot().episodic
    assert env.recent("semantic", 0) == ((), 7)


def test_many_inserts_keep_unique_ids():
    env = MemoryEnvironment(COUNTER)
    for i, kind in zip(range(2000), itertools.cycle(["semantic", "episodic"]), strict=False):
        env.execute(insert(kind, f"entry {i}"))
        if i % 7 == 0:
            env.execute(delete(kind, memory_id=env.recent(kind, 1)[0][0].id))
    mem = env.snapshot()
    ids = [e.id for e in mem.semantic + mem.episodic]
    assert len(ids) == len(set(ids)) == 2000 - len(range(0, 2000, 7))
