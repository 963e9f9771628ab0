"""Mem-α's rewards on constructed rollouts, against numbers computed by hand from the formula.

Token counts use the `simple` counter (one token per word or punctuation mark), so they can be
counted by eye: "The Eiffel Tower is in Paris." is 7 tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pytest
from servers import Reply

from benchmark.cache import CachedReader, ResponseCache
from benchmark.memory import Memory, MemoryEntry
from benchmark.readers.base import OnResult, ReaderError, ReaderRequest, ReaderResponse
from benchmark.readers.openai_reader import OpenAIReader
from reference_agent.content_judge import content_judge_prompt, parse_content_verdict
from reference_agent.environment import MemoryEnvironment, ToolResult
from reference_agent.rewards import (
    CallRecord,
    RewardConfig,
    RewardScorer,
    Rollout,
    compression_reward,
    content_targets,
    format_reward,
)
from reference_agent.toolcalls import ToolCall
from tasks.tokenization import get_counter

COUNTER = get_counter("simple")
QUESTIONS = [
    {"question_id": "q0", "question": "Where is the Eiffel Tower?", "answers": ["Paris"]},
    {"question_id": "q1", "question": "Who wrote Hamlet?", "answers": ["Shakespeare"]},
    {"question_id": "q2", "question": "What is the capital of Japan?", "answers": ["Tokyo"]},
    {"question_id": "q3", "question": "Which river flows through London?", "answers": ["Thames"]},
]
CHUNKS = [" ".join(["word"] * 30), " ".join(["word"] * 30), " ".join(["word"] * 20)]  # 80 tokens
FACTS = ("The Eiffel Tower is in Paris.", "Hamlet was written by Shakespeare.", "Tokyo is the capital of Japan.")
MEMORY_A = Memory("", tuple(MemoryEntry(f"s{i}", t) for i, t in enumerate(FACTS)), ())  # 7 + 6 + 7 = 20 tokens


def insert(kind: str, content: str, status: str = "ok") -> CallRecord:
    return CallRecord("new_memory_insert", {"memory_type": f"{kind}_memory", "content": content}, status)


STEPS_A = [
    # r2 = 3/3; r4 = [judged valid, judged invalid, delete 0]
    [
        insert("semantic", FACTS[0]),
        insert("episodic", "placeholder"),
        CallRecord("memory_delete", {"memory_type": "semantic_memory", "memory_id": "s9"}, "ok"),
    ],
    [],  # no call
    # r2: skipped, error, unreadable; r4 = [valid, valid (failed call, still judged), unreadable 0]
    [
        insert("semantic", FACTS[1], "skipped"),
        CallRecord(
            "memory_update",
            {"memory_type": "semantic", "memory_id": "s7", "new_content": FACTS[2]},
            "error",
        ),
        CallRecord("", None, "error"),
    ],
]


def rollout(memory: Memory, steps, instance: str = "squad-1") -> Rollout:
    return Rollout("squad", instance, QUESTIONS, CHUNKS, memory, steps)


class ScriptedReader:
    """An in-process Reader: `reply(request)` answers each request; `fail_if(request)` makes the whole
    call raise ReaderError after the requests before it were answered. Records every call."""

    def __init__(
        self, reply: Callable[[ReaderRequest], str], fail_if: Callable[[ReaderRequest], bool] = lambda r: False
    ):
        self.reply, self.fail_if = reply, fail_if
        self.calls: list[int] = []

    def describe(self) -> dict:
        return {"backend": "scripted", "model": "scripted"}

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        self.calls.append(len(requests))
        out = []
        for i, request in enumerate(requests):
            if self.fail_if(request):
                raise ReaderError(f"scripted failure on request {i}")
            response = ReaderResponse.from_raw(self.reply(request), 0, 0)
            if on_result:
                on_result(i, response)
            out.append(response)
        return out


def memory_reader(request: ReaderRequest) -> str:
    """Answers with the gold when the memory shown in the system message holds it."""
    system, user = request.messages[0][1], request.messages[-1][1]
    for q in QUESTIONS:
        if user.endswith(q["question"]):
            gold = q["answers"][0]
            return f"It is {gold}." if gold in system else "The memory does not say."
    raise AssertionError(f"unexpected question: {user}")


def content_judge(request: ReaderRequest) -> str:
    return "Looks fine.\nVerdict: invalid" if "placeholder" in request.messages[-1][1] else "Verdict: valid"


def scorer(config: RewardConfig | None = None, **readers) -> tuple[RewardScorer, ScriptedReader, ScriptedReader]:
    reader = readers.get("reader") or ScriptedReader(memory_reader)
    judge = readers.get("judge") or ScriptedReader(content_judge)
    return RewardScorer(reader, COUNTER, judge=judge, config=config), reader, judge


# -- the formulas, call by call -------------------------------------------------------------------


def test_r2_share_of_executed_calls_with_its_quirks():
    calls = [CallRecord("x", {}, s) for s in ("ok", "skipped", "error", "ok")]
    assert format_reward(calls, RewardConfig()) == 0.5  # a skipped duplicate counts as a failure
    assert format_reward(calls, RewardConfig(r2_skipped_is_failure=False)) == 0.75
    assert format_reward([], RewardConfig()) == 0.0  # no call scores 0
    assert format_reward([], RewardConfig(r2_no_calls=1.0)) == 1.0


def test_r3_unclipped_by_default():
    config = RewardConfig()
    assert compression_reward(20, 80, config) == 0.75
    assert compression_reward(150, 100, config) == -0.5  # a memory larger than its input
    assert compression_reward(150, 100, RewardConfig(clip_r3=True)) == 0.0
    assert compression_reward(20, 80, RewardConfig(clip_r3=True)) == 0.75  # inside [0, 1]: unchanged
    with pytest.raises(ValueError, match="positive input length"):
        compression_reward(1, 0, config)
    assert compression_reward(0, 1, config) == 1.0  # a one-token input is an input


def test_r4_targets_per_call():
    calls = [
        insert("semantic", "  a fact  "),
        CallRecord("memory_update", {"memory_type": "Core Memory", "new_content": "the user"}, "ok"),
        CallRecord("memory_delete", {"memory_type": "semantic", "memory_id": "s0"}, "ok"),
        CallRecord("memory_search", {"memory_type": "semantic", "content": "x"}, "error"),  # unknown tool
        CallRecord("new_memory_insert", None, "error"),  # unreadable arguments
        insert("procedural", "x"),  # unknown memory type
        insert("semantic", "   "),  # empty content
        CallRecord("memory_update", {"memory_type": "episodic", "memory_id": "e9", "new_content": "e"}, "error"),
    ]
    assert content_targets(calls, RewardConfig()) == [
        ("semantic", "a fact"),
        ("core", "the user"),
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        ("episodic", "e"),  # the original judges the content of a failed call too
    ]
    excluded = content_targets(calls, RewardConfig(r4_deletes="exclude", r4_judge_failed_calls=False))
    assert excluded[2] is None and excluded[7] == 0.0


def test_call_record_round_trip_from_the_environment():
    env = MemoryEnvironment(COUNTER)
    call = ToolCall("new_memory_insert", {"memory_type": "semantic_memory", "content": "x"}, "{}")
    first, again = env.execute(call), env.execute(call)
    records = [CallRecord.of(call, first), CallRecord.of(call, again)]
    assert [r.status for r in records] == ["ok", "skipped"]
    assert (records[0].tool, records[0].arguments) == (
        "new_memory_insert",
        {"memory_type": "semantic_memory", "content": "x"},
    )
    assert [CallRecord.from_json(r.to_json()) for r in records] == records
    assert CallRecord.of(ToolCall("x", None, "", "bad"), ToolResult(False, "error", "bad")).arguments is None


def test_content_judge_prompt_and_verdicts():
    prompt = content_judge_prompt()
    system, user = (text for _, text in prompt.messages("episodic", "On 2024-03-02 Ann moved to Lyon."))
    assert "episodic memory entry" in system and "when it happened" in system
    assert "Core memory is one short paragraph" in prompt.messages("core", "x")[0][1]
    assert "On 2024-03-02 Ann moved to Lyon." in user
    assert len({prompt.messages(t, "x")[0][1] for t in ("core", "semantic", "episodic")}) == 3
    with pytest.raises(ValueError):
        prompt.messages("procedural", "x")
    assert parse_content_verdict("It names the time.\nVerdict: valid") == 1.0
    assert parse_content_verdict("Verdict: valid?\n...on reflection\nVerdict: **invalid**") == 0.0
    assert parse_content_verdict("<think>Verdict: invalid</think>Verdict: Valid") == 1.0
    assert parse_content_verdict("It is a valid entry.") == 0.0  # no verdict line


def test_config_options_are_checked():
    with pytest.raises(ValueError, match="r4_deletes"):
        RewardConfig(r4_deletes="ignore")
    with pytest.raises(ValueError, match="r1_threshold"):
        RewardConfig(r1_threshold=2.0)
    with pytest.raises(ValueError, match="r1_threshold"):
        RewardConfig(r1_threshold=-0.1)
    assert RewardConfig(r1_threshold=1.0).r1_threshold == 1.0 and RewardConfig(r1_threshold=0.0).r1_threshold == 0.0


# -- whole rollouts ------------------------------------------------------------------------------


def test_rewards_of_two_rollouts_by_hand():
    scoring, reader, judge = scorer()
    a, b = scoring.score([rollout(MEMORY_A, STEPS_A), rollout(Memory(), [[], [], []])])
    # A: r1 = 3 of 4 questions; r3 = 1 - 20/80; R(t) = r1 + 0.05 r3 + r2(t) + 0.1 r4(t)
    assert (a.r1, a.r3, a.memory_tokens, a.input_tokens) == (0.75, 0.75, 20, 80)
    assert a.r2 == (1.0, 0.0, 0.0)
    assert a.r4 == pytest.approx((1 / 3, 0.0, 2 / 3))
    assert a.trajectory == pytest.approx(0.7875)
    assert a.totals() == pytest.approx((0.7875 + 1 + 0.1 / 3, 0.7875, 0.7875 + 0.2 / 3))
    # B: an empty memory answers nothing and compresses perfectly
    assert (b.r1, b.r3, b.r2, b.r4) == (0.0, 1.0, (0.0,) * 3, (0.0,) * 3)
    assert b.totals() == pytest.approx((0.05,) * 3)
    assert not (a.r1_failed or a.r4_failed or b.r1_failed or b.r4_failed)
    # one reader batch for every question of every rollout, one judge batch for every write
    assert reader.calls == [8] and judge.calls == [4]


@pytest.mark.parametrize(
    ("config", "r2", "r4"),
    [
        (RewardConfig(r2_skipped_is_failure=False), (1.0, 0.0, 1 / 3), (1 / 3, 0.0, 2 / 3)),
        (RewardConfig(r4_deletes="exclude"), (1.0, 0.0, 0.0), (1 / 2, 0.0, 2 / 3)),
        (RewardConfig(r4_judge_failed_calls=False), (1.0, 0.0, 0.0), (1 / 3, 0.0, 1 / 3)),
        (RewardConfig(r2_no_calls=1.0, r4_no_calls=1.0), (1.0, 1.0, 0.0), (1 / 3, 1.0, 2 / 3)),
    ],
)
def test_each_quirk_option_on_the_same_rollout(config, r2, r4):
    (a,) = scorer(config)[0].score([rollout(MEMORY_A, STEPS_A)])
    assert a.r2 == pytest.approx(r2) and a.r4 == pytest.approx(r4)
    assert a.totals() == pytest.approx(tuple(0.7875 + x + 0.1 * y for x, y in zip(r2, r4, strict=True)))


def test_weights_threshold_and_clipping_change_the_shared_part():
    big = Memory(" ".join(["core"] * 100), (), ())  # 100 tokens for 80 of input: r3 = -0.25
    (a,) = scorer(RewardConfig(beta=0.4, gamma=1.0))[0].score([rollout(MEMORY_A, STEPS_A)])
    assert a.trajectory == pytest.approx(0.75 + 0.4 * 0.75)
    assert a.steps == pytest.approx((1 + 1 / 3, 0.0, 2 / 3))
    (b,) = scorer()[0].score([rollout(big, [[]])])
    assert b.r3 == -0.25 and b.trajectory == pytest.approx(-0.0125)
    (c,) = scorer(RewardConfig(clip_r3=True, r1_threshold=0.5))[0].score([rollout(big, [[]])])
    assert c.r3 == 0.0 and c.trajectory == 0.0  # r1 = 0 < 0.5 -> 0
    (d,) = scorer(RewardConfig(r1_threshold=0.7))[0].score([rollout(MEMORY_A, [[]])])
    assert d.trajectory == pytest.approx(1 + 0.05 * 0.75)  # r1 = 0.75 >= 0.7 -> 1


def test_the_r1_threshold_is_inclusive_at_its_boundary():
    """r1 = 0.75 (3 of 4): a threshold of exactly 0.75 gives 1; one just above gives 0."""
    (at,) = scorer(RewardConfig(r1_threshold=0.75))[0].score([rollout(MEMORY_A, [[]])])
    assert at.r1 == 0.75 and at.trajectory == pytest.approx(1 + 0.05 * 0.75)
    (above,) = scorer(RewardConfig(r1_threshold=0.7501))[0].score([rollout(MEMORY_A, [[]])])
    assert above.r1 == 0.75 and above.trajectory == pytest.approx(0.05 * 0.75)
    (none,) = scorer(RewardConfig(r1_threshold=0.0))[0].score([rollout(Memory(), [[]])])
    assert none.r1 == 0.0 and none.trajectory == pytest.approx(1 + 0.05)  # 0 >= 0: every r1 passes


def test_input_tokens_are_counted_per_task_and_instance():
    """Rollouts of different instances (and of the same instance id in another task) have other inputs:
    each gets its own input length, however the scorer's cache of lengths is filled."""
    short = Rollout("squad", "i1", QUESTIONS, [" ".join(["word"] * 10)], MEMORY_A, [[]])
    long = Rollout("squad", "i2", QUESTIONS, CHUNKS, MEMORY_A, [[]])
    other_task = Rollout("hotpotqa", "i1", QUESTIONS, [" ".join(["word"] * 40)], MEMORY_A, [[]])
    scoring = scorer()[0]
    results = scoring.score([short, long, other_task, short])
    assert [r.input_tokens for r in results] == [10, 80, 40, 10]
    assert [r.r3 for r in results] == pytest.approx([1 - 20 / 10, 1 - 20 / 80, 1 - 20 / 40, 1 - 20 / 10])
    assert [r.input_tokens for r in scoring.score([long, short])] == [80, 10]  # from the cache, per instance


