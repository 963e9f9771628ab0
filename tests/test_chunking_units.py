"""`pack_units` and `chunk_text` on inputs whose token counts can be read by eye (the `simple` counter: one
token per word or punctuation mark): the separator and the wrapper count toward each chunk's target,
`flush` closes a chunk early, a unit over the limit is cut into chunks numbered on from its position, and
a budget function needs a limit. Each expected packing is worked out in the comments."""

from __future__ import annotations

import pytest

from tasks.chunking import Chunk, chunk_text, pack_units
from tasks.tokenization import get_counter

COUNTER = get_counter("simple")
UNITS = ["a b", "c d e", "f", "g h i j"]  # 2, 3, 1 and 4 tokens


def texts(chunks: list[Chunk]) -> list[tuple[str, tuple[int, ...]]]:
    return [(c.text, c.units) for c in chunks]


def test_the_separator_counts_toward_the_target():
    # " | " is one token: 2 + 1 + 3 = 6 fits a target of 6, adding "f" (+ 2) does not; then 1 + 1 + 4 = 6
    chunks = pack_units(UNITS, COUNTER, lambda i: 6, limit=100, sep=" | ")
    assert texts(chunks) == [("a b | c d e", (0, 1)), ("f | g h i j", (2, 3))]
    # without a counted separator the first chunk would take "f" too: 2 + 3 + 1 = 6
    assert texts(pack_units(UNITS, COUNTER, lambda i: 6, limit=100, sep="  ")) == [
        ("a b  c d e  f", (0, 1, 2)),
        ("g h i j", (3,)),
    ]


def test_the_wrapper_counts_toward_the_target_and_each_chunk_takes_one_unit_at_least():
    # "[i] " is 3 tokens: 3 + 2 = 5, + 1 + 3 > 6; 3 + 3 = 6; 3 + 1 = 4, + 1 + 4 > 6; 3 + 4 = 7 > 6 but alone
    chunks = pack_units(UNITS, COUNTER, lambda i: 6, limit=100, sep=" | ", wrap=lambda i, body: f"[{i}] {body}")
    assert texts(chunks) == [("[0] a b", (0,)), ("[1] c d e", (1,)), ("[2] f", (2,)), ("[3] g h i j", (3,))]
    assert [c.body for c in chunks] == UNITS


def test_flush_closes_a_chunk_once_it_holds_enough():
    chunks = pack_units(UNITS, COUNTER, 100, sep=" | ", flush=3)
    assert texts(chunks) == [("a b | c d e", (0, 1)), ("f | g h i j", (2, 3))]  # 2 < 3, then 6 >= 3; 1, then 6
    assert texts(pack_units(UNITS, COUNTER, 100, sep=" | ", flush=2)) == [
        ("a b", (0,)),
        ("c d e", (1,)),
        ("f | g h i j", (2, 3)),
    ]


def test_a_unit_over_the_limit_is_cut_into_chunks_numbered_on_from_its_place():
    long = "One two three. Four five six. Seven eight nine."  # three sentences of 4 tokens each
    chunks = pack_units(["x", long, "y"], COUNTER, 9, sep=" ", wrap=lambda i, body: f"<{i}> {body}")
    assert [c.text for c in chunks] == [
        "<0> x",
        "<1> One two three.",
        "<2> Four five six.",
        "<3> Seven eight nine.",
        "<4> y",
    ]
    assert [c.units for c in chunks] == [(0,), (1,), (1,), (1,), (2,)]
    assert all(COUNTER.count(c.text) <= 9 for c in chunks)


def test_a_title_line_stays_with_its_sentence_only_when_asked():
    """Title (1 token) + a 5-token sentence overflow a 5-token limit: by default the title is a chunk of its
    own; kept with its sentence, the sentence is cut at words instead."""
    unit = "Title\nOne two three four. Five six seven eight."
    plain = pack_units([unit], COUNTER, 5)
    assert [c.text for c in plain] == ["Title", "One two three four.", "Five six seven eight."]
    kept = pack_units([unit], COUNTER, 5, keep_first_line=True)
    assert [c.text for c in kept] == ["Title\nOne two three", "four.", "Five six seven eight."]


def test_a_budget_function_needs_a_limit():
    with pytest.raises(ValueError, match=r"^pack_units: a budget function needs an explicit `limit`$"):
        pack_units(UNITS, COUNTER, lambda i: 6)


def test_chunk_text_wraps_each_chunk():
    chunks = chunk_text("One two three. Four five six.", COUNTER, 7, wrap=lambda i, body: f"#{i} {body}")
    assert [c.text for c in chunks] == ["#0 One two three.", "#1 Four five six."]
