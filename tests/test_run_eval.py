"""`memalpha run` / `eval`: baselines end to end, resume after a kill, an agent failing on one instance."""

from __future__ import annotations

import json

import pytest

from benchmark import agents
from benchmark.agents.base import Agent, AgentOptionError, InstanceInfo, Session
from benchmark.agents.baselines import ChunkStoreAgent, LongContextAgent
from benchmark.cli import main
from benchmark.memory import Memory, read_memories
from benchmark.running import run_agent
from tasks.build import build_task
from tasks.manifest import load_built
from tasks.tokenization import get_counter

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def data(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    build_task("icl_trec_coarse", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False)
    build_task("squad", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=2, show_progress=False)
    return out


def test_eval_chunk_store_end_to_end(data, tmp_path, scripted_server, capsys):
    dataset, _ = load_built(data, "icl_trec_coarse")
    row = dataset["test"][0]
    golds = {q["question"]: q["answers"][0] for q in row["questions"]}
    server = scripted_server(lambda req: f"\\boxed{{{golds[req['messages'][-1]['content'].split(chr(10) * 2)[-1]]}}}")
    run = tmp_path / "run"
    code = main(
        [
            "eval",
            "--agent",
            "chunk-store",
            "--tasks",
            "icl_trec_coarse",
            "--data",
            str(data),
            "--out",
            str(run),
            "--reader",
            "openai",
            "--model",
            "scripted",
            "--base-url",
            server.base_url,
            "--tokenizer",
            "simple",
            "--top-k",
            "2",
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr()
    assert "icl_trec_coarse" in out.out and "OVERALL" in out.out and str(run) in out.err
    (record,) = read_memories(run / "memories.jsonl")
    assert [e.content for e in record.memory.semantic] == row["chunks"]  # every chunk verbatim
    assert record.stats["chunks_seen"] == len(row["chunks"])
    scores = json.loads((run / "scores.json").read_text())
    assert scores["tasks"]["icl_trec_coarse"]["score"] == 1.0
    config = json.loads((run / "config.json").read_text())
    assert config["agent"] == {"name": "chunk-store", "options": {}}
    assert config["members"] == [["icl_trec_coarse", "test"]]
    predictions = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert all(len(p["retrieved"]["semantic"]) <= 2 for p in predictions)


def test_long_context_core_is_the_tail_that_fits(data):
    dataset, _ = load_built(data, "squad")
    chunks = dataset["train"][0]["chunks"]
    counter = get_counter("simple")
    agent = LongContextAgent(tokens="3000", tokenizer="simple")
    session = agent.new_session(InstanceInfo("i", "squad", "AR", len(chunks)))
    for chunk in chunks:
        session.observe(chunk)
    core = session.memory().core
    assert 2900 <= counter.count(core) <= 3000
    assert core.endswith(chunks[-1]) and "\n\n".join(chunks).endswith(core)
    small = LongContextAgent(tokens="100000", tokenizer="simple").new_session(InstanceInfo("i", "squad", "AR", 1))
    small.observe("short input")
    assert small.memory() == Memory("short input", (), ())
    with pytest.raises(AgentOptionError, match="unknown option"):
        LongContextAgent(budget="3")
    with pytest.raises(AgentOptionError, match="integer"):
        LongContextAgent(tokens="many")


class FlakyAgent(Agent):
    """Fails on the second instance it sees; the others must still be written."""

    name = "flaky"

    def new_session(self, instance: InstanceInfo) -> Session:
        fail = instance.instance_id == self.options["fail_on"]

        class S(Session):
            def observe(self, chunk: str) -> None:
                if fail:
                    raise RuntimeError("model server exploded")

            def memory(self) -> Memory:
                return Memory("done", (), ())

        return S()


def test_failure_on_one_instance_is_reported_and_the_run_goes_on(data, tmp_path, monkeypatch, capsys):
    dataset, _ = load_built(data, "squad")
    ids = dataset["train"]["instance_id"]
    monkeypatch.setitem(agents.BUILTIN, "flaky", f"{__name__}:FlakyAgent")
    run = tmp_path / "run"
    code = main(
        [
            "run",
            "--agent",
            "flaky",
            "--agent-opt",
            f"fail_on={ids[1]}",
            "--tasks",
            "squad",
            "--split",
            "train",
            "--data",
            str(data),
            "--out",
            str(run),
            "--quiet",
        ]
    )
    assert code == 1
    assert "model server exploded" in capsys.readouterr().err
    assert [r.instance_id for r in read_memories(run / "memories.jsonl")] == [ids[0]]
    (error,) = [json.loads(line) for line in (run / "errors.jsonl").read_text().splitlines()]
    assert error["instance_id"] == ids[1] and "exploded" in error["error"]


def test_killed_run_resumes_without_redoing_finished_instances(data, tmp_path):
    run = tmp_path / "run"
    members = [("squad", "train"), ("squad", "validation")]
    first = run_agent(ChunkStoreAgent(), run, data, members, show_progress=False)
    assert first.written == 4
    lines = (run / "memories.jsonl").read_text().splitlines(keepends=True)
    # a kill while the third record was being appended: two whole lines and half of the third
    (run / "memories.jsonl").write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    resumed = run_agent(ChunkStoreAgent(), run, data, members, show_progress=False)
    assert resumed.resumed == 2 and resumed.written == 2
    records = read_memories(run / "memories.jsonl")
    assert sorted(r.instance_id for r in records) == sorted(json.loads(line)["instance_id"] for line in lines)


def test_resuming_into_a_different_run_is_refused(data, tmp_path):
    run = tmp_path / "run"
    run_agent(ChunkStoreAgent(), run, data, [("squad", "train")], show_progress=False)
    with pytest.raises(Exception, match="different run"):
        run_agent(LongContextAgent(tokenizer="simple"), run, data, [("squad", "train")], show_progress=False)


def test_unknown_agent_and_bad_option_syntax(data, tmp_path, capsys):
    assert main(["run", "--agent", "chunk-stor", "--tasks", "squad", "--data", str(data), "--out", str(tmp_path)]) == 2
    assert "did you mean 'chunk-store'" in capsys.readouterr().err
    assert (
        main(
            [
                "run",
                "--agent",
                "chunk-store",
                "--agent-opt",
                "oops",
                "--tasks",
                "squad",
                "--data",
                str(data),
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "key=value" in capsys.readouterr().err


def test_agent_by_module_path(data, tmp_path):
    agent = agents.make_agent(f"{__name__}:FlakyAgent", {"fail_on": "none"})
    assert isinstance(agent, FlakyAgent) and agent.options == {"fail_on": "none"}
    summary = run_agent(agent, tmp_path / "run", data, [("squad", "train")], show_progress=False)
    assert summary.written == 2 and not summary.failed


def test_resume_accepts_changed_operational_options(data, tmp_path):
    class Served(ChunkStoreAgent):
        operational_options = frozenset({"base_url"})

        def __init__(self, **options):
            Agent.__init__(self, **options)

    run = tmp_path / "run"
    run_agent(Served(base_url="http://a", keep="1"), run, data, [("squad", "train")], show_progress=False)
    again = run_agent(Served(base_url="http://b", keep="1"), run, data, [("squad", "train")], show_progress=False)
    assert again.resumed == 2 and again.written == 0
    with pytest.raises(Exception, match="different run"):
        run_agent(Served(base_url="http://b", keep="2"), run, data, [("squad", "train")], show_progress=False)