def test_a_failing_reader_zeroes_only_its_rollout(caplog):
    poisoned = Memory("POISON", MEMORY_A.semantic, ())
    reader = ScriptedReader(memory_reader, fail_if=lambda r: "POISON" in r.messages[0][1])
    judge = ScriptedReader(content_judge, fail_if=lambda r: "POISON" in r.messages[-1][1])
    steps_c = [[insert("semantic", "fine fact")], [insert("semantic", "POISON fact")]]
    scoring = scorer(reader=reader, judge=judge)[0]
    with caplog.at_level(logging.WARNING, logger="reference_agent.rewards"):
        a, c = scoring.score([rollout(MEMORY_A, STEPS_A), rollout(poisoned, steps_c, "squad-2")])
    assert a.r1 == 0.75 and not a.r1_failed and a.r4 == pytest.approx((1 / 3, 0.0, 2 / 3))
    assert c.r1 == 0.0 and c.r1_failed
    assert c.r4_failed and c.r4 == (1.0, 0.0)  # the write the judge never answered counts invalid
    assert reader.calls == [8, 4]  # the batch (A answered before it failed), then C on its own
    assert judge.calls == [6, 1]  # then only C's unanswered write: A's verdicts and C's first one were in
    assert [r.getMessage() for r in caplog.records] == [  # the stage, the size, the rollout and the cause
        "r1 reader: the batch of 8 requests failed (scripted failure on request 4); retrying rollout by rollout",
        "r1 reader: rollout 1 of squad/squad-2 failed after retries and scores 0: scripted failure on request 0",
        "r4 judge: the batch of 6 requests failed (scripted failure on request 5); retrying rollout by rollout",
        "r4 judge: rollout 1 of squad/squad-2 failed after retries and scores 0: scripted failure on request 0",
    ]


