"""The scoring pipeline's use of memory and time: each memory counted once, prompts built a window at a
time and dropped after it, failures gathered over windows, phase timings."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import pytest

from benchmark.cache import CachedReader, ResponseCache
from benchmark.memory import Memory, MemoryEntry, MemoryRecord
from benchmark.profiles import get_profile
from benchmark.prompting import ReaderPrompt
from benchmark.readers.base import OnResult, ReaderError, ReaderRequest, ReaderResponse, RequestsFailed
from benchmark.scoring import TaskData, aggregate, answer, judge, prepare, prompt_window
from benchmark.timings import Timings
from tasks.tokenization import SimpleCounter

PROFILE = get_profile("v1")


class CountingCounter(SimpleCounter):
    """The simple counter, remembering every text it was asked to count."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def count(self, text: str) -> int:
        self.seen.append(text)
        return super().count(text)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        self.seen.extend(texts)
        return super().count_many(texts)


class RecordingReader:
    """Answers "Paris" at once, except to the questions in `fail`; per call, records how many requests came
    and how many of `items` had had a prompt built by then, and keeps only weak references to requests."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.fail = fail
        self.items: list = []
        self.calls: list[int] = []
        self.built: list[int] = []
        self.requests: list[weakref.ref] = []

    def describe(self) -> dict:
        return {"backend": "recording", "model": "m"}

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        self.calls.append(len(requests))
        self.built.append(sum(it.shown is not None for it in self.items))
        self.requests += [weakref.ref(r) for r in requests]
        out, failures = [], {}
        for i, request in enumerate(requests):
            if request.messages[-1][1] in self.fail:
                failures[i] = "scripted failure"
                continue
            response = ReaderResponse.from_raw("Paris", 30, 1)
            out.append(response)
            if on_result is not None:
                on_result(i, response)
        if failures:
            raise RequestsFailed(failures, len(requests))
        return out


def memory(instance: int) -> Memory:
    semantic = [MemoryEntry(f"s{i}", f"Fact {i} of instance {instance}: city {i} has {i} bridges.") for i in range(30)]
    episodic = [MemoryEntry(f"e{i}", f"Saw city {i} on trip {instance}.", f"2024-01-{i + 1:02d}") for i in range(28)]
    return Memory(f"Instance {instance} core.", tuple(semantic), tuple(episodic))


def task_data(instances: int, questions: int, task: str = "squad") -> tuple[list[MemoryRecord], dict[str, TaskData]]:
    records = [MemoryRecord(f"i{n}", task, memory(n)) for n in range(instances)]
    rows = {
        f"i{n}": {
            "instance_id": f"i{n}",
            "questions": [
                {"question_id": f"q{k}", "question": f"How many bridges has city {k} (instance {n})?", "answers": ["3"]}
                for k in range(questions)
            ],
        }
        for n in range(instances)
    }
    return records, {task: TaskData(rows, "hash", dict.fromkeys(rows, "test"))}


def prepared(instances: int = 3, questions: int = 4, counter=None):
    records, tasks = task_data(instances, questions)
    counter = counter or SimpleCounter()
    items = prepare(records, tasks, PROFILE.defaults, ReaderPrompt.for_profile(PROFILE), counter, PROFILE)
    return records, tasks, items


def test_prompts_are_built_a_window_at_a_time_and_dropped_after_it():
    _, _, items = prepared(3, 4)
    reader = RecordingReader()
    reader.items = items
    assert all(it.shown is None for it in items)  # retrieval only: no prompt yet
    answer(items, reader, None, window=5)
    assert reader.calls == [5, 5, 2]
    assert reader.built == [5, 10, 12]  # at each call, only the windows sent so far had prompts
    assert all(ref() is None for ref in reader.requests)  # no prompt outlived its window
    assert all(it.response is not None and it.response.text == "Paris" for it in items)
    assert all(it.retrieved["semantic"] and it.core_truncated is False for it in items)


def test_failures_of_every_window_come_back_together_with_run_indices():
    _, _, items = prepared(3, 4)
    failing = {items[1].question["question"], items[9].question["question"]}
    reader = RecordingReader(frozenset(failing))
    seen: list[int] = []
    with pytest.raises(RequestsFailed) as raised:
        answer(items, reader, lambda i, r: seen.append(i), window=4)
    assert raised.value.failures == {1: "scripted failure", 9: "scripted failure"}
    assert raised.value.total == 12 and reader.calls == [4, 4, 4]  # the window after a failure was still sent
    assert seen == [i for i in range(12) if i not in (1, 9)]
    assert [i for i, it in enumerate(items) if it.response is None] == [1, 9]


def test_a_cached_reader_in_windows_stores_each_answer_and_a_second_run_asks_nothing(tmp_path):
    _, _, items = prepared(2, 5)
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        first = RecordingReader()
        answer(items, CachedReader(first, cache), None, window=3)
        assert first.calls == [3, 3, 3, 1] and len(cache) == 10
        again = RecordingReader(frozenset(it.question["question"] for it in items))  # would fail every request
        _, _, fresh = prepared(2, 5)
        answer(fresh, CachedReader(again, cache), None, window=3)
        assert again.calls == [] and all(it.response.cached for it in fresh)


def test_each_memory_is_counted_once_and_its_size_is_reused():
    counter = CountingCounter()
    records, tasks, items = prepared(3, 4, counter)
    for item in items:
        item.request  # noqa: B018 - every prompt built, as the reader phase does
        item.response = ReaderResponse.from_raw("Paris", 30, 1)
        item.score = 1.0
    extra = MemoryRecord("i9", "squad", memory(9))  # an instance without questions: counted by aggregate
    tasks["squad"].rows["i9"] = {"instance_id": "i9", "questions": []}
    tasks["squad"].split_of["i9"] = "test"
    scores = aggregate(items, [*records, extra], tasks, counter, PROFILE)
    contents = [e.content for r in records for e in (*r.memory.semantic, *r.memory.episodic)]
    assert all(counter.seen.count(text) == 1 for text in contents)  # neither per prompt nor again for sizes
    sizes = [sum(SimpleCounter().count_many(r.memory.texts())) for r in [*records, extra]]
    assert scores["tasks"]["squad"]["memory_tokens_mean"] == pytest.approx(sum(sizes) / len(sizes))


def test_judge_requests_go_in_windows_and_verdicts_land_as_they_arrive():
    records, tasks = task_data(1, 5, task="longmemeval_s")  # judged under v1
    items = prepare(records, tasks, PROFILE.defaults, ReaderPrompt.for_profile(PROFILE), SimpleCounter(), PROFILE)
    for item in items:
        item.response = ReaderResponse.from_raw("Paris", 30, 1)

    class Judge(RecordingReader):
        def generate(self, requests, on_result=None):
            self.calls.append(len(requests))
            self.built.append(sum(it.score is not None for it in items))
            for i in range(len(requests)):
                on_result(i, ReaderResponse.from_raw("yes" if i % 2 == 0 else "no", 10, 1))
            return []

    verdicts: list[int] = []
    judge_reader = Judge()
    judge(items, judge_reader, PROFILE.defaults, lambda i, r: verdicts.append(i), window=2)
    assert judge_reader.calls == [2, 2, 1] and judge_reader.built == [0, 2, 4]
    assert [it.score for it in items] == [1.0, 0.0, 1.0, 0.0, 1.0] and verdicts == [0, 1, 2, 3, 4]


def test_the_window_follows_the_concurrency():
    assert prompt_window(1) == prompt_window(16) == 512
    assert prompt_window(256) == 1024


def test_timings_count_an_inner_phase_once(monkeypatch):
    from benchmark import timings

    clock = iter([0.0, 0.0, 1.0, 10.0, 3.0, 30.0, 7.0, 70.0, 8.0, 80.0, 9.0, 90.0]).__next__
    ticks = {"wall": [], "cpu": []}

    def wall() -> float:
        ticks["wall"].append(None)
        return clock()

    def cpu() -> float:
        ticks["cpu"].append(None)
        return clock()

    monkeypatch.setattr(timings.time, "perf_counter", wall)
    monkeypatch.setattr(timings.time, "process_time", cpu)
    t = Timings()
    with t.phase("reader"):  # wall 0, cpu 0
        with t.phase("retrieval and prompts"):  # wall 1, cpu 10; ends at wall 3, cpu 30
            pass
    # the reader phase ends at wall 7, cpu 70: 7 s and 70 s in all, of which 2 s and 20 s were prompts
    with t.phase("metrics"):  # 8 / 80 to 9 / 90
        pass
    rows = {name: (wall, cpu) for name, wall, cpu in t.rows()}
    assert rows["reader"] == (5.0, 50.0) and rows["retrieval and prompts"] == (2.0, 20.0)
    assert rows["metrics"] == (1.0, 10.0) and rows["load"] == (0.0, 0.0) and rows["total"] == (8.0, 80.0)
    assert list(rows)[:5] == ["load", "retrieval and prompts", "reader", "judge", "metrics"]


def test_a_reader_error_stops_at_its_window():
    _, _, items = prepared(2, 4)

    class Dead(RecordingReader):
        def generate(self, requests, on_result=None):
            self.calls.append(len(requests))
            raise ReaderError("server gone")

    dead = Dead()
    with pytest.raises(ReaderError, match="server gone"):
        answer(items, dead, None, window=3)
    assert dead.calls == [3]  # nothing more is sent
