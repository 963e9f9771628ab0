"""BM25 retrieval: parity with rank-bm25's Okapi on real text, and the edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from benchmark.retrieval import MemoryIndex, tokenize
from tasks.chunking import split_sentences
from tasks.sources.squad import read_squad_file


@pytest.mark.realdata
def test_top_k_matches_rank_bm25_okapi_on_real_text(raw_dir):
    paragraphs = read_squad_file(next((raw_dir / "squad").glob("*.json")))[:300]
    entries = [s.strip() for p in paragraphs for s in split_sentences(p.context) if s.strip()]
    questions = [qa.question for p in paragraphs for qa in p.qas][:400]
    assert len(entries) > 1000
    ours = MemoryIndex(entries)
    reference = BM25Okapi([tokenize(e) for e in entries], k1=1.5, b=0.75, epsilon=0.0)
    exact_sets = 0
    for question in questions:
        k = 20
        got = ours.search(question, k)
        scores = reference.get_scores(tokenize(question))
        positive = np.sort(scores[scores > 0])[::-1][:k]
        # the same scores in the same order (ties may swap equal-scored entries)
        np.testing.assert_allclose(scores[got], positive, rtol=1e-4)
        expected = set(np.flatnonzero(scores > 0)[np.argsort(-scores[scores > 0], kind="stable")][:k])
        exact_sets += set(got) == expected
    assert exact_sets >= 0.97 * len(questions)  # differences only where scores tie at the k boundary


def test_ties_follow_memory_order_and_k_is_capped():
    index = MemoryIndex(["apple pie", "banana bread", "apple pie", "cherry tart", "plum cake", "fig roll"])
    assert index.search("apple", 10) == [0, 2]
    assert index.search("apple", 1) == [0]


def test_empty_memory_oov_query_and_blank_entries():
    assert MemoryIndex([]).search("anything", 5) == []
    index = MemoryIndex(["the cat sat on the mat", "dogs bark loudly", "birds sing at dawn", "", "  "])
    assert index.search("zebra unicorn", 5) == []
    assert index.search("?!", 5) == []
    assert index.search("dogs", 0) == []
    assert index.search("DOGS bark!", 5) == [1]
    assert MemoryIndex(["", "..."]).search("x", 3) == []


def test_tokenize_matches_the_original_word_regex():
    assert tokenize("Where's the U.S. Capitol, built 1793?") == ["where", "s", "the", "u", "s", "capitol", "built", "1793"]