def test_real_openai_reader_retries_then_scores_zero(scripted_server, caplog):
    def reply(body):
        system = body["messages"][0]["content"]
        if "POISON" in system:
            return Reply(status=500)
        request = ReaderRequest.chat(body["messages"])
        return memory_reader(request)

    server = scripted_server(reply)
    reader = OpenAIReader("scripted", server.base_url, concurrency=1, max_retries=1, backoff=0.01)
    scoring = RewardScorer(reader, COUNTER, judge=ScriptedReader(content_judge))
    poisoned = Memory("POISON", (), ())
    with caplog.at_level(logging.WARNING, logger="reference_agent.rewards"):
        a, c = scoring.score([rollout(MEMORY_A, [[]]), rollout(poisoned, [[]], "squad-2")])
    assert (a.r1, c.r1, c.r1_failed) == (0.75, 0.0, True)
    poisoned_requests = [b for b in server.requests if "POISON" in b["messages"][0]["content"]]
    assert len(poisoned_requests) >= 4  # two tries in the batch, two more for the rollout on its own
    assert any("scores 0" in r.getMessage() for r in caplog.records)


def test_llm_judged_questions_go_through_the_judge():
    questions = [{"question_id": "q0", "question": "Where did Ann move?", "answers": ["Lyon"]}]
    memory = Memory("Ann moved to Lyon in March.", (), ())
    reader = ScriptedReader(lambda r: "She moved to Lyon.")
    judge = ScriptedReader(lambda r: "yes" if "Lyon" in r.messages[-1][1] else "no")
    (a,) = RewardScorer(reader, COUNTER, judge=judge).score(
        [Rollout("lme_train", "l1", questions, CHUNKS, memory, [[]])]
    )
    assert a.r1 == 1.0 and judge.calls == [1]
    failing = ScriptedReader(lambda r: "yes", fail_if=lambda r: True)
    (b,) = RewardScorer(reader, COUNTER, judge=failing).score(
        [Rollout("lme_train", "l1", questions, CHUNKS, memory, [[]])]
    )
    assert b.r1 == 0.0 and b.r1_failed


