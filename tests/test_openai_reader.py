"""The openai reader against scripted servers on 127.0.0.1: what it sends, how it reads every kind of
reply, retries, Retry-After, failures of single requests and of whole calls, the template field on
servers that reject it (as the OpenAI API does), several servers, API keys. Most tests run with both
HTTP clients: ours (`fast`) and the openai SDK, which is the reference for what a request holds."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from reader_helpers import TOOLS, ask
from servers import MALFORMED_REPLIES, Reply, openai_strict

from benchmark.readers import ReaderError, ReaderRequest, RequestsFailed, make_reader
from benchmark.readers import openai_reader as openai_reader_module
from benchmark.readers.base import SYSTEMATIC_AFTER, SamplingParams, tools_json
from benchmark.readers.openai_reader import MAX_BACKOFF_S, OpenAIReader, backoff_delay
from benchmark.readers.replies import ReplyProblem, read_reply, retry_after_seconds, server_message
from benchmark.readers.request_body import BodyFrame, ChatBody
from benchmark.readers.transport import (
    READ_BUFFER_BYTES,
    FastTransport,
    HttpReply,
    OpenAISDKTransport,
    TransportError,
    make_transport,
    post,
)


@pytest.fixture(params=["fast", "openai"])
def client(request) -> str:
    return request.param


def scripted_reader(server, client: str = "fast", **kwargs) -> OpenAIReader:
    options = {"timeout": 5.0, "max_retries": 3, "backoff": 0.01, "http_client": client, **kwargs}
    urls = options.pop("base_urls", None) or server.base_url
    return OpenAIReader("scripted-model", urls, **options)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The pauses the reader takes before retries, recorded instead of slept."""
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(openai_reader_module, "pause", record)
    return recorded


# --- what a request holds ----------------------------------------------------------------------------


def test_request_carries_model_messages_and_settings(scripted_server, client):
    server = scripted_server(lambda body: "ok")
    request = ask("Where?", max_tokens=7, temperature=0.5, top_p=0.9, stop=("\n\n",))
    scripted_reader(server, client).generate([request, ask("Plain?")])
    by_question = {body["messages"][1]["content"]: body for body in server.requests}
    body = by_question["Where?"]
    assert body["model"] == "scripted-model"
    assert body["messages"] == request.message_dicts()
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (7, 0.5, 0.9)
    assert body["stop"] == ["\n\n"]
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "stop" not in by_question["Plain?"]


def test_both_clients_send_the_same_request(scripted_server):
    """Our client sends what the openai SDK sends: the same JSON body and the same bearer key."""
    server = scripted_server(lambda body: "ok")
    request = ReaderRequest.chat([{"role": "user", "content": "Save it. ünïcödé \u2028"}], tools=TOOLS)
    for client in ("fast", "openai"):
        scripted_reader(server, client, api_key="sk-test").generate([request])
    fast, sdk = server.requests
    assert fast == sdk
    assert server.headers[0]["authorization"] == server.headers[1]["authorization"] == "Bearer sk-test"
    assert server.headers[0]["content-type"] == "application/json"


def test_think_block_is_removed_from_the_answer_and_usage_is_read(scripted_server, client):
    server = scripted_server(lambda body: "<think>\nthe river is long\n</think>\n\nThe Seine")
    [response] = scripted_reader(server, client).generate([ask("Which river?")])
    assert response.text == "The Seine"
    assert response.raw_text.startswith("<think>")
    assert response.prompt_tokens == 4  # "Answer briefly." + "Which river?" in scripted words
    assert response.completion_tokens == 8


def test_missing_usage_counts_zero_tokens(scripted_server, client):
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    }
    server = scripted_server(lambda request: Reply(body=body))
    [response] = scripted_reader(server, client).generate([ask("Hello?")])
    assert (response.text, response.prompt_tokens, response.completion_tokens) == ("hi", 0, 0)


