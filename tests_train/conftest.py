"""Fixtures of the training-stack tests (run by .venv-train/bin/pytest): the main suite's servers and
tiny model (tests/servers.py), a policy server that also answers /v1/completions, synthetic rows."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
pytest_plugins = ["servers"]  # tiny_model, scripted_server, ...
pytest.register_assert_rewrite("servers")

from servers import ScriptedServer  # noqa: E402

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


def careful_then_sloppy(prompt: str, seen: int) -> str:
    """Store the chunk's fact. When the same prompt comes again (another session at the same point):
    store it too, but add a placeholder episodic entry and delete an id that does not exist."""
    fact = chunk_of(prompt).split(". ")[0].rstrip(".") + "."
    store = tool_call("new_memory_insert", memory_type="semantic_memory", content=fact)
    if seen == 0:
        return "Storing it.\n" + store
    return (
        store
        + tool_call("new_memory_insert", memory_type="episodic_memory", content="placeholder")
        + tool_call("memory_delete", memory_type="semantic_memory", memory_id="s42")
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

    def start(
        policy: Callable[[str, int], str] = careful_then_sloppy, reply_fn: Callable | None = None
    ) -> PolicyServer:
        server = PolicyServer(reply_fn or (lambda body: memory_reader(body["messages"])), policy).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