def test_a_failing_llm_judge_zeroes_only_its_rollout_and_keeps_the_verdicts_it_gave(caplog):
    questions = [{"question_id": "q0", "question": "Where did they move?", "answers": ["Lyon"]}]
    reader = ScriptedReader(lambda r: "POISON" if any("Bob" in m[1] for m in r.messages) else "Lyon.")
    judge = ScriptedReader(lambda r: "yes", fail_if=lambda r: "POISON" in r.messages[-1][1])
    rollouts = [
        Rollout("lme_train", "l1", questions, CHUNKS, Memory("Ann moved to Lyon.", (), ()), [[]]),
        Rollout("lme_train", "l2", questions, CHUNKS, Memory("Bob moved to Lyon.", (), ()), [[]]),
    ]
    with caplog.at_level(logging.WARNING, logger="reference_agent.rewards"):
        a, b = RewardScorer(reader, COUNTER, judge=judge).score(rollouts)
    assert (a.r1, a.r1_failed, b.r1, b.r1_failed) == (1.0, False, 0.0, True)
    assert judge.calls == [2, 1]  # the batch (l1 judged before it failed), then l2 alone: l1 not asked again
    assert [r.getMessage() for r in caplog.records] == [
        "r1 judge: the batch of 2 requests failed (scripted failure on request 1); retrying rollout by rollout",
        "r1 judge: rollout 1 of lme_train/l2 failed after retries and scores 0: scripted failure on request 0",
    ]