def test_tools_are_sent_and_parsed_calls_read_back(scripted_server, client):
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "remember", "arguments": '{"fact": "a"}'}},
        {"id": "c2", "type": "function", "function": {"name": "remember", "arguments": "{bad"}},
        {"id": "c3", "type": "function", "function": {"name": "remember", "arguments": {"fact": "b"}}},
    ]

    def reply(body):
        return Reply(content=None, tool_calls=calls) if "tools" in body else "plain"

    server = scripted_server(reply)
    request = ReaderRequest.chat([{"role": "user", "content": "Save it."}], tools=TOOLS)
    tooled, plain = scripted_reader(server, client).generate([request, ask("No tools?")])
    assert tooled.tool_calls == [
        {"name": "remember", "arguments": '{"fact": "a"}'},
        {"name": "remember", "arguments": "{bad"},  # as the model wrote it: judging it is the caller's job
        {"name": "remember", "arguments": '{"fact": "b"}'},  # an object (some servers) as its JSON text
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


@pytest.mark.parametrize("template_field", [False, True])
def test_body_encoded_around_the_messages_is_the_json_of_its_fields(template_field):
    """The fast client writes the JSON around the messages once per settings and encodes only the
    texts per request: the body must be valid UTF-8 JSON whose value is the whole body's fields, with
    the texts as UTF-8 (not escaped) except one that is not valid Unicode (a lone surrogate), which is
    escaped so that it stays valid JSON text."""
    params = SamplingParams(max_tokens=9, temperature=0.3, stop=("\n\n", "é"), enable_thinking=True)
    texts = ['memory: "quoted" \\ é 🙂 \n\t\x00\x7f\u2028', "lone \ud800 surrogate", ""]
    for tools in (None, tools_json(TOOLS)):
        frame = BodyFrame("módel", params, tools, template_field)
        for messages in [(), (("system", texts[0]),), (("user", texts[1]), ("assistant", texts[2]))]:
            body = ChatBody(messages, frame)
            encoded = body.encode()
            fields = json.loads(encoded.decode("utf-8"))
            assert fields == body.fields()
            assert ("tools" in fields, "chat_template_kwargs" in fields) == (tools is not None, template_field)
            if messages == (("system", texts[0]),):
                assert "é 🙂".encode() in encoded
            if messages[:1] == (("user", texts[1]),):
                assert b"lone \\ud800 surrogate" in encoded


def test_reply_read_as_json_reads_bytes():
    """Replies are read as UTF-8 text first (the fast way); what that refuses is read as `json.loads` reads
    bytes (a byte-order mark, UTF-16), and bytes that are no JSON in any encoding are a retried problem."""
    completion = {"choices": [{"message": {"content": "Paris é"}, "finish_reason": "stop"}]}
    for raw in (
        json.dumps(completion).encode(),
        b"\xef\xbb\xbf" + json.dumps(completion).encode(),
        json.dumps(completion).encode("utf-16"),
    ):
        assert read_reply(HttpReply(200, {}, raw)).text == "Paris é"
    with pytest.raises(ReplyProblem) as problem:
        read_reply(HttpReply(200, {}, b'{"choices": "\xff\xfe\xfa"}'))
    assert problem.value.retryable and problem.value.kind == "not JSON"


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


# --- malformed replies are retried like a 5xx and never taken as answers -----------------------------


@pytest.mark.parametrize("fault", list(MALFORMED_REPLIES))
def test_each_malformed_reply_is_retried_then_answered(scripted_server, client, fault, waits):
    calls = iter(range(100))
    server = scripted_server(lambda body: MALFORMED_REPLIES[fault] if next(calls) < 2 else "Paris")
    seen = []
    [response] = scripted_reader(server, client).generate([ask("Where?")], on_result=lambda i, r: seen.append(r.text))
    assert response.text == seen[0] == "Paris"
    assert server.count == 3 and len(waits) == 2


@pytest.mark.parametrize(
    "fault", ["invalid JSON", "an HTML page", "empty choices", "null content", "cut while reasoning"]
)
def test_a_persistently_malformed_reply_fails_its_request_alone(scripted_server, client, fault, waits):
    def reply(body):
        return MALFORMED_REPLIES[fault] if body["messages"][-1]["content"] == "bad" else body["messages"][-1]["content"]

    server = scripted_server(reply)
    seen: dict[int, str] = {}
    with pytest.raises(RequestsFailed) as info:
        scripted_reader(server, client, max_retries=2).generate(
            [ask("a"), ask("bad"), ask("c")], on_result=lambda i, r: seen.__setitem__(i, r.text)
        )
    assert seen == {0: "a", 2: "c"}
    assert list(info.value.failures) == [1]
    reason = info.value.failures[1]
    assert "gave up after 3 attempt(s)" in reason and server.base_url in reason
    expected = {
        "invalid JSON": "not JSON",
        "an HTML page": "502 Bad Gateway",
        "empty choices": "no choices",
        "null content": "no content",
        "cut while reasoning": "while still reasoning",
    }[fault]
    assert expected in reason


def test_a_long_answer_cut_at_max_tokens_is_still_an_answer(scripted_server, client):
    server = scripted_server(lambda body: Reply(content="Paris, the capital, which lies on", finish_reason="length"))
    [response] = scripted_reader(server, client).generate([ask("Where?")])
    assert response.text == "Paris, the capital, which lies on" and server.count == 1


# --- statuses, timeouts, Retry-After -----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 429, 408])
def test_transient_errors_are_retried(scripted_server, client, status):
    calls = iter(range(100))
    server = scripted_server(lambda body: Reply(status=status) if next(calls) < 2 else "fine")
    [response] = scripted_reader(server, client).generate([ask("Again?")])
    assert response.text == "fine"
    assert server.count == 3


def test_client_error_is_not_retried_and_carries_the_servers_explanation(scripted_server, client):
    explanation = "This model's maximum context length is 40960 tokens; you requested 51234 tokens."
    server = scripted_server(lambda body: Reply(status=400, message=explanation))
    with pytest.raises(ReaderError) as info:
        scripted_reader(server, client).generate([ask("Too long?")])
    assert f"HTTP 400: {explanation}" in str(info.value)
    assert server.count == 1


def test_one_rejected_prompt_fails_that_request_and_not_the_call(scripted_server, client):
    def reply(body):
        question = body["messages"][1]["content"]
        if question == "bad":
            return Reply(status=400, message="prompt too long")
        time.sleep(0.05)
        return question

    server = scripted_server(reply)
    seen: dict[int, str] = {}
    questions = ["bad", "a", "b", "c", "d"]
    with pytest.raises(RequestsFailed, match=r"1 of 5 requests failed; the first \(request 0\)") as info:
        scripted_reader(server, client, concurrency=3).generate(
            [ask(q) for q in questions], on_result=lambda i, r: seen.__setitem__(i, r.text)
        )
    assert seen == {1: "a", 2: "b", 3: "c", 4: "d"}
    assert "HTTP 400: prompt too long" in info.value.failures[0]
    assert server.count == 5


def test_every_request_failing_the_same_way_stops_the_call_early(scripted_server, client):
    server = scripted_server(lambda body: Reply(status=404, message="The model `scripted-model` does not exist."))
    total = SYSTEMATIC_AFTER * 4
    with pytest.raises(ReaderError) as info:
        scripted_reader(server, client, concurrency=4).generate([ask(f"q{i}") for i in range(total)])
    assert not isinstance(info.value, RequestsFailed)
    assert "all failed the same way and none was answered" in str(info.value)
    assert "HTTP 404: The model `scripted-model` does not exist." in str(info.value)
    assert SYSTEMATIC_AFTER <= server.count < SYSTEMATIC_AFTER + 4  # the requests under way, no more


def test_different_failures_do_not_stop_the_call(scripted_server, client):
    server = scripted_server(lambda body: Reply(status=400, message=f"bad {body['messages'][1]['content']}"))
    total = SYSTEMATIC_AFTER + 4
    with pytest.raises(RequestsFailed) as info:
        scripted_reader(server, client, concurrency=4).generate([ask(f"q{i}") for i in range(total)])
    assert len(info.value.failures) == total and server.count == total


def test_persistent_server_error_gives_up_after_max_retries(scripted_server, client):
    server = scripted_server(lambda body: Reply(status=503))
    with pytest.raises(ReaderError) as info:
        scripted_reader(server, client, max_retries=2).generate([ask("Down?")])
    assert server.count == 3
    message = str(info.value)
    assert server.base_url in message and "scripted-model" in message
    assert "HTTP 503" in message and "3 attempt(s)" in message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "7"}, 7.0), ({"Retry-After": "2.5"}, 2.5), ({"retry-after-ms": "4500"}, 4.5)],
)
def test_retry_after_is_honoured(scripted_server, client, waits, headers, expected):
    calls = iter(range(100))
    server = scripted_server(lambda body: Reply(status=429, headers=headers) if next(calls) == 0 else "fine")
    [response] = scripted_reader(server, client).generate([ask("Busy?")])
    assert response.text == "fine"
    assert waits == [expected]  # the backoff alone would be under 0.01 s


