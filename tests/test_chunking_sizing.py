"""The packers' one-pass sizing (`_Sizer`, `_UnitTokens`) held to the real Qwen-vocabulary BPE (`qwen_bpe`)
on small made-up text, fast enough to run once per mutant.

Units long enough to be sized in several blocks of `SIZING_BLOCK` sentences, with the seams between blocks
where they are hardest: a first block with no space cut at all, blocks that start with a one-letter word
(" A" is one token where the block alone sees "A"), a last block of one word (no cut after its seam).
Every prefix count read from the pass, every estimate and every chunk count must be the tokenizer's own,
and a chunk must be counted from the pass (only the characters around its stretches tokenised again), not
whole.
"""

from __future__ import annotations

import random

import pytest

from tasks.chunking import SIZING_BLOCK, _Laid, _Sizer, pack, pack_units, split_sentences

WORDS = ["A", "I", "cat", "sat", "on", "the", "mat", "don't", "1999", "na\u00efve", "x", "Hello", "(a)", "--", "3.5"]
ENDS = [".", "!", "?", '."', ")."]
GAPS = [" ", "  ", "\n", "\n\n", " \n", "\t"]


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) + rng.choice(ENDS)


def made_up(rng: random.Random, sentences: int) -> str:
    return "".join(sentence(rng) + rng.choice(GAPS) for _ in range(sentences - 1)) + sentence(rng)


RNG = random.Random(11)
UNITS = [
    "\n".join(f"Word{k}." for k in range(SIZING_BLOCK)) + "\nThe rest of it has spaces. And more of them follow.",
    " ".join(f"We saw {k}." for k in range(SIZING_BLOCK)) + " A cat sat. " + made_up(RNG, 7) + " I am here. Yes.",
    " ".join(f"We saw {k}." for k in range(2 * SIZING_BLOCK)) + " End.",
    *(made_up(RNG, n) for n in (1, 3, 9, 17, 26, 40)),
]
assert all(not s.isspace() for u in UNITS for s in split_sentences(u))  # no blank sentence: all text is sized


class Recording:
    """The tokenizer, keeping every text the packers count with `count_many` (the sizing pass scans)."""

    def __init__(self, counter):
        self.inner = counter
        self.splits_at_spaces = counter.splits_at_spaces
        self.counted: list[str] = []

    def count(self, text):
        return self.inner.count(text)

    def count_many(self, texts):
        self.counted.extend(texts)
        return self.inner.count_many(texts)

    def scan(self, texts):
        return self.inner.scan(texts)

    def describe(self):
        return self.inner.describe()


def space_cuts(text: str) -> list[int]:
    return [p for p in range(1, len(text)) if text[p] == " " and not text[p - 1].isspace()]


@pytest.fixture
def sized(qwen_bpe):
    sizer = _Sizer(Recording(qwen_bpe), UNITS)
    return sizer, sizer.sentences(keep_first_line=False)


def test_the_units_are_sized_in_several_blocks_with_seams_to_correct(sized):
    sizer, _ = sized
    assert [len(t.windows) for t in sizer._tokens] == [1, 2, 1, 0, 0, 0, 2, 3, 4]


def test_every_prefix_count_at_a_space_cut_is_the_tokenizers(qwen_bpe, sized):
    sizer, _ = sized
    for unit, tokens in zip(UNITS, sizer._tokens, strict=True):
        cuts = space_cuts(unit)
        assert [tokens.count_to(p) for p in cuts] == qwen_bpe.count_many([unit[:p] for p in cuts])


def test_each_sentence_is_placed_and_its_blocks_tokens_shared_out(qwen_bpe, sized):
    """Each sentence knows where it is in its unit, and its estimate is the tokens of its block that start in
    it: per block, the estimates add up to the block's count."""
    _, pieces = sized
    assert [p.text for p in pieces] == [s for u in UNITS for s in split_sentences(u)]
    assert all(UNITS[p.unit][p.start : p.end] == p.text for p in pieces)
    for u, unit in enumerate(UNITS):
        spans = split_sentences(unit)
        blocks = ["".join(spans[k : k + SIZING_BLOCK]) for k in range(0, len(spans), SIZING_BLOCK)]
        estimates = [p.tokens for p in pieces if p.unit == u]
        sums = [sum(estimates[k : k + SIZING_BLOCK]) for k in range(0, len(estimates), SIZING_BLOCK)]
        assert sums == qwen_bpe.count_many(blocks)


SEPS = ["\n\n", " | ", " ", "\n"]
WRAPS = [
    lambda i, body: body,
    lambda i, body: f"[{i}] {body}",
    lambda i, body: f"Part {i} of the record:\n{body}\n(end of part {i})",
]


def test_chunk_counts_from_the_pass_are_the_tokenizers(qwen_bpe, sized):
    """Stretches cut anywhere (mid-word too), joined by several separators and wrapped several ways."""
    sizer, _ = sized
    rng = random.Random(5)
    laid = []
    for i in range(120):
        spans = []
        for _ in range(rng.randint(1, 3)):
            u = rng.randrange(len(UNITS))
            a, b = sorted(rng.sample(range(len(UNITS[u]) + 1), 2))
            spans.append((u, a, b))
        sep = rng.choice(SEPS)
        body = sep.join(UNITS[u][a:b] for u, a, b in spans)
        laid.append(_Laid(spans, sep, body, rng.choice(WRAPS)(i, body)))
    sizer.counter.counted.clear()
    assert sizer.count(laid) == qwen_bpe.count_many([c.text for c in laid])
    assert sum(map(len, sizer.counter.counted)) < 0.3 * sum(len(c.text) for c in laid)  # from the pass


def test_a_chunk_not_laid_out_as_said_is_counted_whole(qwen_bpe, sized):
    sizer, _ = sized
    unit = UNITS[5]
    laid = [
        _Laid([(5, 0, 40)], " ", unit[:39], f"<0> {unit[:39]}"),  # its stretch is not its body
        _Laid([(5, 0, 40)], " ", unit[:40], f"<1> {unit[:39]}"),  # its body is not in its text
    ]
    assert sizer.count(laid) == qwen_bpe.count_many([c.text for c in laid])


@pytest.mark.parametrize("wrap", WRAPS[:2], ids=["bare", "wrapped"])
def test_the_packers_count_chunks_from_the_pass(qwen_bpe, wrap):
    counter = Recording(qwen_bpe)
    chunks = pack_units(UNITS, counter, 160, wrap=wrap)
    assert [c.units for c in chunks] == [(0, 1), (2, 3, 4), (5,), (6,), (7,), (7,), (8,), (8,), (8,)]
    assert max(qwen_bpe.count_many([c.text for c in chunks])) <= 160
    assert sum(map(len, counter.counted)) < 0.3 * sum(len(c.text) for c in chunks)
    counter.counted.clear()
    chunks = pack(UNITS, counter, 64, wrap=wrap)
    assert max(qwen_bpe.count_many([c.text for c in chunks])) <= 64
    assert sum(map(len, counter.counted)) < 0.3 * sum(len(c.text) for c in chunks)