def test_equal_memories_cost_one_reader_call_each(tmp_path):
    inner = ScriptedReader(memory_reader)
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        cached = CachedReader(inner, cache)
        scoring = RewardScorer(cached, COUNTER, judge=ScriptedReader(content_judge))
        first = scoring.score([rollout(MEMORY_A, [[]]), rollout(MEMORY_A, [[]])])
        again = scoring.score([rollout(MEMORY_A, [[]])])
    assert inner.calls == [4] and (cached.misses, cached.hits) == (4, 4)
    assert [r.r1 for r in first + again] == [0.75] * 3


def test_info_for_verl_is_scalars_and_a_json_string():
    (a,) = scorer()[0].score([rollout(MEMORY_A, STEPS_A)])
    info = a.info()
    steps = info.pop("step_rewards")
    assert info == pytest.approx(
        {
            "r1": 0.75,
            "r3": 0.75,
            "r2_mean": 1 / 3,
            "r4_mean": (1 / 3 + 0.0 + 2 / 3) / 3,
            "memory_tokens": 20.0,
            "input_tokens": 80.0,
            "r1_failed": 0.0,
            "r4_failed": 0.0,
        }
    )
    assert all(isinstance(v, float) for v in info.values())
    import json

    assert json.loads(steps) == pytest.approx([1 + 0.1 / 3, 0.0, 0.2 / 3])
    (b,) = scorer()[0].score([rollout(MEMORY_A, [])])  # no chunk step at all: the means are 0
    assert (b.info()["r2_mean"], b.info()["r4_mean"], json.loads(b.info()["step_rewards"])) == (0.0, 0.0, [])


