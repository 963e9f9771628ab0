"""tasks.strict_json: what Python's json lets through (or crashes on) is refused with its place; what is
valid JSON within the limits decodes exactly as json does; records split on "\\n" only."""

from __future__ import annotations

import io
import json

import pytest

from tasks.errors import TaskError, quoted, shortened
from tasks.strict_json import (
    MAX_DEPTH,
    JsonInputError,
    JsonProblem,
    decode,
    decode_reply,
    load_file,
    read_records,
    record_lines,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def problem(text: str | bytes) -> JsonProblem:
    with pytest.raises(JsonProblem) as caught:
        decode(text)
    return caught.value


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, -2, 3.5, True, None, "x"], "b": {"c": ""}},
        {"emoji": "\U0001f600", "nel": "a\x85b\u2028c\u2029d", "tab": "\t", "group separator": "\x1d"},
        2**63 - 1,
        -(2**63),
        1e308,
        "back\\slash u0000 \\u0000 \\b",  # escaped backslashes: text, not escapes
        json.loads(nested(MAX_DEPTH)),
    ],
)
def test_valid_json_within_the_limits_decodes_as_json_does(value):
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert decode(text) == json.loads(text) == value
        assert decode(text.encode()) == value


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (nested(MAX_DEPTH + 1), "[0][0][0][0][0][0][0][0]… (56 levels more)", f"nested deeper than {MAX_DEPTH} levels"),
        (nested(100_000), "", "nested deeper than 64 levels"),  # RecursionError inside json
        ('{"a": ' + "1" * 5000 + "}", "a", "an integer of 5,000 digits"),  # ValueError inside json
        ('{"a": [0, 9223372036854775808]}', "a[1]", "the integer 9223372036854775808 is outside the signed 64-bit"),
        ('{"a": NaN}', "a", "NaN is not a JSON value"),
        ("[1, -Infinity]", "[1]", "-Infinity is not a JSON value"),
        ('{"a": 1e400}', "a", "the number '1e400' is too large to represent"),
        ('{"a": {"b": "x\\ud800"}}', "a.b", "the text holds a lone surrogate U+D800 (half of a UTF-16 pair) at"),
        ('["\\ude00\\ud83d"]', "[0]", "lone surrogate U+DE00"),
        ('{"\\ud800": 1}', "\ud800", "the key holds a lone surrogate U+D800"),
        ('{"a": {"b\\u001bc": 1}}', "a.b\x1bc", "the key holds the control character U+001B at position 1"),
        ('{"a": 1, "b": {"c": 1, "c": 2}}', "b", "the key 'c' is given twice in one object"),
        ('{"k": 1, "k": 1}', "", "the key 'k' is given twice"),
    ],
)
def test_what_json_lets_through_is_refused_with_its_field(text, field, message):
    found = problem(text)
    assert (found.field, message in found.message) == (field, True), found.message


def test_the_first_problem_in_document_order_is_named():
    assert problem('{"a": [1, NaN], "b": "\\ud800"}').field == "a[1]"
    assert problem('[{"x": 1}, {"y": "\\udfff", "z": Infinity}]').field == "[1].y"


def test_syntax_and_encoding_errors_name_the_line():
    bad = problem('{\n  "a": 1,\n  "b": \n}')
    assert (bad.line, bad.message) == (4, "not valid JSON (Expecting value, column 1)")
    assert problem(b'{\n"a": "\xff"}').line == 2 and "not UTF-8 text (byte 8)" in problem(b'{\n"a": "\xff"}').message
    assert "Invalid control character" in problem('"a\x01b"').message  # raw controls are not JSON at all


def test_long_keys_and_paths_are_cut_in_the_field():
    found = problem(json.dumps({"k" * 5000: [float("nan")]}, allow_nan=True))
    assert found.field == "k" * 40 + "…[0]"


def test_files_and_lines_are_named_in_the_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"stats": {"n": 1e999}}')
    with pytest.raises(JsonInputError, match=r"config\.json, field 'stats\.n': the number '1e999' is too large"):
        load_file(path)
    with pytest.raises(TaskError, match=r"missing\.json: cannot read this run config"):
        load_file(tmp_path / "missing.json", "run config")
    records = tmp_path / "r.jsonl"
    records.write_bytes(b'{"a": 1}\n\n{"a": NaN}\n')
    with pytest.raises(JsonInputError, match=r"r\.jsonl, line 3, field 'a': NaN") as caught:
        list(read_records(records))
    assert caught.value.line == 3


def test_records_split_on_newline_only():
    texts = ["a\u2028b", "c\u2029d", "e\x85f", "g\x1ch\x1di\x1ej", "k\x0bl\x0cm", "n\ro"]
    raw = b"".join(json.dumps({"t": t}, ensure_ascii=False).encode() + b"\r\n" for t in texts) + b"  \n"
    assert raw.decode().splitlines() != raw.decode().split("\r\n")  # what str.splitlines would have done
    lines = list(record_lines(io.BytesIO(raw)))
    assert [n for n, _ in lines] == [1, 2, 3, 4, 5, 6]
    assert [decode(line)["t"] for _, line in lines] == texts


def test_echoed_input_is_cut_with_its_length():
    assert quoted("abc") == "'abc'" and quoted(7) == "7"
    assert quoted("x" * 1_000_000) == repr("x" * 60) + "… (1,000,000 characters)"
    assert shortened("y" * 100, 10) == "yyyyyyyyyy… (100 characters)" and shortened("id-1") == "id-1"


def test_a_reply_is_refused_only_for_what_would_crash_or_corrupt_text():
    """decode_reply: orjson's speed for a plain reply, json's for what orjson refuses (NaN, a byte-order
    mark), the strict reader's refusal where json gives up or an escape is a lone surrogate, on either
    path; repeated keys, NaN and control characters in keys, which a reply's reader never looks at, pass."""
    assert decode_reply(b'{"a": [1, 2.5, "\\u00e9\\ud83d\\ude42"]}') == {"a": [1, 2.5, "é🙂"]}  # a whole pair
    assert decode_reply(b'{"a": 1, "a": 2, "b": NaN}')["a"] == 2
    assert decode_reply(b'\xef\xbb\xbf{"a": "\\ud83d\\ude42", "b": 1e999}') == {"a": "🙂", "b": float("inf")}
    assert decode_reply(b'{"\\u0001": 1}') == {"\x01": 1}
    for data, message in [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
        (b'{"n": ' + b"7" * 5000 + b"}", "an integer of 5,000 digits"),
        (b'{"c": "Par\\ud800is"}', r"lone surrogate U\+D800"),
        (b'{"c": "Par\\udc00is", "n": NaN}', r"lone surrogate U\+DC00"),  # read by json, not orjson
        (b'{"c": "Par', "not valid JSON"),
    ]:
        with pytest.raises(JsonProblem, match=message):
            decode_reply(data)