def test_retry_after_as_a_date_and_unreadable():
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, now=1445412500.0) == 10.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_server_message_finds_the_explanation():
    assert server_message(b'{"error": {"message": "bad key", "type": "auth"}}') == "bad key"
    assert server_message(b'{"detail": "Not Found"}') == "Not Found"
    assert server_message(b'{"error": "plain"}') == "plain"
    assert server_message(b"<html><title>Bad Gateway</title></html>") == "Bad Gateway"
    assert server_message(b"") == "(empty body)"
    assert len(server_message(b"x" * 1000)) == 300


def test_timeout_is_retried(scripted_server, client):
    calls = iter(range(100))
    server = scripted_server(lambda body: Reply(content="late", delay=2.0) if next(calls) == 0 else "on time")
    started = time.monotonic()
    [response] = scripted_reader(server, client, timeout=0.4).generate([ask("Slow?")])
    assert response.text == "on time"
    assert server.count == 2
    assert time.monotonic() - started < 1.9  # the slow reply was abandoned, not awaited


def test_persistent_timeout_is_reported(scripted_server, client, waits):
    server = scripted_server(lambda body: Reply(delay=1.0))
    with pytest.raises(ReaderError, match=r"gave up after 2 attempt\(s\); last error: timed out after 0.2 s"):
        scripted_reader(server, client, timeout=0.2, max_retries=1).generate([ask("Slow?")])
    assert len(waits) == 1  # one retry (the server may not have read the second try yet: not counted there)


