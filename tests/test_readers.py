"""Reader backends on real models: the openai reader against `transformers serve` (both HTTP clients),
the hf reader on a tiny model. The openai reader's protocol handling is in test_openai_reader.py, the
vllm reader in test_vllm_reader.py."""

from __future__ import annotations

import pytest
from reader_helpers import TOOLS, ask

from benchmark.readers import ReaderError, ReaderRequest, SamplingParams, make_reader
from benchmark.readers.hf_reader import cut_at_stop

# --- openai reader against a real server -----------------------------------------------------------

CLIENTS = ["fast", "openai"]  # our HTTP client, and the openai SDK as the reference


@pytest.mark.parametrize("client", CLIENTS)
def test_openai_reader_answers_through_transformers_serve(serve_tiny, client):
    reader = make_reader("openai", serve_tiny.model, base_url=serve_tiny.base_url, concurrency=4, http_client=client)
    questions = ["Where does Alice live?", "Who wrote the book?", "When was Bob born?", "What is the river?"]
    seen: list[int] = []
    responses = reader.generate([ask(q, max_tokens=6) for q in questions], on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2, 3]
    assert len(responses) == 4
    for response in responses:
        assert response.prompt_tokens > 0
        assert 0 < response.completion_tokens <= 6
        assert response.cached is False


@pytest.mark.parametrize("client", CLIENTS)
def test_thinking_switch_reaches_the_chat_template(serve_tiny, client):
    """With thinking off the template pre-fills an empty <think> block, so the prompt is longer."""
    reader = make_reader("openai", serve_tiny.model, base_url=serve_tiny.base_url, http_client=client)
    off, on = reader.generate(
        [ask("Where is Paris?", max_tokens=2), ask("Where is Paris?", max_tokens=2, enable_thinking=True)]
    )
    assert off.prompt_tokens > on.prompt_tokens


@pytest.mark.parametrize("client", CLIENTS)
def test_tools_reach_the_served_chat_template(serve_tiny, client):
    """`tools=` is sent and rendered: the template lists the schemas, so the prompt is longer."""
    reader = make_reader("openai", serve_tiny.model, base_url=serve_tiny.base_url, http_client=client)
    messages = [{"role": "user", "content": "Remember that Paris is in France."}]
    plain, tooled = reader.generate(
        [
            ReaderRequest.chat(messages, SamplingParams(max_tokens=2)),
            ReaderRequest.chat(messages, SamplingParams(max_tokens=2), tools=TOOLS),
        ]
    )
    assert tooled.prompt_tokens > plain.prompt_tokens + 20


@pytest.mark.parametrize("client", CLIENTS)
def test_a_wrong_model_stops_early_with_the_servers_explanation(serve_tiny, client):
    """`transformers serve` refuses a model it does not serve with a 400 that says why: every request
    fails the same way, so the call stops with that explanation instead of asking every question."""
    reader = make_reader("openai", "no-such-model", base_url=serve_tiny.base_url, concurrency=2, http_client=client)
    with pytest.raises(ReaderError) as info:
        reader.generate([ask(f"Question {i}?", max_tokens=2) for i in range(40)])
    message = str(info.value)
    assert "all failed the same way" in message
    assert "HTTP 400" in message and "no-such-model" in message and serve_tiny.model in message


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
