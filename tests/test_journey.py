"""The main job's checks and records: preflight before any agent call, resume and re-score refusals that
name what differs, provenance in scores.json and report.md, one --tokenizer, option validation, exit
codes, `agents list`, and a `--help` that loads no heavy library."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from servers import free_port

from benchmark.agents import BUILTIN, agent_class, available
from benchmark.agents.base import Agent, AgentOption, AgentOptionError, InstanceInfo, OptionReader, Session
from benchmark.agents.baselines import ChunkStoreSession
from benchmark.cli import main
from benchmark.journey import served_models
from benchmark.memory import read_memories
from tasks.build import build_task
from tasks.errors import TaskError
from tasks.manifest import load_built

pytestmark = pytest.mark.realdata


class CountingAgent(Agent):
    """chunk-store that counts the sessions it opens: a preflight failure must leave it at 0."""

    name = "counting"
    sessions = 0

    def new_session(self, instance: InstanceInfo) -> Session:
        CountingAgent.sessions += 1
        return ChunkStoreSession()


@pytest.fixture(scope="module")
def data(raw_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    build_task("squad", out, origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=1, show_progress=False)
    return out


def eval_args(data: Path, run: Path, base_url: str, *extra: str, agent: str = "chunk-store") -> list[str]:
    return [
        "eval",
        "--agent",
        agent,
        "--tasks",
        "squad",
        "--data",
        str(data),
        "--out",
        str(run),
        "--reader",
        "openai",
        "--model",
        "scripted",
        "--base-url",
        base_url,
        "--tokenizer",
        "simple",
        "--max-retries",
        "0",
        "--quiet",
        *extra,
    ]


def answer(text: str = "an answer"):
    return lambda request: text


# --------------------------------------------------------------------------------------------- preflight


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("reader backend not installed", 1, "the vllm backend needs vLLM"),
        ("no server", 1, "nothing answers at http://127.0.0.1:"),
        ("model not served", 1, "Server is pinned to"),
        ("data not built", 1, "not built in"),
        ("tokenizer offline", 1, "cannot fetch the tokenizer Qwen/Qwen3-32B"),
        ("hf model missing", 1, "cannot load model"),
    ],
)
def test_preflight_failures_stop_before_any_agent_call(
    case, code, message, data, tmp_path, scripted_server, serve_tiny, capsys
):
    CountingAgent.sessions = 0
    run = tmp_path / "run"
    server = scripted_server(answer())
    args = eval_args(data, run, server.base_url, agent=f"{__name__}:CountingAgent")
    if case == "reader backend not installed":
        args[args.index("openai")] = "vllm"
    elif case == "no server":
        args[args.index(server.base_url)] = f"http://127.0.0.1:{free_port()}/v1"
    elif case == "model not served":
        args[args.index(server.base_url)] = serve_tiny.base_url
        args[args.index("scripted")] = "Qwen/Qwen3-32B"
    elif case == "data not built":
        args[args.index(str(data))] = str(tmp_path / "empty")
    elif case == "tokenizer offline":
        args[args.index("simple")] = "qwen3"
    elif case == "hf model missing":
        args[args.index("openai")] = "hf"
        args[args.index("scripted")] = str(tmp_path / "no-such-model")
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err, err
    assert CountingAgent.sessions == 0 and not (run / "memories.jsonl").exists()
    assert server.count == 0  # the reader was asked nothing but, at most, its one-token probe


def test_preflight_asks_every_server_and_names_the_one_that_does_not_answer(data, tmp_path, scripted_server, capsys):
    servers = [scripted_server(answer()), scripted_server(answer())]
    both = eval_args(data, tmp_path / "run", servers[0].base_url, "--base-url", servers[1].base_url)
    assert main([*both, "--limit-questions", "1"]) == 0
    assert [s.probes for s in servers] == [1, 1]  # a request goes to one server: each was asked on its own
    CountingAgent.sessions = 0
    dead = f"http://127.0.0.1:{free_port()}/v1"
    args = eval_args(
        data, tmp_path / "other", servers[0].base_url, "--base-url", dead, agent=f"{__name__}:CountingAgent"
    )
    capsys.readouterr()
    assert main(args) == 1
    assert f"reader: nothing answers at {dead}" in capsys.readouterr().err
    assert CountingAgent.sessions == 0 and servers[0].probes == 2


def test_preflight_uses_the_key_named_by_api_key_env(data, tmp_path, scripted_server, monkeypatch, capsys):
    server = scripted_server(answer())
    monkeypatch.setenv("MY_READER_KEY", "sk-test-123")
    run = tmp_path / "run"
    assert main(eval_args(data, run, server.base_url, "--api-key-env", "MY_READER_KEY", "--limit-questions", "1")) == 0
    assert len(server.probe_headers) == 2  # the model list and the one-token request
    assert all(h["authorization"] == "Bearer sk-test-123" for h in server.probe_headers + server.headers)
    assert not any("sk-test-123" in (run / name).read_text() for name in ("scores.json", "config.json", "report.md"))
    monkeypatch.delenv("MY_READER_KEY")
    capsys.readouterr()
    assert main(eval_args(data, tmp_path / "other", server.base_url, "--api-key-env", "MY_READER_KEY")) == 1
    assert "--api-key-env MY_READER_KEY: that environment variable is not set" in capsys.readouterr().err
    assert server.probes == 1 and not (tmp_path / "other" / "memories.jsonl").exists()


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"data": [{"id": "m", "created": ' + b"7" * 5000 + b"}]}"],
    ids=["nested 100,000 levels", "an integer of 5,000 digits"],
)
def test_a_model_list_the_strict_reader_refuses_counts_as_none(body, data, tmp_path, scripted_server):
    """The preflight reads GET /models strictly: a reply that crashed json.loads (RecursionError, ValueError)
    is no list, and the one-token request decides."""
    server = scripted_server(answer())
    server.models_body = body
    assert served_models(server.base_url, "reader") is None
    assert main(eval_args(data, tmp_path / "run", server.base_url, "--limit-questions", "1")) == 0
    server.models_body = None
    assert served_models(server.base_url, "reader") == ["scripted"]


def test_score_checks_data_and_reader_before_any_question(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--agent", "chunk-store", "--tasks", "squad", "--data", str(data), "--out", str(run)]) == 0
    dead = f"http://127.0.0.1:{free_port()}/v1"
    score = ["score", str(run), "--reader", "openai", "--model", "m", "--base-url", dead, "--tokenizer", "simple"]
    assert main([*score, "--data", str(tmp_path / "empty")]) == 1
    assert f"not built in {tmp_path / 'empty'}: squad" in capsys.readouterr().err
    assert main([*score, "--data", str(data)]) == 1
    assert f"reader: nothing answers at {dead}" in capsys.readouterr().err
    assert not (run / "predictions.jsonl").exists()


def test_model_not_served_gives_the_servers_own_words(data, tmp_path, serve_tiny, capsys):
    run = tmp_path / "run"
    args = eval_args(data, run, serve_tiny.base_url)
    args[args.index("scripted")] = "Qwen/Qwen3-32B"
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"reader (openai model 'Qwen/Qwen3-32B' at {serve_tiny.base_url}) failed a one-token test request" in err
    assert f"HTTP 400: Server is pinned to '{serve_tiny.model}'; requested 'Qwen/Qwen3-32B'" in err


def test_probe_is_a_real_request_past_the_cache(data, tmp_path, scripted_server):
    server = scripted_server(answer(), answer_probes=False)
    run = tmp_path / "run"
    assert main(eval_args(data, run, server.base_url, "--limit-questions", "1")) == 0
    assert main(eval_args(data, run, server.base_url, "--limit-questions", "1")) == 0
    probes = [r for r in server.requests if r["max_tokens"] == 1]
    assert len(probes) == 2  # once per command, never answered from the response cache
    assert len(server.requests) == 3  # and the one question, asked once: the second run read it from the cache


class Failing(Agent):
    name = "failing"

    def new_session(self, instance: InstanceInfo) -> Session:
        raise RuntimeError("cannot open anything")


def test_eval_with_nothing_to_score_says_so(data, tmp_path, scripted_server, capsys):
    server = scripted_server(answer())
    run = tmp_path / "run"
    assert main(eval_args(data, run, server.base_url, agent=f"{__name__}:Failing")) == 1
    err = capsys.readouterr().err
    assert "failed: squad/" in err and "cannot open anything" in err
    assert f"nothing to score: every instance failed (see {run / 'errors.jsonl'})" in err
    assert server.count == 0 and not (run / "scores.json").exists()


# -------------------------------------------------------------------------------- resume and re-score


def test_resume_compares_normalised_options_and_names_the_difference(data, tmp_path, tiny_model, capsys):
    run = tmp_path / "run"
    base = ["run", "--tasks", "squad", "--data", str(data), "--out", str(run), "--tokenizer", "simple", "--quiet"]
    assert main([*base, "--agent", "long-context"]) == 0
    capsys.readouterr()
    assert main([*base, "--agent", "long-context", "--agent-opt", "tokens=28000"]) == 0  # the default, spelled out
    assert "resumed: 1 memories kept from before" in capsys.readouterr().err
    assert main([*base, "--agent", "long-context", "--agent-opt", "tokens=1000"]) == 2
    err = capsys.readouterr().err
    assert "this folder holds a different run (agent_identity.options.tokens: 28000 before, 1000 now)" in err
    assert main([*base, "--agent", "long-context", "--tokenizer", str(tiny_model)]) == 2
    # --tokenizer reaches the agent: a run of another tokenizer is another run
    assert f'agent_identity.options.tokenizer: "simple" before, "{tiny_model}" now' in capsys.readouterr().err


def test_rescore_with_other_settings_is_refused_without_force(data, tmp_path, scripted_server, capsys):
    server = scripted_server(answer())
    run = tmp_path / "run"
    assert main(eval_args(data, run, server.base_url, "--limit-questions", "2")) == 0
    score = ["score", str(run), "--data", str(data), "--reader", "openai", "--model", "scripted", "--quiet"]
    score += ["--tokenizer", "simple", "--limit-questions", "2"]
    moved = scripted_server(answer())  # the same model served at another address: the same settings
    assert main([*score, "--base-url", moved.base_url]) == 0
    assert moved.count == 0  # every answer from the cache
    before = {name: (run / name).read_bytes() for name in ("predictions.jsonl", "scores.json", "report.md")}
    capsys.readouterr()
    assert main([*score, "--base-url", server.base_url, "--top-k", "2"]) == 2
    err = capsys.readouterr().err
    assert "holds scores made with other settings (retriever.top_k: 20 before, 2 now)" in err and "--force" in err
    assert {name: (run / name).read_bytes() for name in before} == before
    assert main([*score, "--base-url", server.base_url, "--top-k", "2", "--force"]) == 0
    assert json.loads((run / "scores.json").read_text())["scorer"]["retriever"]["top_k"] == 2
    broken = json.loads((run / "scores.json").read_text())
    del broken["scorer"]["profile"]
    (run / "scores.json").write_text(json.dumps(broken))
    capsys.readouterr()
    assert main([*score, "--base-url", server.base_url, "--top-k", "2"]) == 1  # not compared: checked first
    assert f"{run / 'scores.json'}: 1 problem(s):\n  - field scorer.profile: Field required" in capsys.readouterr().err


def test_rescore_compares_the_profile_and_the_reader_template(data, tmp_path, scripted_server, capsys):
    server = scripted_server(answer())
    run = tmp_path / "run"
    assert main(eval_args(data, run, server.base_url, "--limit-questions", "1")) == 0
    score = ["score", str(run), "--data", str(data), "--reader", "openai", "--model", "scripted", "--quiet"]
    score += ["--tokenizer", "simple", "--limit-questions", "1", "--base-url", server.base_url]
    capsys.readouterr()
    assert main([*score, "--profile", "v1@1"]) == 2
    err = capsys.readouterr().err
    assert 'profile: "v1@2" before, "v1@1" now' in err and "--force" in err
    template = tmp_path / "mine.jinja"
    template.write_text("{% block system %}{{ core }}{% endblock %}{% block user %}{{ question }}{% endblock %}")
    assert main([*score, "--reader-template", str(template)]) == 2
    assert "template.sha256:" in capsys.readouterr().err
    assert main([*score, "--reader-template", str(template), "--force"]) == 0
    assert main([*score, "--reader-template", str(template)]) == 0  # the same settings again: no refusal
    template.write_text(template.read_text() + "\n")  # the same file name, changed in place
    assert main([*score, "--reader-template", str(template)]) == 2
    assert "template.sha256:" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- outputs


def test_scores_and_report_name_the_agent_and_the_memories(data, tmp_path, scripted_server):
    server = scripted_server(answer())
    run = tmp_path / "run"
    args = eval_args(data, run, server.base_url, "--limit-questions", "2", agent="long-context")
    assert main(args) == 0
    scores = json.loads((run / "scores.json").read_text())
    digest = hashlib.sha256((run / "memories.jsonl").read_bytes()).hexdigest()
    assert scores["run"] == {
        "memories_sha256": digest,
        "agent": {"name": "long-context", "options": {"tokenizer": "simple", "tokens": 28000}},
    }
    assert scores["scorer"]["questions_per_instance"] == 2
    assert scores["tasks"]["squad"]["questions"] == 2 and server.count == 2
    report = (run / "report.md").read_text()
    assert "Smoke run: at most 2 question(s) per instance" in report
    assert "- agent: long-context (tokenizer=simple, tokens=28000)" in report
    assert f"- memories.jsonl sha256: {digest}" in report


def test_report_lists_only_the_scored_splits_missing_instances(data, raw_dir, tmp_path, scripted_server):
    build_task(
        "squad", tmp_path / "two", origin="raw", raw_dir=raw_dir, tokenizer="simple", limit=2, show_progress=False
    )
    server = scripted_server(answer())
    run = tmp_path / "run"
    args = eval_args(tmp_path / "two", run, server.base_url, "--limit", "1", "--limit-questions", "1")
    assert main(args) == 0
    scores = json.loads((run / "scores.json").read_text())
    dataset, _ = load_built(tmp_path / "two", "squad")
    validation, train = dataset["validation"]["instance_id"], dataset["train"]["instance_id"]
    assert [r.instance_id for r in read_memories(run / "memories.jsonl")] == validation[:1]
    assert scores["tasks"]["squad"]["missing_instances"] == validation[1:]
    report = (run / "report.md").read_text()
    assert validation[1] in report and not any(i in report for i in train)


# ------------------------------------------------------------------------------- options and commands


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--top-k", "-5"], "argument --top-k: must be at least 1, got -5"),
        (["--timeout", "0"], "argument --timeout: must be a number above 0, got 0"),
        (["--timeout", "nan"], "argument --timeout: must be a number above 0, got nan"),
        (["--max-tokens", "-1"], "argument --max-tokens: must be at least 1, got -1"),
        (["--budget", "0"], "argument --budget: must be at least 1, got 0"),
        (["--concurrency", "0"], "argument --concurrency: must be at least 1, got 0"),
        (["--max-retries", "-1"], "argument --max-retries: must be at least 0, got -1"),
        (["--limit", "0"], "argument --limit: must be at least 1, got 0"),
        (["--limit-questions", "two"], "argument --limit-questions: expected a whole number, got 'two'"),
        (["--agent-concurrency", "0"], "argument --agent-concurrency: must be at least 1, got 0"),
    ],
)
def test_numeric_options_are_usage_errors(extra, message, tmp_path, capsys):
    args = ["eval", "--agent", "chunk-store", "--tasks", "squad", "--out", str(tmp_path / "run"), *extra]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "argument --seed: must be at least 0, got -1"),
        (str(2**32), f"argument --seed: must be at most {2**32 - 1}, got {2**32}"),
        ("9" * 5000, "argument --seed: expected a whole number, got '99999"),  # over int()'s 4,300 digits
    ],
)
def test_a_seed_numpy_cannot_take_is_a_usage_error(value, message, tmp_path, capsys):
    """numpy's RandomState (the train cap's draw) took only 0 to 2**32 - 1: -1 crashed a build."""
    with pytest.raises(SystemExit) as exit_:
        main(["tasks", "build", "squad", "--out", str(tmp_path / "data"), "--seed", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and len(err) < 1000, err
    with pytest.raises(TaskError, match="--seed must be between 0 and 2\\*\\*32 - 1, got -1"):
        build_task("squad", tmp_path / "data", seed=-1)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper than 64 levels"),  # RecursionError before
        ('{"enable_thinking": NaN}', "NaN is not a JSON value (field 'enable_thinking')"),
        ("[false]", "expected a JSON object such as"),
    ],
    ids=["nested 100,000 levels", "NaN", "a list"],
)
def test_a_json_option_is_read_strictly(value, message, tmp_path, capsys):
    args = ["export", "lm-eval", "--tasks", "squad", "--out", str(tmp_path / "out"), "--chat-template-kwargs", value]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument --chat-template-kwargs: {message}" in err and len(err) < 2000, err


def test_every_numeric_option_has_a_checked_type():
    """No command takes a bare int or float: each numeric option goes through tasks.argtypes."""
    from benchmark.cli import build_parser

    def walk(parser):
        for action in parser._actions:
            if action.choices and isinstance(action.choices, dict):
                for sub in action.choices.values():
                    yield from walk(sub)
            else:
                yield parser.prog, action

    bare = [f"{prog} {a.option_strings}" for prog, a in walk(build_parser()) if a.type in (int, float)]
    assert bare == []


def test_unknown_names_are_usage_errors(data, tmp_path, capsys):
    base = ["run", "--data", str(data), "--out", str(tmp_path / "run"), "--quiet"]
    assert main([*base, "--agent", "chunk-store", "--tasks", "sqaud"]) == 2
    assert "did you mean 'squad'" in capsys.readouterr().err
    assert main([*base, "--agent", "chunk-store"]) == 2
    assert "name the tasks to run" in capsys.readouterr().err
    assert main([*base, "--agent", "long-context", "--agent-opt", "tokens=0", "--tasks", "squad"]) == 2
    assert "option tokens=0 must be at least 1" in capsys.readouterr().err


def test_agents_list_shows_each_agent_with_its_options(capsys):
    assert main(["agents", "list", "--json"]) == 0
    listed = {a["name"]: a for a in json.loads(capsys.readouterr().out)}
    assert {"chunk-store", "long-context", "http", "memalpha"} <= set(listed)
    assert all(listed[name].get("options") is not None for name in BUILTIN)  # every built-in declares them
    defaults = {name: {o["name"]: o["default"] for o in listed[name]["options"]} for name in BUILTIN}
    assert defaults["memagent"]["memory_tokens"] == "1024" and defaults["mem1"]["state_tag"] == "think"
    assert defaults["memagent"]["model"] == "BytedTsinghua-SIA/RL-MemoryAgent-14B"
    assert defaults["mem0"]["backend"] == "openai" and defaults["mem0"]["embedding_dims"] == "1536"
    assert "cache" not in defaults["langmem"] and defaults["langmem"]["kinds"] == "semantic,episodic,core"
    options = {o["name"]: o["default"] for o in listed["long-context"]["options"]}
    assert options == {"tokens": "28000", "tokenizer": "qwen3"}
    assert {o["name"] for o in listed["memalpha"]["options"]} >= {"backend", "model", "format", "tokenizer", "cache"}
    assert listed["http"]["options"][0] == {
        "name": "base_url",
        "default": None,
        "help": "the agent server, e.g. http://127.0.0.1:8765 (required)",
    }
    assert main(["agents", "list"]) == 0
    text = capsys.readouterr().out
    assert "long-context  (benchmark.agents.baselines:LongContextAgent)" in text and "28000" in text


class Undocumented(Agent):
    """An agent that declares no options."""

    name = "undocumented"

    def new_session(self, instance: InstanceInfo) -> Session:
        return ChunkStoreSession()


def test_agents_list_says_when_an_agent_declares_no_options(monkeypatch, capsys):
    monkeypatch.setitem(BUILTIN, "undocumented", f"{__name__}:Undocumented")
    assert main(["agents", "list", "--json"]) == 0
    listed = {a["name"]: a for a in json.loads(capsys.readouterr().out)}
    assert listed["undocumented"]["options"] is None and listed["chunk-store"]["options"] == []
    assert main(["agents", "list"]) == 0
    text = capsys.readouterr().out
    assert "undocumented  (" in text and "options: not declared by the agent (see its documentation)" in text


def test_option_reader_keeps_every_value_parsed_with_its_default():
    docs = (AgentOption("k", "3", "a count"), AgentOption("mode", "fast", "a choice"))
    opts = OptionReader({"t": "0.5", "on": "yes", "name": "x"}, "a", docs=docs)
    assert opts.integer("k", low=1) == 3 and opts.choice("mode", None, ("fast", "slow")) == "fast"
    assert opts.number("t", 1.0, 0.0) == 0.5 and opts.flag("on", False) is True and opts.get("name") == "x"
    assert opts.finish() == {"k": 3, "mode": "fast", "t": 0.5, "on": True, "name": "x"}
    with pytest.raises(AgentOptionError, match="option k=0 must be at least 1"):
        OptionReader({"k": "0"}, "a", docs=docs).integer("k", low=1)


def test_documented_defaults_are_the_defaults_agents_use(tmp_path):
    from reference_agent.agent import MemAlphaAgent

    class NoReader:
        def describe(self):
            return {"backend": "none", "model": "none"}

    built = {  # every option left to its default, but the tokenizer (the default needs the hub)
        "chunk-store": agent_class("chunk-store")(),
        "long-context": agent_class("long-context")(tokenizer="simple"),
        "memalpha": MemAlphaAgent(NoReader(), tokenizer="simple"),
        "memagent": agent_class("memagent")(NoReader()),
        "mem1": agent_class("mem1")(NoReader()),
    }
    if importlib.util.find_spec("mem0"):  # the reader options are left out when a reader is handed in
        built["mem0"] = agent_class("mem0")(NoReader(), embedding_base_url="http://127.0.0.1:9/v1")
    if importlib.util.find_spec("langmem"):
        built["langmem"] = agent_class("langmem")(base_url="http://127.0.0.1:9/v1")
    checked = 0
    for name, agent in built.items():
        resolved = agent.describe()["options"]
        for doc in type(agent).option_docs:
            if doc.name in resolved and doc.default is not None and doc.name != "tokenizer":
                value = resolved[doc.name]
                as_typed = str(value).lower() if isinstance(value, bool) else type(value)(doc.default)
                assert as_typed == (doc.default if isinstance(value, bool) else value), (name, doc.name)
                checked += 1
        agent.close()
    assert set(available()) >= set(built) and checked >= 25, checked


def test_help_and_version_load_no_heavy_library():
    code = (
        "import sys\n"
        "from benchmark.cli import main\n"
        "for argv in (['--help'], ['--version'], ['eval', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('datasets', 'numpy', 'scipy', 'pyarrow', 'pandas', 'openai', 'torch', 'transformers', 'jinja2')\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"
    assert "memalpha-bench" in done.stdout
