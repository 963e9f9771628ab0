"""The vllm reader, against an in-process engine with the `vllm.LLM.chat` surface the reader uses
(vLLM itself needs a GPU and cannot be installed here, so the real engine is not run by these tests):
settings groups, slices reported and cached as each completes, a crash keeping every finished slice,
one failing prompt isolated, replies cut while reasoning, an engine that fails every request."""

from __future__ import annotations

import sys
import types

import pytest
from reader_helpers import TOOLS, ask

from benchmark.cache import CachedReader, ResponseCache
from benchmark.readers import ReaderError, ReaderRequest, RequestsFailed, SamplingParams, make_reader
from benchmark.readers.base import SYSTEMATIC_AFTER
from benchmark.readers.vllm_reader import VLLMReader


class Crash(BaseException):
    """A kill in the middle of an engine call (not an Exception: nothing may catch it)."""


class FakeEngine:
    """`vllm.LLM` as the reader uses it: `chat(conversations, sampling_params, use_tqdm,
    chat_template_kwargs, tools)` returning one RequestOutput-shaped object per conversation.

    It answers the last message in upper case, one token per word, cut at `max_tokens` words with
    finish_reason "length"; a prompt over `max_prompt_words` raises ValueError, as vLLM does for a
    prompt longer than the model's context; `crash_on_call` raises Crash on that call (1-based);
    `think` makes every reply an unfinished reasoning block.
    """

    max_prompt_words = 50
    crash_on_call: int | None = None
    think = False
    log: list[tuple[str, object]]

    def __init__(self, model: str, **kwargs):
        self.model, self.kwargs = model, kwargs
        self.log = []
        self.calls = 0

    def chat(self, conversations, sampling_params, use_tqdm, chat_template_kwargs, tools):
        self.calls += 1
        if self.crash_on_call == self.calls:
            raise Crash
        outputs = []
        for conversation, params in zip(conversations, sampling_params, strict=True):
            words = " ".join(m["content"] for m in conversation).split()
            if len(words) > self.max_prompt_words:
                raise ValueError(f"The prompt ({len(words)} words) is longer than the maximum model length")
            answer = ("<think> " if self.think else "") + conversation[-1]["content"].upper()
            tokens = answer.split()
            cut = tokens[: params["max_tokens"]]
            completion = types.SimpleNamespace(
                text=" ".join(cut),
                token_ids=list(range(len(cut))),
                finish_reason="length" if len(cut) < len(tokens) else "stop",
            )
            outputs.append(types.SimpleNamespace(prompt_token_ids=list(range(len(words))), outputs=[completion]))
        self.log.append(("chat", [c[-1]["content"] for c in conversations]))  # calls that returned
        return outputs


@pytest.fixture
def engine(monkeypatch) -> type[FakeEngine]:
    """A fake `vllm` module whose LLM is a fresh FakeEngine subclass (its settings per test)."""

    class Engine(FakeEngine):
        pass

    module = types.SimpleNamespace(LLM=Engine, SamplingParams=lambda **kw: kw, __version__="0.0-fake")
    monkeypatch.setitem(sys.modules, "vllm", module)
    return Engine


def questions(n: int) -> list[ReaderRequest]:
    return [ask(f"question {i}") for i in range(n)]


def test_vllm_backend_without_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(ReaderError, match=r"pip install memalpha-bench\[vllm\] on a GPU machine"):
        make_reader("vllm", "Qwen/Qwen3-32B")


def test_request_fields_name_our_settings_as_vllm_and_the_openai_api_do():
    """vLLM's `SamplingParams` takes these keywords (and leaves stop strings out of the output, as the
    OpenAI API does)."""
    params = SamplingParams(max_tokens=64, temperature=0.7, top_p=0.8, stop=("\n",))
    assert params.request_fields() == {
        "max_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.8,
        "stop": ["\n"],
    }
    assert "stop" not in SamplingParams().request_fields()