def test_a_dead_server_is_a_connection_error_stopping_the_call(scripted_server, client, waits):
    server = scripted_server(lambda body: "never")
    url = server.base_url
    server.stop()
    with pytest.raises(ReaderError) as info:
        scripted_reader(server, client, base_urls=[url], max_retries=1).generate([ask("a?"), ask("b?")])
    assert "all failed the same way" in str(info.value) and "gave up after 2 attempt(s)" in str(info.value)


class InFlight:
    """Counts the requests a scripted server is handling at once (its handlers run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.active -= 1


def test_concurrency_is_bounded_and_parallel(scripted_server, client):
    in_flight = InFlight()

    def slow(body):
        with in_flight:
            time.sleep(0.15)
        return body["messages"][1]["content"].upper()

    server = scripted_server(slow)
    questions = [f"q{i}" for i in range(9)]
    responses = scripted_reader(server, client, concurrency=3).generate([ask(q) for q in questions])
    assert [r.text for r in responses] == [q.upper() for q in questions]  # in request order
    assert in_flight.peak == 3


def test_a_request_being_retried_keeps_its_slot(scripted_server, client, waits):
    """At most `concurrency` requests are under way, retries included: a request that failed holds its
    slot through its retries, and the other slots carry on meanwhile."""
    in_flight, failures = InFlight(), {"q0": 2}

    def slow(body):
        question = body["messages"][1]["content"]
        with in_flight:
            time.sleep(0.05)
        if failures.get(question):  # q0 is under way once at a time: no other thread changes its count
            failures[question] -= 1
            return Reply(status=503)
        return question.upper()

    server = scripted_server(slow)
    questions = [f"q{i}" for i in range(7)]
    responses = scripted_reader(server, client, concurrency=2).generate([ask(q) for q in questions])
    assert [r.text for r in responses] == [q.upper() for q in questions]
    assert len(waits) == 2 and server.count == 9
    assert in_flight.peak == 2


def test_an_error_in_on_result_is_not_swallowed(scripted_server, client):
    """`on_result` runs inside the client's callbacks: its error still ends the call, as itself."""
    server = scripted_server(lambda body: "ok")

    def broken(i, response):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        scripted_reader(server, client).generate([ask("a"), ask("b")], on_result=broken)


