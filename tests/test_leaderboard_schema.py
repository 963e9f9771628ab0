"""The published JSON Schema of submission.json: the committed file is the generated one, it is a valid
draft 2020-12 schema, and it accepts exactly the files our validator accepts (hundreds of variants of good
metadata, one rule at a time, and the bad examples of test_leaderboard_validate)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from leaderboard_helpers import memory_line, metadata
from test_leaderboard_validate import GALLERY

from benchmark.cli import main
from leaderboard.schema import SCHEMA_FILE, schema_text
from leaderboard.submission import FIELD_CHARS, MAX_TRAINED_ON, check_meta
from tasks.registry import get_suite

HASH = "0123456789abcdef" * 4
SQUAD = metadata(("task", "squad"), {"squad": HASH})
SUITE = metadata(("suite", "memalpha-val"), dict.fromkeys(get_suite("memalpha-val").tasks, HASH))

TEXTS = [
    "ok",
    '漢字 <b>markup</b> 🧠 & "quotes"',
    "",
    "   ",
    "\u00a0\u3000",
    "TODO: fill this in",
    "  TODO: indented",
    "TODO without a colon",
    "bell\x07",
    "tab\tand more",
    "two\nlines",
    "carriage\rreturn",
    "next line\x85",
    "override\u202eevil",
    "isolate\u2066x",
    "lone \ud800 surrogate",
    "soft\u00adhyphen",
    "zero\u200bwidth",
    "joiner\u200dx",
    "variation\ufe0f",
    "tag\U000e0041",
    "byte order\ufeffmark",
    "musical\U0001d173",
    "a/b",
    "a\\b",
    "..",
    "v1..2",
    "1.0",
    "https://example.org/a?q=1#x",
    "HTTP://EXAMPLE.ORG",
    "http://",
    "http:///path",
    "https://[::1",
    "https://exa mple.org",
    "javascript:alert(1)",
    "ftp://example.org",
    " https://example.org",
]
OTHER_VALUES: list[Any] = [None, 0, 1.5, True, [], {}, ["x"], {"a": 1}]
TEXT_FIELDS = ["model", "parameters", "link", "contact", "license", "description"]


def with_value(meta: dict, path: tuple[str | int, ...], value: Any) -> dict:
    out = copy.deepcopy(meta)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def without(meta: dict, path: tuple[str, ...]) -> dict:
    out = copy.deepcopy(meta)
    target = out
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return out


def variants() -> list[tuple[str, Any]]:
    """Good metadata with one thing changed at a time (some stay good)."""
    out: list[tuple[str, Any]] = [("squad", SQUAD), ("suite", SUITE), ("not an object", ["x"])]
    paths: list[tuple[str | int, ...]] = [("agent", "name"), ("agent", "version"), ("trained_on", 0)]
    paths += [(f,) for f in TEXT_FIELDS]
    base = with_value(SQUAD, ("trained_on",), ["squad"])
    for path in paths:
        for value in [*TEXTS, *OTHER_VALUES]:
            out.append((f"{path}={value!r}", with_value(base, path, value)))
        limit = FIELD_CHARS[".".join(str(p) for p in path if isinstance(p, str))]
        for n in (limit, limit + 1):
            out.append((f"{path} of {n} characters", with_value(base, path, "n" * n)))
    for key in ["format", "agent", "model", "link", "trained_on", "task", "task_hashes", "description"]:
        out.append((f"without {key}", without(SQUAD, (key,))))
    out.append(("without agent.version", without(SQUAD, ("agent", "version"))))
    out += [
        ("unknown field", {**SQUAD, "extra": 1}),
        ("unknown agent field", with_value(SQUAD, ("agent", "team"), "x")),
        ("other format", {**SQUAD, "format": "memalpha-bench/submission@2"}),
        ("both boards", {**SQUAD, "suite": "memalpha-val"}),
        ("unknown task", {**SQUAD, "task": "squadd"}),
        ("placeholder board", {**SQUAD, "task": "TODO: a board"}),
        ("a one-task suite", metadata(("suite", "conversation"), {"locomo": HASH})),
        ("suite missing a task", with_value(SUITE, ("task_hashes",), {"squad": HASH})),
        ("hash of another task", with_value(SQUAD, ("task_hashes", "hotpotqa"), HASH)),
        ("upper-case hash", with_value(SQUAD, ("task_hashes", "squad"), HASH.upper())),
        ("hash and a newline", with_value(SQUAD, ("task_hashes", "squad"), HASH + "\n")),
        ("short hash", with_value(SQUAD, ("task_hashes", "squad"), HASH[:-1])),
        ("hash not a string", with_value(SQUAD, ("task_hashes", "squad"), 7)),
        ("hashes a list", with_value(SQUAD, ("task_hashes",), [HASH])),
        ("trained_on at the limit", with_value(SQUAD, ("trained_on",), ["x"] * MAX_TRAINED_ON)),
        ("trained_on over the limit", with_value(SQUAD, ("trained_on",), ["x"] * (MAX_TRAINED_ON + 1))),
        ("trained_on a string", with_value(SQUAD, ("trained_on",), "squad")),
        ("agent a string", with_value(SQUAD, ("agent",), "me")),
    ]
    return out


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_published_file_is_the_generated_schema(capsys):
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), "regenerate: memalpha leaderboard schema --out"
    assert main(["leaderboard", "schema"]) == 0
    assert capsys.readouterr().out == schema_text()


def test_the_schema_accepts_exactly_what_the_validator_accepts(validator):
    cases = variants()
    disagree, accepted = [], 0
    for name, meta in cases:
        ours = not check_meta(meta).problems
        accepted += ours
        if ours != validator.is_valid(meta):
            disagree.append((name, "validator accepts" if ours else "schema accepts"))
    assert not disagree
    assert accepted > 100 and len(cases) - accepted > 200  # both verdicts are well represented


BREAKS_METADATA = {
    "malformed task hash",
    "path tricks in names",
    "parent-folder name",
    "control characters in names",
    "bidirectional override in a name",
    "script link",
    "placeholders left from init",
    "schema",
    "unknown board",
    "oversized field",
}


@pytest.mark.parametrize("case", [c for c in GALLERY if c != "truncated submission.json"])
def test_the_bad_examples_of_submission_json_are_rejected(validator, case):
    """The gallery cases that break submission.json's fields are rejected by the schema; the others (memories,
    task data, sizes, versions against the data) are `validate`'s, and their metadata passes both."""
    mutate, _, _ = GALLERY[case]
    meta, _ = mutate(
        metadata(("task", "squad"), {"squad": HASH}), [memory_line("squad", i) for i in ("v0", "v1", "v2")]
    )
    assert validator.is_valid(meta) == (not check_meta(meta).problems) == (case not in BREAKS_METADATA)
