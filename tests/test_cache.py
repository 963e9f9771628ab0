"""The persistent response cache: keys, storage across objects, threads and processes, and the cached
reader that sends only misses (checked by counting what a scripted server receives)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from servers import Reply

from benchmark.cache import CachedReader, ResponseCache
from benchmark.readers import ReaderError, ReaderRequest, ReaderResponse, SamplingParams
from benchmark.readers.base import tools_json
from benchmark.readers.openai_reader import OpenAIReader

MODEL = {"backend": "openai", "model": "qwen3-32b", "base_url": "http://a:8000/v1"}


def ask(question: str, **params) -> ReaderRequest:
    return ReaderRequest.chat([{"role": "user", "content": question}], SamplingParams(**params))


def echo(body) -> str:
    return "<think></think>" + body["messages"][-1]["content"].upper()


def cached_reader(server, cache: ResponseCache) -> CachedReader:
    return CachedReader(OpenAIReader("m", server.base_url, timeout=5, max_retries=0, backoff=0.01), cache)


# --- keys -------------------------------------------------------------------------------------------


def test_key_depends_on_model_messages_and_every_setting():
    base = ResponseCache.key(MODEL, ask("Where?"))
    assert len(base) == 64 and base == ResponseCache.key(dict(MODEL), ask("Where?"))
    variants = [
        ResponseCache.key({**MODEL, "model": "qwen3-8b"}, ask("Where?")),
        ResponseCache.key({**MODEL, "backend": "vllm"}, ask("Where?")),
        ResponseCache.key(MODEL, ask("Where?!")),
        ResponseCache.key(MODEL, ReaderRequest((("system", "Where?"),), SamplingParams())),
        ResponseCache.key(MODEL, ask("Where?", max_tokens=100)),
        ResponseCache.key(MODEL, ask("Where?", temperature=0.7)),
        ResponseCache.key(MODEL, ask("Where?", top_p=0.9)),
        ResponseCache.key(MODEL, ask("Where?", enable_thinking=True)),
        ResponseCache.key(MODEL, ask("Where?", stop=("\n",))),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_tools_are_part_of_the_key_and_keys_without_tools_did_not_change():
    tools = [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}]
    plain = ask("Where?")
    with_tools = ReaderRequest(plain.messages, plain.params, tools_json(tools))
    other_tools = ReaderRequest(plain.messages, plain.params, tools_json([{**tools[0], "type": "other"}]))
    keys = {ResponseCache.key(MODEL, r) for r in (plain, with_tools, other_tools)}
    assert len(keys) == 3
    # the key of a request without tools is still the hash of (model, messages, params) alone
    payload = {
        "model": {"backend": "openai", "model": "qwen3-32b"},
        "messages": [["user", "Where?"]],
        "params": plain.params.as_dict(),
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert ResponseCache.key(MODEL, plain) == hashlib.sha256(canonical.encode()).hexdigest()


def test_key_ignores_where_the_model_is_served():
    moved = {**MODEL, "base_url": "http://b:9000/v1"}
    assert ResponseCache.key(moved, ask("Where?")) == ResponseCache.key(MODEL, ask("Where?"))


# --- storage ----------------------------------------------------------------------------------------


def test_put_get_and_persistence_across_objects(tmp_path):
    path = tmp_path / "sub" / "responses.sqlite"
    key = ResponseCache.key(MODEL, ask("Where?"))
    with ResponseCache(path) as cache:
        assert cache.get(key) is None
        cache.put(key, ReaderResponse.from_raw("<think>hmm</think>\n\nParis", 12, 5))
    with ResponseCache(path) as reopened:
        assert len(reopened) == 1
        assert reopened.get(key) == ReaderResponse("Paris", "<think>hmm</think>\n\nParis", 12, 5, cached=True)


def test_tool_calls_are_stored_and_read_back(tmp_path):
    calls = [{"name": "remember", "arguments": '{"fact": "é"}'}, {"name": "", "arguments": "{bad"}]
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        cache.put("k", ReaderResponse.from_raw("", 3, 4, tool_calls=calls))
        cache.put("plain", ReaderResponse.from_raw("text", 1, 1))
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        assert cache.get("k") == ReaderResponse("", "", 3, 4, cached=True, tool_calls=calls)
        assert cache.get("plain").tool_calls is None


def test_a_file_from_before_tool_calls_opens_and_its_rows_read_back(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE responses (key TEXT PRIMARY KEY, raw_text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, "
        "completion_tokens INTEGER NOT NULL, created REAL NOT NULL)"
    )
    old.execute("INSERT INTO responses VALUES ('k', 'Paris', 7, 1, 0.0)")
    old.commit()
    old.close()
    with ResponseCache(path) as cache:
        assert cache.get("k") == ReaderResponse("Paris", "Paris", 7, 1, cached=True)
        cache.put("new", ReaderResponse.from_raw("", 1, 1, tool_calls=[{"name": "f", "arguments": "{}"}]))
        assert cache.get("new").tool_calls == [{"name": "f", "arguments": "{}"}]
    with ResponseCache(path) as again:  # the added column is there for good
        assert len(again) == 2 and again.get("k").raw_text == "Paris"


def test_a_write_is_visible_to_another_connection_at_once(tmp_path):
    """Committed immediately: a process killed after `put` keeps the answer."""
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("k", ReaderResponse.from_raw("x", 1, 1))
    other = sqlite3.connect(tmp_path / "c.sqlite")
    assert other.execute("SELECT raw_text FROM responses WHERE key = 'k'").fetchone() == ("x",)
    other.close()


def test_not_a_cache_file_is_a_reader_error(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ReaderError, match="cannot open the response cache"):
        ResponseCache(path)


def test_concurrent_writers_from_threads(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")

    def write(worker: int) -> None:
        for n in range(150):
            cache.put(f"{worker}-{n}", ReaderResponse.from_raw(f"answer {worker} {n}", worker, n))
            assert cache.get(f"{worker}-{n}").raw_text == f"answer {worker} {n}"

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 8 * 150
    assert cache.get("7-149") == ReaderResponse("answer 7 149", "answer 7 149", 7, 149, cached=True)


WRITER = """
import sys
from benchmark.cache import ResponseCache
from benchmark.readers import ReaderResponse
path, worker = sys.argv[1], sys.argv[2]
with ResponseCache(path) as cache:
    for n in range(200):
        cache.put(f"{worker}-{n}", ReaderResponse.from_raw(f"p{worker}", int(worker), n))
