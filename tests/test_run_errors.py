"""What a run and a score keep of failures and echo of their input: errors.jsonl holds one line per
instance without a memory (its latest error, cut), a resume that succeeds drops it, and unknown ids are
named cut to a few characters, however long they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_scoring_e2e import score_args

from benchmark.agents.base import InstanceInfo, Session
from benchmark.agents.baselines import ChunkStoreAgent, ChunkStoreSession
from benchmark.cli import main
from benchmark.memory import Memory, MemoryEntry, MemoryRecord, read_memories, write_memories
from benchmark.running import ERROR_CHARS, ERRORS, MEMORIES, run_agent
from tasks.manifest import load_built

pytestmark = pytest.mark.realdata
MEMBERS = [("squad", "validation")]


class Failing(ChunkStoreAgent):
    """chunk-store, failing every instance in `broken` at its second chunk with the message `why`."""

    def __init__(self, broken: set[str], why: str):
        super().__init__()
        self.broken, self.why = broken, why

    def new_session(self, instance: InstanceInfo) -> Session:
        agent = self

        class MaybeFailing(ChunkStoreSession):
            def observe(self, chunk: str) -> None:
                if instance.instance_id in agent.broken and self.chunks:
                    raise RuntimeError(agent.why)
                super().observe(chunk)

        return MaybeFailing()


def error_lines(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / ERRORS).read_bytes().split(b"\n") if line]


def test_errors_file_keeps_the_latest_error_of_each_failing_instance(squad_data, tmp_path):
    ids = sorted(load_built(squad_data, "squad")[0]["validation"]["instance_id"])
    run = tmp_path / "run"
    for attempt in range(3):  # the same instance fails on every resume
        summary = run_agent(Failing({ids[0]}, f"attempt {attempt}\x00 \ud800"), run, squad_data, MEMBERS)
        assert list(summary.failed) == [f"squad/{ids[0]}"]
        (line,) = error_lines(run)
        assert line == {
            "task": "squad",
            "instance_id": ids[0],
            "error": f"RuntimeError: attempt {attempt}\\x00 \\ud800",  # what a resume could not read, escaped
        }
    summary = run_agent(Failing(set(), ""), run, squad_data, MEMBERS)  # fixed: the resume does the instance
    assert (summary.written, summary.resumed, summary.failed) == (1, len(ids) - 1, {})
    assert not (run / ERRORS).exists()


def test_a_huge_error_is_kept_cut(squad_data, tmp_path):
    ids = sorted(load_built(squad_data, "squad")[0]["validation"]["instance_id"])
    run = tmp_path / "run"
    summary = run_agent(Failing(set(ids), "x" * 1_000_000), run, squad_data, MEMBERS, concurrency=1)
    assert sorted(summary.failed) == [f"squad/{i}" for i in ids]
    for line in error_lines(run):
        assert len(line["error"]) < ERROR_CHARS + 50 and line["error"].endswith("(1,000,014 characters in all)")
    assert (run / ERRORS).stat().st_size < len(ids) * (ERROR_CHARS + 200)
    assert not (run / MEMORIES).exists() or (run / MEMORIES).read_bytes() == b""


def test_unknown_huge_instance_ids_are_named_cut(squad_data, scripted_server, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    huge = [MemoryRecord(f"{i:02d}" + "z" * 1_000_000, "squad", Memory()) for i in range(25)]
    write_memories(run / MEMORIES, huge)
    server = scripted_server(lambda request: "ready")
    code = main(score_args(run, squad_data, server.base_url))
    err = capsys.readouterr().err
    assert code == 1 and "instance ids not in the task data" in err and "(25 in all)" in err
    assert "squad/00zzzz" in err and "… (1,000,002 characters)" in err
    assert len(err) < 5_000  # 25 MB of ids gave a 20 MB message before
    assert server.count <= 1  # at most the start-up probe: no question was asked


class HandsIn(ChunkStoreAgent):
    """chunk-store whose memory for the instances in `bad` is what `spoil` makes of it."""

    def __init__(self, bad: dict[str, Any]):
        super().__init__()
        self.bad = bad

    def new_session(self, instance: InstanceInfo) -> Session:
        spoil = self.bad.get(instance.instance_id)

        class Spoiled(ChunkStoreSession):
            def memory(self) -> Memory:
                return spoil(super().memory()) if spoil else super().memory()

            def stats(self) -> dict[str, Any]:
                return {"score": float("nan")} if spoil is nan_stats else super().stats()

        return Spoiled()


def nan_stats(memory: Memory) -> Memory:
    return memory


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (
            lambda m: Memory(core="half of \ud800 a pair", semantic=m.semantic),
            "field 'memory.core': the text holds a lone surrogate U+D800",  # crashed the write before
        ),
        (lambda m: Memory(semantic=(MemoryEntry("", "text"),)), "field 'memory.semantic[0].id'"),
        (nan_stats, "field 'stats.score': NaN is not a JSON value"),
    ],
    ids=["lone surrogate", "empty id", "NaN in stats"],
)
def test_a_memory_scoring_would_refuse_fails_its_instance_and_nothing_is_written(spoil, message, squad_data, tmp_path):
    ids = sorted(load_built(squad_data, "squad")[0]["validation"]["instance_id"])
    run = tmp_path / "run"
    summary = run_agent(HandsIn({ids[0]: spoil}), run, squad_data, MEMBERS, show_progress=False)
    assert list(summary.failed) == [f"squad/{ids[0]}"] and summary.written == len(ids) - 1
    error = summary.failed[f"squad/{ids[0]}"]
    assert error.startswith(f"TaskError: bad memory for instance {ids[0]!r}: ") and message in error, error
    assert sorted(r.instance_id for r in read_memories(run / MEMORIES)) == ids[1:]  # the file reads back whole
    assert [line["instance_id"] for line in error_lines(run)] == [ids[0]]
