"""The reader and judge options every scoring command shares: several servers, $OPENAI_BASE_URL, API
keys per reader and judge from named variables, the template field mode (the numeric options are
checked in test_journey.py)."""

from __future__ import annotations

import argparse

import pytest
from reader_helpers import ask
from servers import openai_strict

from benchmark.commands import add_reader_options, readers_from_args
from benchmark.readers import ReaderError, ReaderRequest
from benchmark.scoring import ScorerConfig


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_reader_options(parser)
    return parser.parse_args(["--reader", "openai", "--model", "scripted", *argv])


def authorization(server, reader) -> str:
    """The Authorization header a new question (never in the shared cache) reaches `server` with."""
    reader.generate([ask(f"{server.base_url} {server.count}")])
    return server.headers[-1]["authorization"]


def test_keys_come_from_the_named_variables(scripted_server, tmp_path, monkeypatch):
    reader_server, judge_server = scripted_server(lambda b: "ok"), scripted_server(lambda b: "yes")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-shared")
    monkeypatch.setenv("LOCAL_KEY", "sk-local")
    monkeypatch.setenv("JUDGE_KEY", "sk-judge")
    args = parse(
        "--base-url",
        reader_server.base_url,
        "--api-key-env",
        "LOCAL_KEY",
        "--judge-base-url",
        judge_server.base_url,
        "--judge-api-key-env",
        "JUDGE_KEY",
        "--cache",
        str(tmp_path / "c.sqlite"),
    )
    reader, judge = readers_from_args(args, tmp_path)
    assert authorization(reader_server, reader) == "Bearer sk-local"
    assert authorization(judge_server, judge) == "Bearer sk-judge"

    args = parse("--base-url", reader_server.base_url, "--judge-base-url", judge_server.base_url)
    reader, judge = readers_from_args(args, tmp_path)
    assert authorization(reader_server, reader) == authorization(judge_server, judge) == "Bearer sk-shared"

    with pytest.raises(ReaderError, match="--judge-api-key-env NOT_SET: that environment variable is not set"):
        readers_from_args(parse("--base-url", "http://x/v1", "--judge-api-key-env", "NOT_SET"), tmp_path)


def test_openai_base_url_is_the_default_server(scripted_server, tmp_path, monkeypatch):
    server = scripted_server(lambda b: "from env")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    reader, judge = readers_from_args(parse(), tmp_path)
    assert judge is None
    assert [r.text for r in reader.generate([ask("a")])] == ["from env"]
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(ReaderError, match="needs a server address"):
        readers_from_args(parse(), tmp_path)


def test_base_url_repeats_for_several_servers(scripted_server, tmp_path):
    servers = [scripted_server(lambda b: "one"), scripted_server(lambda b: "two")]
    args = parse("--base-url", servers[0].base_url, "--base-url", servers[1].base_url, "--concurrency", "2")
    reader, _ = readers_from_args(args, tmp_path)
    texts = {r.text for r in reader.generate([ask(f"q{i}") for i in range(8)])}
    assert texts == {"one", "two"} and servers[0].count + servers[1].count == 8
    assert reader.describe()["base_urls"] == [s.base_url for s in servers]


def test_template_kwargs_option_reaches_the_requests(scripted_server, tmp_path):
    server = scripted_server(openai_strict(lambda b: "ok"))
    reader, _ = readers_from_args(parse("--base-url", server.base_url, "--template-kwargs", "omit"), tmp_path)
    reader.generate([ReaderRequest.chat([{"role": "user", "content": "hi"}], ScorerConfig().sampling)])
    assert server.count == 1 and "chat_template_kwargs" not in server.requests[0]