"""


def test_concurrent_writers_from_processes(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ResponseCache(path).close()
    root = Path(__file__).resolve().parents[1]
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, path, str(w)], cwd=root, stderr=subprocess.PIPE)
        for w in range(3)
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
    with ResponseCache(path) as cache:
        assert len(cache) == 600
        assert cache.get("2-199").raw_text == "p2"


# --- the cached reader --------------------------------------------------------------------------------


def test_second_call_is_answered_from_the_cache(tmp_path, scripted_server):
    server = scripted_server(echo)
    requests = [ask("alpha"), ask("beta"), ask("gamma")]
    reader = cached_reader(server, ResponseCache(tmp_path / "c.sqlite"))
    first = reader.generate(requests)
    assert [r.text for r in first] == ["ALPHA", "BETA", "GAMMA"] and not any(r.cached for r in first)
    assert server.count == 3

    seen: list[int] = []
    second = reader.generate(requests, on_result=lambda i, r: seen.append(i))
    assert server.count == 3
    assert [r.text for r in second] == ["ALPHA", "BETA", "GAMMA"] and all(r.cached for r in second)
    assert sorted(seen) == [0, 1, 2]
    assert (reader.hits, reader.misses) == (3, 3)


def test_a_changed_setting_is_a_miss(tmp_path, scripted_server):
    server = scripted_server(echo)
    reader = cached_reader(server, ResponseCache(tmp_path / "c.sqlite"))
    reader.generate([ask("alpha"), ask("beta")])
    responses = reader.generate([ask("alpha"), ask("beta", max_tokens=9)])
    assert [r.cached for r in responses] == [True, False]
    assert server.count == 3
    assert server.requests[-1]["max_tokens"] == 9


def test_the_cache_persists_for_a_new_reader_on_the_same_file(tmp_path, scripted_server):
    server = scripted_server(echo)
    cached_reader(server, ResponseCache(tmp_path / "c.sqlite")).generate([ask("alpha")])
    again = cached_reader(server, ResponseCache(tmp_path / "c.sqlite")).generate([ask("alpha")])
    assert again[0].cached and again[0].text == "ALPHA"
    assert server.count == 1


def test_identical_requests_in_one_call_are_sent_once(tmp_path, scripted_server):
    server = scripted_server(echo)
    reader = cached_reader(server, ResponseCache(tmp_path / "c.sqlite"))
    seen: list[int] = []
    responses = reader.generate([ask("alpha"), ask("beta"), ask("alpha")], on_result=lambda i, r: seen.append(i))
    assert [r.text for r in responses] == ["ALPHA", "BETA", "ALPHA"]
    assert sorted(seen) == [0, 1, 2]
    assert server.count == 2 and reader.misses == 2


def test_each_answer_is_stored_before_the_caller_hears_of_it(tmp_path, scripted_server):
    server = scripted_server(echo)
    cache = ResponseCache(tmp_path / "c.sqlite")
    reader = cached_reader(server, cache)
    requests = [ask("alpha"), ask("beta")]
    stored_when_reported = []

    def on_result(i: int, response: ReaderResponse) -> None:
        stored_when_reported.append(cache.get(cache.key(reader.describe(), requests[i])) is not None)

    reader.generate(requests, on_result=on_result)
    assert stored_when_reported == [True, True]


def test_a_failed_request_leaves_the_others_stored_and_a_rerun_asks_only_for_it(tmp_path, scripted_server):
    broken = [True]

    def reply(body):
        if body["messages"][-1]["content"] == "beta" and broken[0]:
            return Reply(status=400)
        return echo(body)

    server = scripted_server(reply)
    cache = ResponseCache(tmp_path / "c.sqlite")
    requests = [ask("alpha"), ask("beta"), ask("gamma"), ask("delta")]
    with pytest.raises(ReaderError, match="1 of 4 requests failed"):
        cached_reader(server, cache).generate(requests)
    assert len(cache) == 3
    assert server.count == 4

    broken[0] = False
    rerun = cached_reader(server, ResponseCache(tmp_path / "c.sqlite"))
    responses = rerun.generate(requests)
    assert [r.text for r in responses] == ["ALPHA", "BETA", "GAMMA", "DELTA"]
    assert [r.cached for r in responses] == [True, False, True, True]
    assert server.count == 5 and server.requests[-1]["messages"][-1]["content"] == "beta"
    assert (rerun.hits, rerun.misses) == (3, 1)


def test_parsed_tool_calls_come_back_from_the_cache(tmp_path, scripted_server):
    call = {"id": "c", "type": "function", "function": {"name": "remember", "arguments": '{"fact": "a"}'}}
    server = scripted_server(lambda body: Reply(content=None, tool_calls=[call]))
    tools = [{"type": "function", "function": {"name": "remember", "description": "d", "parameters": {}}}]
    request = ReaderRequest.chat([{"role": "user", "content": "Save."}], tools=tools)
    reader = cached_reader(server, ResponseCache(tmp_path / "c.sqlite"))
    [first] = reader.generate([request])
    [second] = reader.generate([request])
    assert server.count == 1 and second.cached
    assert first.tool_calls == second.tool_calls == [{"name": "remember", "arguments": '{"fact": "a"}'}]


def test_cached_reader_describes_its_inner_reader(tmp_path, scripted_server):
    server = scripted_server(echo)
    reader = cached_reader(server, ResponseCache(tmp_path / "c.sqlite"))
    assert reader.describe() == reader.reader.describe()
