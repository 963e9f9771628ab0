"""The scorer's steps in process, where the end-to-end tests cannot tell a near miss: exactly top-k entries
of each memory type reach the prompt, in BM25 rank order; the judge is asked by each question's type (and
the abstention id); non-judged questions are scored by the task's metric on the raw reply."""

from __future__ import annotations

import pytest

from benchmark.memory import Memory, MemoryEntry, MemoryRecord
from benchmark.profiles import ScorerConfig, get_profile
from benchmark.prompting import ReaderPrompt
from benchmark.readers.base import ReaderResponse
from benchmark.retrieval import MemoryIndex
from benchmark.scoring import TaskData, judge_request, prepare, score_items
from tasks.tokenization import get_counter

COUNTER = get_counter("simple")
TOPICS = ["apples", "rivers", "castles", "engines", "violins", "glaciers"]
SEMANTIC = [f"fact {i}: the {TOPICS[i % 6]} of region {i} are {'famous' if i % 4 else 'rare'}" for i in range(30)]
EPISODIC = [f"on day {i} the user visited {TOPICS[(i * 5) % 6]} near town {i % 7}" for i in range(30)]
QUESTIONS = [
    {"question_id": "q0", "question": "Which apples and castles are famous?", "answers": ["fact 2"]},
    {"question_id": "q1", "question": "When did the user visit glaciers near town 3?", "answers": ["day 3"]},
]


def prepared(task: str, questions: list[dict], top_k: int, profile: str = "v1", budget: int = 100_000):
    memory = Memory(
        "core notes",
        tuple(MemoryEntry(f"s{i}", t) for i, t in enumerate(SEMANTIC)),
        tuple(MemoryEntry(f"e{i}", t, f"2024-01-{i % 28 + 1:02d}") for i, t in enumerate(EPISODIC)),
    )
    record = MemoryRecord("i0", task, memory)
    tasks = {task: TaskData({"i0": {"instance_id": "i0", "questions": questions}}, "0" * 64, {"i0": "validation"})}
    config = ScorerConfig(top_k=top_k, budget_tokens=budget)
    profile_ = get_profile(profile)
    return prepare([record], tasks, config, ReaderPrompt.for_profile(profile_), COUNTER, profile_)


@pytest.mark.parametrize("top_k", [1, 5, 12])
def test_exactly_top_k_entries_of_each_type_in_rank_order(top_k):
    items = prepared("squad", QUESTIONS, top_k)
    profile = get_profile("v1")
    for item, question in zip(items, QUESTIONS, strict=True):
        sem = MemoryIndex(SEMANTIC, epsilon=profile.retrieval.epsilon).search(question["question"], top_k)
        epi = MemoryIndex(EPISODIC, epsilon=profile.retrieval.epsilon).search(question["question"], top_k)
        assert item.retrieved == {"semantic": [f"s{i}" for i in sem], "episodic": [f"e{i}" for i in epi]}
        system = item.request.messages[0][1]
        assert sum(text in system for text in SEMANTIC) == top_k  # what the reader sees
        assert sum(text in system for text in EPISODIC) == top_k
    assert items[1].retrieved["episodic"][0] == "e3"  # the visit near town 3 to the glaciers ranks first


def test_a_budget_shrinks_k_for_both_types_alike():
    """Here 10 entries of each type need about 500 tokens: 400 keep 7 of each, 300 keep 3."""
    for budget, k in ((300, 3), (400, 7), (500, 10)):
        (item,) = prepared("squad", QUESTIONS[:1], 10, budget=budget)
        assert len(item.retrieved["semantic"]) == len(item.retrieved["episodic"]) == k
        assert item.retrieved["semantic"] == prepared("squad", QUESTIONS[:1], k)[0].retrieved["semantic"]
        assert not item.core_truncated


JUDGED = [
    {"question_id": "t1", "question": "How many days passed?", "answers": ["3"], "question_type": "temporal-reasoning"},
    {
        "question_id": "k1",
        "question": "Where does she live now?",
        "answers": ["Oslo"],
        "question_type": "knowledge-update",
    },
    {
        "question_id": "a1_abs",
        "question": "What is his cat's name?",
        "answers": ["x"],
        "question_type": "multi-session",
    },
    {"question_id": "p1", "question": "Plain?", "answers": ["yes"], "question_type": None},
]


def test_the_judge_is_asked_by_each_questions_type():
    items = prepared("lme_train", JUDGED, 3)
    for item in items:
        item.response = ReaderResponse.from_raw("<think>hm</think>Three days, in Oslo.", 1, 1)
    config = get_profile("v1").defaults
    users = [judge_request(item, config).messages[-1][1] for item in items]
    assert "off-by-one" in users[0] and "older information" in users[1] and "cannot answer" in users[2]
    assert len(set(users)) == 4
    from benchmark.metrics import judge_prompt

    for item, user in zip(items, users, strict=True):
        q = item.question
        expected = judge_prompt(
            q["question"], q["answers"], item.response.raw_text, q["question_type"], q["question_id"]
        )
        assert user == expected[-1]["content"]
    assert all(judge_request(item, config).params == config.judge_sampling for item in items)


def test_non_judged_questions_are_scored_by_the_tasks_metric_and_judged_ones_left_to_the_judge():
    items = prepared("squad", QUESTIONS, 2) + prepared("lme_train", JUDGED[:1], 2)
    replies = ["It is fact 2.", "I cannot tell.", "3 days"]
    for item, reply in zip(items, replies, strict=True):
        item.response = ReaderResponse.from_raw(reply, 1, 1)
    score_items(items)
    assert [it.score for it in items] == [1.0, 0.0, None]
