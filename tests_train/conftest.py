"""Fixtures of the training-stack tests (run by .venv-train/bin/pytest): the main suite's servers and
tiny model (tests/servers.py), a policy server that also answers /v1/completions, synthetic rows, one
real rollout through verl's workers shared by the tests that read its rows, and per-test timeouts."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
pytest_plugins = ["servers"]  # tiny_model, scripted_server, ...
pytest.register_assert_rewrite("servers")

from servers import ScriptedServer  # noqa: E402

from reference_agent.training_data import training_row, write_parquet  # noqa: E402
from reference_agent.verl_recipe.compose import RECIPE_CONFIG_DIR, compose_recipe  # noqa: E402
from reference_agent.verl_recipe.local_rollout import Row, rollout_batch  # noqa: E402
from reference_agent.verl_recipe.openai_policy import OpenAICompletionsPolicy  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FACTS = ("The Eiffel Tower is in Paris.", "Hamlet was written by Shakespeare.", "Tokyo is the capital of Japan.")
QUESTIONS = [
    {"question_id": "q0", "question": "Where is the Eiffel Tower?", "answers": ["Paris"]},
    {"question_id": "q1", "question": "Who wrote Hamlet?", "answers": ["Shakespeare"]},
    {"question_id": "q2", "question": "What is the capital of Japan?", "answers": ["Tokyo"]},
    {"question_id": "q3", "question": "Which river flows through London?", "answers": ["Thames"]},
]
CHUNKS = [f"{fact} Some more words around it." for fact in FACTS]

# Per-test limits (pytest-timeout; each covers the test's fixtures too): this suite has no outer
# wall clock. Generous for a loaded 2-core machine; a hung test fails alone, and fixtures' cleanup
# (the Ray cluster's shutdown) still runs on the timeout's exception.
DEFAULT_TIMEOUT_S = 120
RAY_TIMEOUT_S = 420  # tests that start a local Ray cluster (the rollout fixture)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None:
            limit = RAY_TIMEOUT_S if "rollout" in getattr(item, "fixturenames", ()) else DEFAULT_TIMEOUT_S
            item.add_marker(pytest.mark.timeout(limit))


def instance_row(instance_id: str = "squad-x1") -> dict[str, Any]:
    """A task-schema row: three chunks, one fact each; the fourth question is answered by none."""
    return {
        "instance_id": instance_id,
        "task": "squad",
        "competency": "AR",
        "chunks": list(CHUNKS),
        "questions": [dict(q) for q in QUESTIONS],
        "context_tokens": 30,
        "metadata": "{}",
    }


def tool_call(name: str, **arguments: Any) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def chunk_of(prompt: str) -> str:
    return prompt.split("<new_chunk>", 1)[1].split("</new_chunk>", 1)[0].strip()


def careful_or_lazy(prompt: str, seen: int) -> str:
    """The first rollout to see a prompt stores the chunk's fact. A rollout that comes later to the same
    prompt, or whose memory already holds the placeholder, is lazy: it writes a placeholder episodic
    entry and deletes an id that does not exist, and stays lazy to the end. So a group of rollouts
    has one careful rollout and lazy ones, and no response of one kind contains the other's."""
    if seen == 0 and "placeholder" not in prompt:
        fact = chunk_of(prompt).split(". ")[0].rstrip(".") + "."
        return "Storing it.\n" + tool_call("new_memory_insert", memory_type="semantic_memory", content=fact)
    return tool_call("new_memory_insert", memory_type="episodic_memory", content="placeholder") + tool_call(
        "memory_delete", memory_type="semantic_memory", memory_id="s42"
    )


def memory_reader(messages: list[dict[str, str]]) -> str:
    system, user = messages[0]["content"], messages[-1]["content"]
    if "Verdict" in system:  # the content judge
        return "Verdict: invalid" if "placeholder" in user else "Verdict: valid"
    for q in QUESTIONS:
        if user.endswith(q["question"]):
            gold = q["answers"][0]
            return f"It is {gold}." if gold in system else "The memory does not say."
    return "The memory does not say."