def test_generate_works_from_a_thread_and_inside_an_event_loop(scripted_server, client):
    server = scripted_server(lambda body: "yes")
    reader = scripted_reader(server, client)
    out: list[str] = []
    thread = threading.Thread(target=lambda: out.extend(r.text for r in reader.generate([ask("t?")])))
    thread.start()
    thread.join()

    async def inside_loop():
        return reader.generate([ask("l?")])

    out.extend(r.text for r in asyncio.run(inside_loop()))
    assert out == ["yes", "yes"]


def test_keep_alive_connections_are_reused(scripted_server):
    server = scripted_server(lambda body: "ok")
    scripted_reader(server, concurrency=2).generate([ask(f"q{i}") for i in range(20)])
    assert server.count == 20 and len(set(server.ports)) == 2  # two connections served all 20


def test_replies_longer_than_the_receive_buffer_arrive_whole(scripted_server):
    """The fast client receives into a buffer of its own, reused between reads and replies: replies of
    several buffers, one after another on one connection, come back intact and each to its request."""

    def answer(body):
        question = body["messages"][-1]["content"]
        return f"{question}: " + "river é 河 " * (READ_BUFFER_BYTES // 4) + question

    server = scripted_server(answer)
    requests = [ask(f"q{i}") for i in range(4)]
    responses = scripted_reader(server, concurrency=1).generate(requests)
    for i, response in enumerate(responses):
        assert len(response.raw_text.encode()) > 3 * READ_BUFFER_BYTES
        assert response.raw_text == f"q{i}: " + "river é 河 " * (READ_BUFFER_BYTES // 4) + f"q{i}"
    assert len(set(server.ports)) == 1


def _raw_exchange(*pieces: bytes, close: bool = True) -> HttpReply | BaseException:
    """What the fast transport makes of a server that answers one request with `pieces` (each written
    on its own, a moment apart, so that they arrive in separate reads) and then, if `close`, closes the
    connection."""

    async def exchange() -> HttpReply | BaseException:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.05)
            if close:
                writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = FastTransport(f"http://127.0.0.1:{port}/v1", "EMPTY")
        payload = ChatBody((("user", "Where?"),), BodyFrame("m", SamplingParams(), None, False))
        try:
            return await post(transport, payload, 5.0)
        except Exception as error:  # what the reader would be handed
            return error
        finally:
            await transport.aclose()
            server.close()

    return asyncio.run(exchange())


def test_a_body_that_ends_with_the_connection_is_a_whole_reply():
    reply = _raw_exchange(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", b'{"choices": []}')
    assert isinstance(reply, HttpReply)
    assert (reply.status, reply.body) == (200, b'{"choices": []}')
    assert reply.headers == {"content-type": "application/json"}


def test_headers_split_over_reads_are_read_whole():
    """Headers are read from the reply's raw bytes only when asked for (an error's Retry-After): a head
    that came in several pieces is read whole, names in lower case."""
    reply = _raw_exchange(
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\nRetry-",
        b"After: 7\r\nX-Note: caf\xe9\r\n\r\n{}",
        close=False,
    )
    assert isinstance(reply, HttpReply) and reply.status == 429 and reply.body == b"{}"
    assert reply.headers == {"content-length": "2", "retry-after": "7", "x-note": "caf\xe9"}
    with pytest.raises(ReplyProblem) as info:
        read_reply(reply)
    assert info.value.retryable and info.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("pieces", "where"),
    [
        ((), "before replying"),
        ((b"HTTP/1.1 200 OK\r\nContent-",), "mid-reply"),  # the head unfinished
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", b'{"choices"'), "mid-reply"),  # the body
    ],
)
def test_a_connection_closed_before_the_reply_ends_is_no_reply(pieces, where):
    error = _raw_exchange(*pieces)
    assert isinstance(error, TransportError)
    assert f"the server closed the connection {where}" in str(error)


@pytest.mark.parametrize(
    "pieces",
    [(b"SMTP ready\r\n\r\n",), (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n", b"Content-Length: x\r\n\r\n{}")],
)
def test_a_reply_that_is_not_http_is_no_reply(pieces):
    error = _raw_exchange(*pieces, close=False)
    assert isinstance(error, TransportError)
    assert "the server's reply is not valid HTTP/1.1" in str(error)


def test_backoff_grows_with_jitter_and_is_capped():
    for attempt, base in [(0, 1.0), (3, 1.0), (20, 1.0)]:
        step = min(MAX_BACKOFF_S, base * 2**attempt)
        delays = [backoff_delay(attempt, base) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1


# --- chat_template_kwargs where the server takes it --------------------------------------------------


def test_auto_drops_the_template_field_for_a_server_that_rejects_it(scripted_server, client):
    server = scripted_server(openai_strict(lambda body: body["messages"][1]["content"].upper()))
    reader = scripted_reader(server, client, concurrency=1)
    responses = reader.generate([ask("a"), ask("b"), ask("c")])
    assert [r.text for r in responses] == ["A", "B", "C"]
    assert server.count == 4  # the first request once with the field (400), then never again
    assert "chat_template_kwargs" in server.requests[0]
    assert all("chat_template_kwargs" not in body for body in server.requests[1:])
    assert reader.describe()["template_kwargs_rejected_by"] == [server.base_url]


def test_requests_in_flight_when_the_field_is_rejected_go_again_without_it(scripted_server, client):
    strict = openai_strict(lambda body: body["messages"][1]["content"])

    def reply(body):
        answer = strict(body)
        if isinstance(answer, Reply):  # the 400: slow, so that all four first requests are under way
            answer.delay = 0.2
        return answer

    server = scripted_server(reply)
    responses = scripted_reader(server, client, concurrency=4).generate([ask(f"q{i}") for i in range(8)])
    assert [r.text for r in responses] == [f"q{i}" for i in range(8)]
    with_field = [body for body in server.requests if "chat_template_kwargs" in body]
    assert len(with_field) == 4 and server.count == 12


def test_omit_never_sends_the_field_and_send_always_does(scripted_server, client):
    server = scripted_server(openai_strict(lambda body: "ok"))
    scripted_reader(server, client, template_kwargs="omit").generate([ask("a"), ask("b")])
    assert server.count == 2 and all("chat_template_kwargs" not in body for body in server.requests)
    with pytest.raises(ReaderError, match="Unrecognized request argument supplied: chat_template_kwargs"):
        scripted_reader(server, client, template_kwargs="send").generate([ask("c")])


def test_auto_does_not_send_the_field_to_the_openai_api():
    reader = OpenAIReader("gpt-4o", ["https://api.openai.com/v1", "http://127.0.0.1:8000/v1"])
    assert reader.sends_template_kwargs("https://api.openai.com/v1") is False
    assert reader.sends_template_kwargs("http://127.0.0.1:8000/v1") is True
    assert OpenAIReader("m", "http://x/v1", template_kwargs="omit").sends_template_kwargs("http://x/v1") is False


# --- several servers, keys, clients ------------------------------------------------------------------


def test_requests_are_spread_over_several_servers(scripted_server, client):
    def slow(body):
        time.sleep(0.05)
        return body["messages"][1]["content"]

    servers = [scripted_server(slow), scripted_server(slow)]
    reader = scripted_reader(servers[0], client, base_urls=[s.base_url for s in servers], concurrency=4)
    responses = reader.generate([ask(f"q{i}") for i in range(16)])
    assert [r.text for r in responses] == [f"q{i}" for i in range(16)]
    assert servers[0].count + servers[1].count == 16
    assert min(servers[0].count, servers[1].count) >= 4
    assert reader.describe()["base_urls"] == [s.base_url for s in servers]


def test_a_retry_goes_to_another_server(scripted_server, client, waits):
    down = scripted_server(lambda body: Reply(status=503))
    up = scripted_server(lambda body: "from the healthy one")
    reader = scripted_reader(down, client, base_urls=[down.base_url, up.base_url], concurrency=1)
    responses = reader.generate([ask(f"q{i}") for i in range(6)])
    assert [r.text for r in responses] == ["from the healthy one"] * 6
    assert up.count == 6 and down.count <= 6


def test_api_key_reaches_the_server_and_never_the_description(scripted_server, client, monkeypatch):
    server = scripted_server(lambda body: "ok")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    scripted_reader(server, client).generate([ask("a")])
    scripted_reader(server, client, api_key="sk-given").generate([ask("b")])
    assert [h["authorization"] for h in server.headers] == ["Bearer sk-from-env", "Bearer sk-given"]
    monkeypatch.delenv("OPENAI_API_KEY")
    reader = make_reader("openai", "qwen3-32b", base_url="http://gpu:8000/v1", api_key="sk-secret-key")
    description = reader.describe()
    assert description == {
        "backend": "openai",
        "model": "qwen3-32b",
        "base_url": "http://gpu:8000/v1",
        "template_kwargs": "auto",
    }
    assert "sk-secret" not in json.dumps(description)


def test_auto_client_is_the_sdk_only_behind_a_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(make_transport("auto", "http://127.0.0.1:8000/v1", "k"), FastTransport)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert isinstance(make_transport("auto", "http://gpu-box:8000/v1", "k"), OpenAISDKTransport)
    assert isinstance(make_transport("fast", "http://gpu-box:8000/v1", "k"), FastTransport)


def test_make_reader_validates_its_arguments():
    with pytest.raises(ReaderError, match="unknown reader backend 'gpt'"):
        make_reader("gpt", "m")
    with pytest.raises(ReaderError, match="base_url"):
        make_reader("openai", "m")
    with pytest.raises(ReaderError, match="template_kwargs must be one of auto, send, omit"):
        make_reader("openai", "m", base_url="http://x/v1", template_kwargs="maybe")
    with pytest.raises(ReaderError, match="timeout must be more than 0"):
        make_reader("openai", "m", base_url="http://x/v1", timeout=0)
    with pytest.raises(ReaderError, match="expected http://HOST"):
        make_transport("fast", "ftp://x/v1", "k")


def test_https_with_the_fast_client(scripted_server, tmp_path, monkeypatch):
    """TLS through the fast client: the certificate is verified (here against a CA file named by
    SSL_CERT_FILE, which OpenSSL's default paths honour), and the reply is read as over plain HTTP."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [*request, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server = scripted_server(lambda body: "over TLS")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
    url = server.base_url.replace("http://", "https://")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    [response] = OpenAIReader("m", url, http_client="fast", max_retries=0).generate([ask("Secure?")])
    assert response.text == "over TLS" and server.count == 1
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(ReaderError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        OpenAIReader("m", url, http_client="fast", max_retries=0).generate([ask("Unverified?")])
