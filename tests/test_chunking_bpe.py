"""Chunking under a real Qwen-vocabulary BPE (`qwen_bpe` fixture) on real SQuAD text.

Under the `simple` counter token counts add up exactly, so the exact re-pack and give-back paths never
run; under a BPE they do (tokens merge across the joins of sentences, units and wrappers). These tests
make them run and hold the limit and the text to account.
"""

from __future__ import annotations

import random
import re

import pytest

import tasks.chunking as chunking
from tasks import wrappers
from tasks.chunking import pack, pack_units
from tasks.sources.squad import read_squad_file

pytestmark = pytest.mark.realdata


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def dialogue(i: int, body: str) -> str:
    return wrappers.dialogue(body, wrappers.date_for(i), random.Random(i))


@pytest.fixture(scope="module")
def paragraphs(raw_dir) -> list[str]:
    (path,) = sorted((raw_dir / "squad").glob("*.json"))
    return [p.context for p in read_squad_file(path)][:300]


@pytest.fixture
def exact_repacks(monkeypatch) -> list[int]:
    """Chunk indices re-packed exactly because their draft, counted, was over the limit."""
    calls: list[int] = []
    original = chunking._exact_chunk

    def spy(queue, index, *args):
        calls.append(index)
        return original(queue, index, *args)

    monkeypatch.setattr(chunking, "_exact_chunk", spy)
    return calls


def test_the_helper_is_qwens_vocabulary(qwen_bpe):
    tok = qwen_bpe._tok
    assert tok.encode("Hello world", add_special_tokens=False).ids == [9707, 1879]
    assert tok.encode("<think>", add_special_tokens=False).ids == [151667]
    assert tok.encode("<|im_start|>", add_special_tokens=False).ids == [151644]


@pytest.mark.parametrize("wrap", [None, dialogue], ids=["bare", "dialogue"])
def test_sentence_packing_repacks_overflowing_drafts_exactly(qwen_bpe, paragraphs, exact_repacks, wrap):
    limit = 128
    chunks = pack(paragraphs, qwen_bpe, limit, wrap=wrap)
    counts = qwen_bpe.count_many([c.text for c in chunks])
    assert exact_repacks, "no draft overflowed: the exact re-pack path did not run"
    assert max(counts) <= limit
    assert sum(counts) / len(counts) > 0.8 * limit  # full chunks, not a packer that plays safe
    assert norm(" ".join(c.body for c in chunks)) == norm(" ".join(paragraphs))  # nothing dropped or repeated
    if wrap is not None:
        assert all(c.text == wrap(i, c.body) for i, c in enumerate(chunks))


def test_variable_budgets_hold_under_bpe(qwen_bpe, paragraphs):
    sizes = random.Random(7)
    budgets = [sizes.randint(100, 2048) for _ in range(400)]
    chunks = pack(paragraphs, qwen_bpe, lambda i: budgets[i], wrap=dialogue)
    counts = qwen_bpe.count_many([c.text for c in chunks])
    assert all(n <= budgets[i] for i, n in enumerate(counts))
    assert norm(" ".join(c.body for c in chunks)) == norm(" ".join(paragraphs))


def test_whole_units_give_back_what_the_estimates_let_in(qwen_bpe, raw_dir):
    """Short units without final punctuation (SQuAD's gold answers): each unit's count, the separators' and
    the empty wrapper's add up to one token less than the joined chunk (the wrapper's blank line becomes
    two line breaks around the body), so the estimate lets in a unit that the exact count sends on."""
    (path,) = sorted((raw_dir / "squad").glob("*.json"))
    units = [qa.answers[0] for p in read_squad_file(path) for qa in p.qas][:600]
    limit = 96
    chunks = pack_units(units, qwen_bpe, limit, wrap=dialogue)
    assert max(qwen_bpe.count_many([c.text for c in chunks])) <= limit
    unit_tokens = qwen_bpe.count_many(units)
    sep = qwen_bpe.count("\n\n")
    given_back = 0
    for i, chunk in enumerate(chunks):
        assert chunk.body == "\n\n".join(units[u] for u in chunk.units)  # whole units, in order
        following = chunk.units[-1] + 1
        estimate = qwen_bpe.count(dialogue(i, "")) + sum(unit_tokens[u] + sep for u in chunk.units) - sep
        if following < len(units) and estimate + sep + unit_tokens[following] <= limit:
            given_back += 1  # the estimate let the next unit in; the exact count sent it on
    assert given_back, "the give-back path did not run"
    assert [u for c in chunks for u in c.units] == list(range(len(units)))


def test_a_unit_over_the_limit_is_cut_by_sentences_and_keeps_its_title(qwen_bpe, paragraphs):
    article = "Title: A long article\n" + " ".join(paragraphs[:6])
    units = [paragraphs[10], article, paragraphs[11]]
    limit = 400
    chunks = pack_units(units, qwen_bpe, limit, wrap=dialogue, keep_first_line=True)
    assert max(qwen_bpe.count_many([c.text for c in chunks])) <= limit
    assert chunks[0].units == (0,) and chunks[-1].units == (2,)
    parts = [c for c in chunks if c.units == (1,)]
    assert len(parts) > 1 and parts[0].body.startswith("Title: A long article\n")
    assert parts[0].body.split("\n", 1)[1].strip()  # the title line is not alone in its chunk
    assert norm(" ".join(c.body for c in parts)) == norm(article)