def test_the_content_judge_is_asked_with_its_own_sampling():
    from benchmark.readers.base import SamplingParams

    judge = ScriptedReader(content_judge)
    seen: list[ReaderRequest] = []
    original = judge.generate
    judge.generate = lambda requests, on_result=None: seen.extend(requests) or original(requests, on_result)
    sampling = SamplingParams(max_tokens=7, temperature=0.3)
    RewardScorer(ScriptedReader(memory_reader), COUNTER, judge=judge, content_sampling=sampling).score(
        [rollout(MEMORY_A, STEPS_A)]
    )
    assert len(seen) == 4 and all(r.params == sampling for r in seen)
    RewardScorer(ScriptedReader(memory_reader), COUNTER, judge=judge).score([rollout(MEMORY_A, STEPS_A)])
    assert all(r.params == SamplingParams(max_tokens=256) for r in seen[4:]) and len(seen) == 8


def test_r1_scores_as_the_original_reward_by_default_and_as_v1_on_request():
    """A nested box and a "yes" with "nothing" in it: the original reward scores both 0; v1 reads them."""
    label = [{"question_id": "q0", "question": "Which label has this sentence?", "answers": ["3"]}]
    judged = [{"question_id": "q1", "question": "Where did Ann move?", "answers": ["Lyon"]}]
    reader = ScriptedReader(lambda r: "\\boxed{\\text{3}}" if "label" in r.messages[-1][1] else "To Lyon.")
    asked: list[str] = []
    judge = ScriptedReader(lambda r: asked.append(r.messages[-1][1]) or "Yes, nothing is missing.")
    rollouts = [
        Rollout("pubmed_rct", "p1", label, CHUNKS, Memory(), [[]]),
        Rollout("lme_train", "l1", judged, CHUNKS, Memory(), [[]]),
    ]
    faithful = RewardScorer(reader, COUNTER, judge=judge)
    ours = RewardScorer(reader, COUNTER, judge=judge, profile="v1")
    assert faithful.profile.id == "memalpha-train@1" and faithful.scorer_config.sampling.temperature == 0.7
    assert [r.r1 for r in faithful.score(rollouts)] == [0.0, 0.0]
    assert [r.r1 for r in ours.score(rollouts)] == [1.0, 1.0]
    # the judge was asked in each profile's own wording: one rubric prompt, then v1's rule for the question
    assert "Rubric: Lyon" in asked[0] and "Expected answer: Lyon" in asked[1]
