"""Durable progress: a `memalpha run` killed with SIGKILL in the middle resumes from the run's agent cache
and repeats at most the step each open instance was in; memories are written as instances finish."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from benchmark.agents.base import Agent, InstanceInfo, Session
from benchmark.memory import Memory, read_memories
from benchmark.running import MEMORIES, run_agent
from tasks.build import build_task
from tasks.manifest import load_built

pytestmark = pytest.mark.realdata
KILL_AT = 9  # the request whose arrival kills the run: the middle of step 5 of 10


@pytest.fixture(scope="module")
def data(raw_dir, tmp_path_factory) -> Path:
    """SQuAD train split with limit 2: two instances of ten chunks each."""
    out = tmp_path_factory.mktemp("data")
    build_task("squad", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=2, show_progress=False)
    return out


def note_the_chunk(body: dict) -> str:
    """The model: one semantic insert naming the chunk it was shown (so replayed answers are checkable)."""
    chunk = re.search(r"<new_chunk>\n(.*)\n</new_chunk>", body["messages"][-1]["content"], re.S).group(1)
    digest = hashlib.sha256(chunk.encode()).hexdigest()[:16]
    call = {"name": "new_memory_insert", "arguments": {"memory_type": "semantic_memory", "content": f"saw {digest}"}}
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


def run_command(data: Path, out: Path, base_url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmark",
        "run",
        "--agent",
        "memalpha",
        "--agent-opt",
        "backend=openai",
        "--agent-opt",
        f"base_url={base_url}",
        "--agent-opt",
        "model=scripted",
        "--agent-opt",
        "max_retries=0",
        "--tasks",
        "squad",
        "--split",
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--tokenizer",
        "simple",
        "--quiet",
    ]


def memories(run: Path) -> dict[str, Memory]:
    return {r.instance_id: r.memory for r in read_memories(run / MEMORIES)}


def test_sigkill_in_the_middle_of_a_run_loses_no_finished_step(data, tmp_path, scripted_server):
    dataset, _ = load_built(data, "squad")
    steps = sum(len(row["chunks"]) for row in dataset["train"])
    open_instances = len(dataset["train"])  # the memalpha agent batches: every instance is open at once
    assert (steps, open_instances) == (20, 2)

    victim: dict[str, subprocess.Popen] = {}
    killed = threading.Event()
    arrivals = itertools.count(1)
    arrival_lock = threading.Lock()

    def model(body: dict) -> str:
        with arrival_lock:  # the two requests of a step may arrive together: count each once
            arrival = next(arrivals)
        if arrival == KILL_AT:
            os.kill(victim["process"].pid, signal.SIGKILL)  # before this request is answered
            killed.set()
        return note_the_chunk(body)

    server = scripted_server(model)
    run = tmp_path / "run"
    victim["process"] = subprocess.Popen(run_command(data, run, server.base_url), stderr=subprocess.PIPE, text=True)
    victim["process"].wait(timeout=300)
    assert victim["process"].returncode == -signal.SIGKILL and killed.is_set()
    victim["process"].stderr.close()
    sent_before_kill = server.count
    assert KILL_AT <= sent_before_kill <= KILL_AT + open_instances - 1  # the other request of its step may be in

    resumed = subprocess.run(run_command(data, run, server.base_url), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    sent_after = server.count - sent_before_kill
    repeated = sent_before_kill + sent_after - steps
    assert 0 <= repeated <= open_instances  # at most the step each open instance was in
    replayed = int(re.search(r"(\d+) agent model answers replayed", resumed.stderr).group(1))
    assert replayed >= KILL_AT - open_instances and replayed + sent_after == steps

    # the replayed run wrote exactly what an uninterrupted run writes
    fresh = tmp_path / "fresh"
    done = subprocess.run(run_command(data, fresh, server.base_url), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert memories(run) == memories(fresh) and len(memories(run)) == open_instances


class Recorder(Agent):
    """Logs session openings and memory hand-ins; its `in_flight` is the runner's concurrency (threads)."""

    name = "recorder"
    log: ClassVar[list[str]] = []

    def new_session(self, instance: InstanceInfo) -> Session:
        Recorder.log.append(f"open {instance.instance_id}")

        class S(Session):
            def observe(self, chunk: str) -> None:
                pass

            def memory(self) -> Memory:
                Recorder.log.append(f"memory {instance.instance_id}")
                return Memory("kept", (), ())

        return S()


def test_instances_are_written_as_they_finish_not_at_the_end(data, tmp_path):
    Recorder.log = []
    summary = run_agent(Recorder(), tmp_path / "run", data, [("squad", "train")], concurrency=1, show_progress=False)
    first, second = load_built(data, "squad")[0]["train"]["instance_id"]
    assert summary.written == 2
    assert Recorder.log == [f"open {first}", f"memory {first}", f"open {second}", f"memory {second}"]
    assert [r.instance_id for r in read_memories(tmp_path / "run" / MEMORIES)] == [first, second]
