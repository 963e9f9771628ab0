"""Reader backends: the openai reader against a real `transformers serve` and a scripted server
(retries, timeouts, concurrency), the hf reader on a tiny model, the vllm reader's guard and mapping."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import types

import pytest
from servers import Reply

from benchmark.readers import ReaderError, ReaderRequest, SamplingParams, make_reader
from benchmark.readers.hf_reader import cut_at_stop
from benchmark.readers.openai_reader import MAX_BACKOFF_S, OpenAIReader, backoff_delay
from benchmark.readers.vllm_reader import VLLMReader, vllm_sampling_kwargs

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "remember",
            "description": "Store one fact.",
            "parameters": {"type": "object", "properties": {"fact": {"type": "string"}}, "required": ["fact"]},
        },
    }
]


def ask(question: str, **params) -> ReaderRequest:
    return ReaderRequest.chat(
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": question}],
        SamplingParams(**params),
    )


def scripted_reader(server, **kwargs) -> OpenAIReader:
    options = {"timeout": 5.0, "max_retries": 3, "backoff": 0.01, **kwargs}
    return OpenAIReader("scripted-model", server.base_url, **options)


# --- openai reader against a real server -----------------------------------------------------------


def test_openai_reader_answers_through_transformers_serve(serve_tiny):
    reader = make_reader("openai", serve_tiny.model, base_url=serve_tiny.base_url, concurrency=4)
    questions = ["Where does Alice live?", "Who wrote the book?", "When was Bob born?", "What is the river?"]
    seen: list[int] = []
    responses = reader.generate([ask(q, max_tokens=6) for q in questions], on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2, 3]
    assert len(responses) == 4
    for response in responses:
        assert response.prompt_tokens > 0
        assert 0 < response.completion_tokens <= 6
        assert response.cached is False


def test_thinking_switch_reaches_the_chat_template(serve_tiny):
    """With thinking off the template pre-fills an empty <think> block, so the prompt is longer."""
    reader = make_reader("openai", serve_tiny.model, base_url=serve_tiny.base_url)
    off, on = reader.generate(
        [ask("Where is Paris?", max_tokens=2), ask("Where is Paris?", max_tokens=2, enable_thinking=True)]
    )
    assert off.prompt_tokens > on.prompt_tokens


def test_tools_reach_the_served_chat_template(serve_tiny):
    """`tools=` is sent and rendered: the template lists the schemas, so the prompt is longer."""
    reader = make_reader("openai", serve_tiny.model, base_url=serve_tiny.base_url)
    messages = [{"role": "user", "content": "Remember that Paris is in France."}]
    plain, tooled = reader.generate(
        [
            ReaderRequest.chat(messages, SamplingParams(max_tokens=2)),
            ReaderRequest.chat(messages, SamplingParams(max_tokens=2), tools=TOOLS),
        ]
    )
    assert tooled.prompt_tokens > plain.prompt_tokens + 20


# --- openai reader against the scripted server -----------------------------------------------------


def test_request_carries_model_messages_and_settings(scripted_server):
    server = scripted_server(lambda body: "ok")
    request = ask("Where?", max_tokens=7, temperature=0.5, top_p=0.9, stop=("\n\n",))
    scripted_reader(server).generate([request, ask("Plain?")])
    by_question = {body["messages"][1]["content"]: body for body in server.requests}
    body = by_question["Where?"]
    assert body["model"] == "scripted-model"
    assert body["messages"] == request.message_dicts()
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (7, 0.5, 0.9)
    assert body["stop"] == ["\n\n"]
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "stop" not in by_question["Plain?"]


def test_think_block_is_removed_from_the_answer_and_usage_is_read(scripted_server):
    server = scripted_server(lambda body: "<think>\nthe river is long\n</think>\n\nThe Seine")
    [response] = scripted_reader(server).generate([ask("Which river?")])
    assert response.text == "The Seine"
    assert response.raw_text.startswith("<think>")
    assert response.prompt_tokens == 4  # "Answer briefly." + "Which river?" in scripted words
    assert response.completion_tokens == 8


def test_missing_usage_counts_zero_tokens(scripted_server):
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    }
    server = scripted_server(lambda request: Reply(body=body))
    [response] = scripted_reader(server).generate([ask("Hello?")])
    assert (response.text, response.prompt_tokens, response.completion_tokens) == ("hi", 0, 0)


def test_tools_are_sent_and_parsed_calls_read_back(scripted_server):
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "remember", "arguments": '{"fact": "a"}'}},
        {"id": "c2", "type": "function", "function": {"name": "remember", "arguments": "{bad"}},
    ]

    def reply(body):
        return Reply(content=None, tool_calls=calls) if "tools" in body else "plain"

    server = scripted_server(reply)
    request = ReaderRequest.chat([{"role": "user", "content": "Save it."}], tools=TOOLS)
    tooled, plain = scripted_reader(server).generate([request, ask("No tools?")])
    assert tooled.tool_calls == [
        {"name": "remember", "arguments": '{"fact": "a"}'},
        {"name": "remember", "arguments": "{bad"},  # as the model wrote it: judging it is the caller's job
    ]
    assert (tooled.text, tooled.raw_text) == ("", "")
    assert (plain.text, plain.tool_calls) == ("plain", None)
    by_question = {body["messages"][-1]["content"]: body for body in server.requests}
    assert by_question["Save it."]["tools"] == TOOLS
    assert "tools" not in by_question["No tools?"]


def test_tool_schemas_keep_their_key_order():
    """Chat templates print schemas as given, so the order is part of the prompt (and of cache keys)."""
    request = ReaderRequest.chat([{"role": "user", "content": "x"}], tools=TOOLS)
    assert request.tool_dicts() == TOOLS
    assert request.tools.index('"type"') < request.tools.index('"function"')
    assert hash(request) == hash(ReaderRequest.chat([{"role": "user", "content": "x"}], tools=TOOLS))
    assert ReaderRequest.chat([{"role": "user", "content": "x"}]).tool_dicts() is None


def test_scripted_server_speaks_tool_calls_to_the_openai_client(scripted_server):
    """The fixture later agent tests rely on: tool calls come back as the client parses them."""
    import openai

    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "memory_insert", "arguments": '{"x": 1}'},
    }
    server = scripted_server(lambda body: Reply(content=None, tool_calls=[call]))
    client = openai.OpenAI(base_url=server.base_url, api_key="EMPTY", max_retries=0)
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "save"}])
    client.close()
    [tool_call] = completion.choices[0].message.tool_calls
    assert (tool_call.function.name, tool_call.function.arguments) == ("memory_insert", '{"x": 1}')
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("status", [500, 502, 429])
def test_transient_errors_are_retried(scripted_server, status):
    calls = iter(range(100))
    server = scripted_server(lambda body: Reply(status=status) if next(calls) < 2 else "fine")
    [response] = scripted_reader(server).generate([ask("Again?")])
    assert response.text == "fine"
    assert server.count == 3


def test_client_error_is_not_retried(scripted_server):
    server = scripted_server(lambda body: Reply(status=400))
    with pytest.raises(ReaderError, match="HTTP 400"):
        scripted_reader(server).generate([ask("Bad?")])
    assert server.count == 1


def test_persistent_server_error_gives_up_after_max_retries(scripted_server):
    server = scripted_server(lambda body: Reply(status=503))
    with pytest.raises(ReaderError) as info:
        scripted_reader(server, max_retries=2).generate([ask("Down?")])
    assert server.count == 3
    message = str(info.value)
    assert server.base_url in message and "scripted-model" in message
    assert "HTTP 503" in message and "3 attempt(s)" in message


def test_timeout_is_retried(scripted_server):
    calls = iter(range(100))
    server = scripted_server(lambda body: Reply(content="late", delay=2.0) if next(calls) == 0 else "on time")
    started = time.monotonic()
    [response] = scripted_reader(server, timeout=0.4).generate([ask("Slow?")])
    assert response.text == "on time"
    assert server.count == 2
    assert time.monotonic() - started < 1.9  # the slow reply was abandoned, not awaited


def test_persistent_timeout_is_reported(scripted_server):
    server = scripted_server(lambda body: Reply(delay=1.0))
    with pytest.raises(ReaderError, match="timed out"):
        scripted_reader(server, timeout=0.2, max_retries=1).generate([ask("Slow?")])
    assert server.count == 2


def test_concurrency_is_bounded_and_parallel(scripted_server):
    lock = threading.Lock()
    active, peak = [0], [0]

    def slow(body):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        return body["messages"][1]["content"].upper()

    server = scripted_server(slow)
    questions = [f"q{i}" for i in range(9)]
    responses = scripted_reader(server, concurrency=3).generate([ask(q) for q in questions])
    assert [r.text for r in responses] == [q.upper() for q in questions]  # in request order
    assert peak[0] == 3


def test_failure_lets_requests_under_way_finish_and_skips_the_rest(scripted_server):
    def reply(body):
        question = body["messages"][1]["content"]
        if question == "bad":
            return Reply(status=400)
        time.sleep(0.2)
        return question

    server = scripted_server(reply)
    seen: dict[int, str] = {}
    questions = ["bad", "a", "b", "c", "d"]
    with pytest.raises(ReaderError, match=r"1 of 5 requests failed and 2 were not sent; the first \(request 0\)"):
        scripted_reader(server, concurrency=3).generate(
            [ask(q) for q in questions], on_result=lambda i, r: seen.__setitem__(i, r.text)
        )
    assert seen == {1: "a", 2: "b"}  # started with the failing one; the last two never started
    assert server.count == 3


def test_generate_works_from_a_thread_and_inside_an_event_loop(scripted_server):
    server = scripted_server(lambda body: "yes")
    reader = scripted_reader(server)
    out: list[str] = []
    thread = threading.Thread(target=lambda: out.extend(r.text for r in reader.generate([ask("t?")])))
    thread.start()
    thread.join()

    async def inside_loop():
        return reader.generate([ask("l?")])

    out.extend(r.text for r in asyncio.run(inside_loop()))
    assert out == ["yes", "yes"]


def test_backoff_grows_with_jitter_and_is_capped():
    for attempt, base in [(0, 1.0), (3, 1.0), (20, 1.0)]:
        step = min(MAX_BACKOFF_S, base * 2**attempt)
        delays = [backoff_delay(attempt, base) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1


def test_make_reader_validates_its_arguments():
    with pytest.raises(ReaderError, match="unknown reader backend 'gpt'"):
        make_reader("gpt", "m")
    with pytest.raises(ReaderError, match="base_url"):
        make_reader("openai", "m")


def test_describe_names_the_server_but_never_the_key():
    reader = make_reader("openai", "qwen3-32b", base_url="http://gpu:8000/v1", api_key="sk-secret-key")
    description = reader.describe()
    assert description == {"backend": "openai", "model": "qwen3-32b", "base_url": "http://gpu:8000/v1"}
    assert "sk-secret" not in json.dumps(description)


# --- hf reader ----------------------------------------------------------------------------------------


def test_hf_reader_generates_a_batch_with_token_counts(tiny_model):
    from transformers import AutoTokenizer

    reader = make_reader("hf", str(tiny_model), concurrency=2)
    requests = [
        ask("Where?", max_tokens=5),
        ask("Who wrote the long book about the river in France?", max_tokens=5),
    ]
    seen: list[int] = []
    responses = reader.generate(requests, on_result=lambda i, r: seen.append(i))
    assert seen == [0, 1]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for request, response in zip(requests, responses, strict=True):
        prompt = tokenizer.apply_chat_template(
            request.message_dicts(), tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        assert response.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        assert 1 <= response.completion_tokens <= 5
    assert responses[1].prompt_tokens > responses[0].prompt_tokens  # padding is not counted
    assert reader.describe()["backend"] == "hf"
    # greedy decoding is deterministic
    assert [r.raw_text for r in reader.generate(requests)] == [r.raw_text for r in responses]


def test_hf_reader_renders_tools_through_the_chat_template(tiny_model):
    from transformers import AutoTokenizer

    reader = make_reader("hf", str(tiny_model))
    messages = [{"role": "user", "content": "Remember that Paris is in France."}]
    request = ReaderRequest.chat(messages, SamplingParams(max_tokens=2), tools=TOOLS)
    plain, tooled = reader.generate([ReaderRequest.chat(messages, SamplingParams(max_tokens=2)), request])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompt = tokenizer.apply_chat_template(
        messages, tools=TOOLS, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert '"name": "remember"' in prompt
    assert tooled.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert tooled.prompt_tokens > plain.prompt_tokens
    assert tooled.tool_calls is None  # the hf backend never parses calls


def test_hf_reader_applies_the_thinking_switch(tiny_model):
    reader = make_reader("hf", str(tiny_model))
    off, on = reader.generate([ask("Where?", max_tokens=1), ask("Where?", max_tokens=1, enable_thinking=True)])
    assert off.prompt_tokens > on.prompt_tokens


def test_stop_strings_are_cut_from_the_answer():
    assert cut_at_stop("Paris.\n\nAlso London", ["\n\n", "Also"]) == "Paris."
    assert cut_at_stop("Paris", ["\n"]) == "Paris"
    assert cut_at_stop("Paris", []) == "Paris"


# --- vllm reader ----------------------------------------------------------------------------------------


def test_vllm_backend_without_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(ReaderError, match=r"pip install memalpha-bench\[vllm\] on a GPU machine"):
        make_reader("vllm", "Qwen/Qwen3-32B")


def test_vllm_sampling_kwargs_map_our_settings():
    params = SamplingParams(max_tokens=64, temperature=0.7, top_p=0.8, stop=("\n",))
    assert vllm_sampling_kwargs(params) == {
        "max_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.8,
        "stop": ["\n"],
    }
    assert "stop" not in vllm_sampling_kwargs(SamplingParams())


def test_vllm_reader_batches_each_thinking_and_tools_setting_in_one_chat_call(monkeypatch):
    """Against a fake `vllm` module with the documented LLM.chat / SamplingParams / RequestOutput shape."""
    calls = []

    class FakeLLM:
        def __init__(self, model, **kwargs):
            self.model, self.kwargs = model, kwargs

        def chat(self, conversations, sampling_params, use_tqdm, chat_template_kwargs, tools):
            calls.append((conversations, sampling_params, chat_template_kwargs, tools))
            return [
                types.SimpleNamespace(
                    prompt_token_ids=[0] * len(c[-1]["content"]),
                    outputs=[types.SimpleNamespace(text=f"<think></think>{c[-1]['content']}!", token_ids=[1, 2])],
                )
                for c in conversations
            ]

    fake = types.SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: kw, __version__="0.0-fake")
    monkeypatch.setitem(sys.modules, "vllm", fake)
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
    assert [r.text for r in responses] == ["a!", "bb!", "ccc!", "dddd!"]
    assert [(r.prompt_tokens, r.completion_tokens) for r in responses] == [(1, 2), (2, 2), (3, 2), (4, 2)]
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