class PolicyServer(ScriptedServer):
    """The scripted chat server (reader, judge) plus /v1/completions for the policy:
    `policy(prompt, times_seen_before) -> text`."""

    def __init__(self, reply_fn: Callable, policy: Callable[[str, int], str]):
        self.policy = policy
        self.prompts: Counter[str] = Counter()
        self.completions: list[dict[str, Any]] = []
        super().__init__(reply_fn)

    def _handler_class(self):
        base, server = super()._handler_class(), self

        class Handler(base):
            def do_POST(self) -> None:
                if self.path != "/v1/completions":
                    return super().do_POST()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with server._lock:
                    server.completions.append(body)
                    seen = server.prompts[body["prompt"]]
                    server.prompts[body["prompt"]] += 1
                text = server.policy(body["prompt"], seen)
                choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                self._json(
                    200,
                    {
                        "id": "cmpl",
                        "object": "text_completion",
                        "created": 0,
                        "model": body.get("model", "scripted"),
                        "choices": [choice],
                    },
                )

        return Handler


@pytest.fixture(scope="session")
def raw_dir() -> Path:
    """The real raw samples, as in the main suite (skipped only when $MEMALPHA_RAW_DIR is unset)."""
    value = os.environ.get("MEMALPHA_RAW_DIR")
    if not value:
        pytest.skip("MEMALPHA_RAW_DIR is not set")
    assert Path(value).is_dir(), f"MEMALPHA_RAW_DIR={value} is not a folder"
    return Path(value)


@pytest.fixture
def policy_server() -> Iterator[Callable[..., PolicyServer]]:
    started: list[PolicyServer] = []

    def start(policy: Callable[[str, int], str] = careful_or_lazy, reply_fn: Callable | None = None) -> PolicyServer:
        server = PolicyServer(reply_fn or (lambda body: memory_reader(body["messages"])), policy).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass
class RolloutRun:
    """What the shared rollout left: its rows, and the server that played policy, reader and judge."""

    rows: list[Row]
    server: PolicyServer
    cache: Path


@pytest.fixture(scope="session")
def rollout(tmp_path_factory, tiny_model) -> Iterator[RolloutRun]:
    """One instance rolled out three times (`careful_or_lazy`: one careful rollout, two lazy ones that
    end with equal memories) through verl's workers on a local Ray cluster, scored by two reward
    workers that share the reader service and its response cache."""
    out = tmp_path_factory.mktemp("rollout")
    write_parquet([training_row(instance_row(), "train", 0, "sha")], out / "train.parquet")
    server = PolicyServer(lambda body: memory_reader(body["messages"]), careful_or_lazy).start()
    try:
        cfg = compose_recipe(
            [
                f"data.train_files={out}/train.parquet",
                f"data.val_files={out}/train.parquet",
                "data.train_batch_size=1",
                "data.dataloader_num_workers=0",
                "actor_rollout_ref.rollout.n=3",
                f"actor_rollout_ref.model.path={tiny_model}",
                f"actor_rollout_ref.rollout.agent.agent_loop_config_path={RECIPE_CONFIG_DIR}/agent_loop.yaml",
                "actor_rollout_ref.rollout.agent.num_workers=1",
                "reward.num_workers=2",
                f"memalpha.reader.base_url={server.base_url}",
                "memalpha.reader.model=scripted",
                "memalpha.tokenizer=simple",
                f"memalpha.cache={out}/reward_cache.sqlite",
                "memalpha.batch.window_s=0.2",
            ],
            check=False,
        )
        policy = OpenAICompletionsPolicy(server.base_url, "scripted", str(tiny_model), max_tokens=2048)
        rows = rollout_batch(cfg, policy)
    finally:
        server.stop()
    yield RolloutRun(rows, server, out / "reward_cache.sqlite")
