"""Sentence splitting and packing: limits hold, nothing is lost or repeated."""

from __future__ import annotations

import random
import re

import pytest

import tasks.chunking as chunking
from tasks.chunking import chunk_text, pack, split_sentences
from tasks.tokenization import SimpleCounter

COUNTER = SimpleCounter()


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_split_sentences_round_trips_and_splits_on_ends_and_lines():
    text = 'He said "Stop!" Then left. Was it over? Yes.\nNew paragraph here.  Last one'
    spans = split_sentences(text)
    assert "".join(spans) == text
    assert [s.strip() for s in spans] == [
        'He said "Stop!"',
        "Then left.",
        "Was it over?",
        "Yes.",
        "New paragraph here.",
        "Last one",
    ]


def test_chunks_respect_limit_and_keep_all_text():
    sentences = [f"Sentence number {i} talks about topic {i % 7} at some length." for i in range(3000)]
    text = " ".join(sentences)
    chunks = chunk_text(text, COUNTER, 200)
    assert all(COUNTER.count(c.text) <= 200 for c in chunks)
    assert norm(" ".join(c.text for c in chunks)) == norm(text)
    # whole sentences: every chunk ends at a sentence end
    assert all(c.text.endswith(".") for c in chunks)


def test_oversized_sentence_and_word_are_split_not_dropped():
    long_sentence = " ".join(f"word{i}" for i in range(500)) + "."
    giant_word = "x" * 5000
    chunks = pack(["Short one. " + long_sentence, giant_word], COUNTER, 50)
    assert all(COUNTER.count(c.text) <= 50 for c in chunks)
    joined = "".join(c.body for c in chunks).replace(" ", "").replace("\n", "")
    assert joined == ("Short one. " + long_sentence + giant_word).replace(" ", "")


def test_wrapper_counts_toward_limit_and_units_are_tracked():
    wrap = lambda i, body: f"[chunk {i} of the reading log]\n{body}"  # noqa: E731
    units = [f"Paragraph {u}. " + "Some filler sentence here. " * 10 for u in range(20)]
    chunks = pack(units, COUNTER, 120, wrap=wrap)
    assert all(COUNTER.count(c.text) <= 120 for c in chunks)
    assert all(c.text.startswith(f"[chunk {i} ") for i, c in enumerate(chunks))
    assert sorted({u for c in chunks for u in c.units}) == list(range(20))
    assert norm(" ".join(c.body for c in chunks)) == norm(" ".join(units))


def test_variable_budgets_are_used_per_chunk():
    budgets = [30, 60, 90] * 50
    text = " ".join(f"Item {i} is here." for i in range(600))
    chunks = pack([text], COUNTER, lambda i: budgets[i])
    counts = [COUNTER.count(c.text) for c in chunks]
    assert all(n <= budgets[i] for i, n in enumerate(counts))
    assert max(counts[1::3]) > 30  # the larger budgets are actually filled


def test_wrapper_larger_than_budget_is_an_error():
    with pytest.raises(ValueError, match="no room"):
        pack(["text"], COUNTER, 3, wrap=lambda i, b: "a b c d e f " + b)


class WhitespaceCounter:
    """Counts words and every whitespace character: joining units adds tokens the estimates miss."""

    def count(self, text: str) -> int:
        return len(re.findall(r"\S+|\s", text))

    def count_many(self, texts):
        return [self.count(t) for t in texts]


def test_estimate_overflows_are_repacked_exactly():
    counter = WhitespaceCounter()
    units = [f"Unit {u} first. Unit {u} second one here." for u in range(40)]
    chunks = pack(units, counter, 30, wrap=lambda i, b: f"#{i}\n{b}")
    assert all(counter.count(c.text) <= 30 for c in chunks)
    assert [c.text.split("\n", 1)[0] for c in chunks] == [f"#{i}" for i in range(len(chunks))]
    assert norm(" ".join(c.body for c in chunks)) == norm(" ".join(units))


def test_list_markers_stay_with_their_text():
    text = "Facts:\n0. Paris is the capital. 1. Rome is in Italy.\n2. Done. It was founded in 1990. Next"
    spans = split_sentences(text)
    assert "".join(spans) == text
    assert [s.strip() for s in spans] == [
        "Facts:",
        "0. Paris is the capital.",
        "1. Rome is in Italy.",
        "2. Done.",
        "It was founded in 1990.",
        "Next",
    ]


def test_sentence_ends_are_where_the_plain_rule_puts_them():
    """The splitter's pattern starts with the punctuation (faster to scan); its sentences end where the
    plain rule ends them: after . ! ? (and closing quotes or brackets) plus the white space that follows
    (seen with a look-behind here), or after a line break and the white space that follows."""
    rule = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"'\u201d\u2019)\]]*\s+|\n\s*")
    rng = random.Random(5)
    alphabet = [*"ab1 .!?\n\t\"')]\u3002\u201d\uff1f", "\r\n", "  "]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        ends = [m.end() for m in rule.finditer(text)]
        expected = [text[a:b] for a, b in zip([0, *ends], [*ends, len(text)], strict=True) if b > a]
        assert split_sentences(text) == chunking._merge_markers(expected), repr(text)
