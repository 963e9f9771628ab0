"""The memories.jsonl format: valid files load, every problem is reported with line and field."""

from __future__ import annotations

import json

import pytest

from benchmark.memory import Memory, MemoryEntry, MemoryFileError, MemoryRecord, read_memories, write_memories
from tasks.errors import TaskError


def line(**overrides):
    record = {
        "instance_id": "i1",
        "task": "squad",
        "memory": {
            "core": "",
            "semantic": [{"id": "s0", "content": "Paris is in France."}],
            "episodic": [{"id": "e0", "content": "Went to Rome.", "timestamp": "2024-01-01"}],
        },
        "stats": {"chunks_seen": 3},
    }
    record.update(overrides)
    return json.dumps(record)


def test_round_trip(tmp_path):
    records = [
        MemoryRecord("a", "squad", Memory("core text", (MemoryEntry("s0", "x"),), ()), {"seconds": 1.5}),
        MemoryRecord("b", "squad", Memory(), {}),
    ]
    path = tmp_path / "memories.jsonl"
    write_memories(path, records)
    assert read_memories(path) == records


def test_empty_parts_and_null_core_are_allowed(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(line(memory={"core": None, "semantic": [], "episodic": []}) + "\n\n")
    (record,) = read_memories(path)
    assert record.memory == Memory()


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("{not json", "<line>", "not valid JSON"),
        (line(memory={"core": "", "semantic": []}), "memory", "missing key(s) ['episodic']"),
        (line(memory={"core": 3, "semantic": [], "episodic": []}), "memory.core", "must be a string"),
        (
            line(
                memory={
                    "core": "",
                    "semantic": [{"id": "s0", "content": "a"}, {"id": "s0", "content": "b"}],
                    "episodic": [],
                }
            ),
            "memory.semantic[1].id",
            "duplicate id 's0'",
        ),
        (
            line(memory={"core": "", "semantic": [{"id": "s0", "content": ""}], "episodic": []}),
            "memory.semantic[0].content",
            "non-empty string",
        ),
        (line(memory={"core": "", "semantic": "s0", "episodic": []}), "memory.semantic", "must be a list"),
        (line(instance_id=""), "instance_id", "non-empty string"),
        (line(extra=1), "<line>", "unknown key(s) ['extra']"),
        (
            line(memory={"core": "", "semantic": [], "episodic": [{"id": "e", "content": "x", "timestamp": 5}]}),
            "memory.episodic[0].timestamp",
            "must be a string",
        ),
    ],
)
def test_each_problem_names_line_and_field(tmp_path, text, field, message):
    path = tmp_path / "memories.jsonl"
    path.write_text(line() + "\n" + text + "\n")
    with pytest.raises(MemoryFileError) as err:
        read_memories(path)
    assert (2, field) in [(ln, f) for ln, f, _ in err.value.problems]
    assert message in str(err.value) and f"{path}, line 2" in str(err.value)


def test_all_problems_reported_at_once_including_duplicates(tmp_path):
    path = tmp_path / "memories.jsonl"
    path.write_text("\n".join([line(), "[]", line(), line(task="")]) + "\n")
    with pytest.raises(MemoryFileError) as err:
        read_memories(path)
    lines = sorted(ln for ln, _, _ in err.value.problems)
    assert lines == [2, 3, 4]
    assert "already given on line 1" in str(err.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(TaskError, match="no memories file"):
        read_memories(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(MemoryFileError, match="no memory records"):
        read_memories(tmp_path / "empty.jsonl")
