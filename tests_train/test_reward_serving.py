"""Reward serving: identical reader requests from batches that overlap in time are answered once.

Two reward batches asking the same prompts at the same time both miss the response cache (neither
has its answer yet); `SingleFlightReader` sends each distinct prompt once and hands the answer to
both. The overlap is made certain here with events, not timing: the inner reader holds the first
batch until the second has joined it.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmark.cache import CachedReader, ResponseCache
from benchmark.readers.base import ReaderError, ReaderRequest, ReaderResponse, SamplingParams
from reference_agent.verl_recipe.settings import RecipeSettings
from reference_agent.verl_recipe.shared_reader import SingleFlightReader


def request(text: str) -> ReaderRequest:
    return ReaderRequest((("user", text),), SamplingParams(max_tokens=8))


class HeldReader:
    """Answers `answer <text>`; holds its first call until `release` is set; counts what it was asked."""

    def __init__(self, fail: set[str] = frozenset()):
        self.asked: Counter[str] = Counter()
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail = fail
        self._calls = 0
        self._lock = threading.Lock()

    def describe(self) -> dict:
        return {"backend": "held", "model": "m"}

    def generate(self, requests, on_result=None):
        with self._lock:
            self._calls += 1
            first = self._calls == 1
        if first:
            self.started.set()
            assert self.release.wait(10)
        out = []
        for i, r in enumerate(requests):
            text = r.messages[0][1]
            self.asked[text] += 1
            if text in self.fail:
                raise ReaderError(f"no answer for {text}")
            response = ReaderResponse.from_raw(f"answer {text}", 1, 1)
            out.append(response)
            if on_result is not None:
                on_result(i, response)
        return out


def test_overlapping_batches_ask_each_distinct_prompt_once():
    inner = HeldReader()
    reader = SingleFlightReader(inner)
    first = [request(t) for t in ("a", "b", "c", "a")]
    second = [request(t) for t in ("b", "c", "d")]
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(reader.generate, first)
        assert inner.started.wait(10)
        reported: list[tuple[int, str]] = []
        two = pool.submit(reader.generate, second, lambda i, r: reported.append((i, r.text)))
        while reader.joined < 2:  # b and c are under way in the first batch: the second waits for them
            threading.Event().wait(0.01)
        inner.release.set()
        assert [r.text for r in one.result(10)] == ["answer a", "answer b", "answer c", "answer a"]
        assert [r.text for r in two.result(10)] == ["answer b", "answer c", "answer d"]
    assert inner.asked == Counter({"a": 1, "b": 1, "c": 1, "d": 1})
    assert sorted(reported) == [(0, "answer b"), (1, "answer c"), (2, "answer d")]
    assert (reader.sent, reader.joined) == (4, 2)


def test_a_failed_request_fails_every_batch_waiting_for_it_and_is_asked_again_later():
    inner = HeldReader(fail={"b"})
    reader = SingleFlightReader(inner)
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(reader.generate, [request("a"), request("b")])
        assert inner.started.wait(10)
        two = pool.submit(reader.generate, [request("b")])
        while reader.joined < 1:
            threading.Event().wait(0.01)
        inner.release.set()
        for future in (one, two):
            with pytest.raises(ReaderError, match="b"):
                future.result(10)
    inner.fail.clear()
    assert [r.text for r in reader.generate([request("b")])] == ["answer b"]  # nothing stuck in flight
    assert inner.asked["b"] == 2


def test_settings_put_the_cache_under_single_flight(tmp_path):
    settings = RecipeSettings.from_mapping(
        {"reader": {"base_url": "http://127.0.0.1:9/v1", "model": "r"}, "cache": str(tmp_path / "c.sqlite")}
    )
    reader, judge = settings.readers()
    assert judge is reader  # no separate judge: one reader, one single-flight map
    assert isinstance(reader, SingleFlightReader) and isinstance(reader.reader, CachedReader)
    assert isinstance(reader.reader.cache, ResponseCache) and reader.reader.cache.path == tmp_path / "c.sqlite"
    settings = RecipeSettings.from_mapping({"reader": {"base_url": "http://x/v1"}, "judge": {"model": "j"}})
    reader, judge = settings.readers()
    assert judge is not reader and judge.describe()["model"] == "j" and not isinstance(judge.reader, CachedReader)