def test_each_thinking_and_tools_setting_is_its_own_engine_call(monkeypatch):
    calls = []

    class Engine(FakeEngine):
        def chat(self, conversations, sampling_params, use_tqdm, chat_template_kwargs, tools):
            calls.append((conversations, sampling_params, chat_template_kwargs, tools))
            return super().chat(conversations, sampling_params, use_tqdm, chat_template_kwargs, tools)

    monkeypatch.setitem(
        sys.modules, "vllm", types.SimpleNamespace(LLM=Engine, SamplingParams=lambda **kw: kw, __version__="0.0-fake")
    )
    reader = VLLMReader("some/model", dtype="bfloat16")
    assert reader.describe() == {
        "backend": "vllm",
        "model": "some/model",
        "vllm_version": "0.0-fake",
        "engine": {"dtype": "bfloat16"},
    }
    with_tools = ReaderRequest.chat([{"role": "user", "content": "dddd"}], tools=TOOLS)
    requests = [ask("a", max_tokens=3), ask("bb", enable_thinking=True), ask("ccc", top_p=0.5), with_tools]
    seen: list[int] = []
    responses = reader.generate(requests, on_result=lambda i, r: seen.append(i))
    assert [r.text for r in responses] == ["A", "BB", "CCC", "DDDD"]
    assert [(r.prompt_tokens, r.completion_tokens) for r in responses] == [(3, 1), (3, 1), (3, 1), (1, 1)]
    assert all(r.tool_calls is None for r in responses)  # calls stay in the text
    assert sorted(seen) == [0, 1, 2, 3]
    assert [(kwargs["enable_thinking"], tools is not None) for _, _, kwargs, tools in calls] == [
        (False, False),
        (True, False),
        (False, True),
    ]
    no_thinking_conversations, no_thinking_params, _, no_tools = calls[0]
    assert [c[-1]["content"] for c in no_thinking_conversations] == ["a", "ccc"]
    assert [p["max_tokens"] for p in no_thinking_params] == [3, 512]
    assert [p["top_p"] for p in no_thinking_params] == [1.0, 0.5]
    assert no_tools is None
    tools_conversations, _, _, tools = calls[2]  # a request with tools is its own chat call
    assert [c[-1]["content"] for c in tools_conversations] == ["dddd"]
    assert tools == TOOLS


def test_work_goes_in_slices_and_each_slice_is_reported_as_it_completes(engine):
    reader = VLLMReader("m", slice_size=4)
    reader.generate(questions(10), on_result=lambda i, r: reader._llm.log.append(("answer", i)))
    log = reader._llm.log
    chats = [entry for entry in log if entry[0] == "chat"]
    assert [len(batch) for _, batch in chats] == [4, 4, 2]
    # every answer of a slice is reported before the next slice goes to the engine
    assert log == [
        chats[0],
        *[("answer", i) for i in range(4)],
        chats[1],
        *[("answer", i) for i in range(4, 8)],
        chats[2],
        ("answer", 8),
        ("answer", 9),
    ]


def test_a_crash_keeps_every_finished_slice_in_the_cache(engine, tmp_path):
    requests = questions(10)
    engine.crash_on_call = 3  # 8 of 10 answered when the run dies
    with ResponseCache(tmp_path / "c.sqlite") as cache, pytest.raises(Crash):
        CachedReader(VLLMReader("m", slice_size=4), cache).generate(requests)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        assert len(cache) == 8
        engine.crash_on_call = None
        resumed = CachedReader(VLLMReader("m", slice_size=4), cache)
        responses = resumed.generate(requests)
        assert [r.text for r in responses] == [f"QUESTION {i}" for i in range(10)]
        assert (resumed.hits, resumed.misses) == (8, 2)
        assert [batch for _, batch in resumed.reader._llm.log] == [["question 8", "question 9"]]


def test_a_prompt_the_engine_refuses_fails_alone(engine):
    engine.max_prompt_words = 6
    requests = questions(9)
    requests[5] = ask("question five is far too long for this engine")
    reader = VLLMReader("m", slice_size=8)
    seen: dict[int, str] = {}
    with pytest.raises(RequestsFailed) as info:
        reader.generate(requests, on_result=lambda i, r: seen.__setitem__(i, r.text))
    assert list(info.value.failures) == [5]
    assert "ValueError" in info.value.failures[5] and "longer than the maximum model length" in info.value.failures[5]
    assert sorted(seen) == [0, 1, 2, 3, 4, 6, 7, 8]
    # the slice of 8 failed and was halved down to the failing request: 0-3 | 4-7 failed: 4-5 failed:
    # 4 | 5 failed alone; 6-7 | then the second slice, 8 (only the calls that returned are logged)
    assert [len(batch) for _, batch in reader._llm.log] == [4, 1, 2, 1]


def test_a_reply_cut_while_reasoning_is_a_failure_not_an_answer(engine, tmp_path):
    engine.think = True
    requests = [ask("one two three", max_tokens=2), ask("x")]
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        reader = CachedReader(VLLMReader("m"), cache)
        with pytest.raises(RequestsFailed) as info:
            reader.generate(requests)
        assert "while still reasoning" in info.value.failures[0]
        assert len(cache) == 1  # only the reply the engine ended on its own ("<think> X") was stored


def test_an_engine_failing_every_request_the_same_way_stops_early(engine):
    engine.max_prompt_words = 0
    reader = VLLMReader("m", slice_size=SYSTEMATIC_AFTER)
    with pytest.raises(ReaderError, match="all failed the same way") as info:
        reader.generate(questions(SYSTEMATIC_AFTER * 8))
    assert not isinstance(info.value, RequestsFailed)
    assert reader._llm.calls < 2 * SYSTEMATIC_AFTER  # the first slice only, halved to its single requests
