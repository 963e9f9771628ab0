"""BM25 retrieval: parity with rank-bm25's Okapi on real text, and the edge cases."""

from __future__ import annotations

import bm25s
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
        best = np.sort(scores)[::-1][:k]
        # the same scores in the same order (ties may swap equal-scored entries)
        np.testing.assert_allclose(scores[got], best, rtol=1e-4)
        expected = set(np.argsort(-scores, kind="stable")[:k])
        exact_sets += set(got) == expected
    assert exact_sets >= 0.97 * len(questions)  # differences only where scores tie at the k boundary


@pytest.mark.realdata
def test_scores_equal_bm25s_atire_robertson(raw_dir):
    paragraphs = read_squad_file(next((raw_dir / "squad").glob("*.json")))[:200]
    entries = [p.context for p in paragraphs]
    questions = [qa.question for p in paragraphs for qa in p.qas][:200]
    reference = bm25s.BM25(method="atire", idf_method="robertson", k1=1.5, b=0.75)
    reference.index([tokenize(e) for e in entries], show_progress=False)
    ours = MemoryIndex(entries)
    for question, got in zip(questions, ours.search_many(questions, 10), strict=True):
        scores = reference.get_scores(tokenize(question))
        np.testing.assert_allclose(scores[got], np.sort(scores)[::-1][:10], rtol=1e-5)


def _reference_top_k(entries: list[str], query: str, k: int) -> list[int]:
    """rank-bm25 with the idf floored at 0, top k of a stable descending sort: what MemoryIndex() returns."""
    tokens = tokenize(query)
    if not tokens:
        return []
    scores = BM25Okapi([tokenize(e) or [""] for e in entries], k1=1.5, b=0.75, epsilon=0.0).get_scores(tokens)
    return sorted(range(len(entries)), key=lambda i: -scores[i])[:k]


def test_batch_search_equals_single_searches_across_entry_boundaries_and_blocks(monkeypatch):
    """The index tokenises every entry of a memory in one pass over their joined text and tells entries
    apart by offset: words next to an entry's edge, entries with line breaks, entries whose lower-casing
    changes their length (İ is two code points lower-cased) and blank entries must each stay in their own
    entry. A batch of queries sharing a long prefix (a query prompt, added once) and split into several
    dense blocks must give what each query alone gives."""
    texts = [f"entry {i} mentions topic{i % 5} and word{i % 3}" for i in range(40)]
    texts[3] = "İstanbul İzmir topic9"  # lower-cased, each İ becomes i + a combining dot: longer text
    texts[4] = "topic9\nsplit over\nlines"
    texts[5] = ""
    texts[6] = "!!!"
    texts[7] = "tail topic7"
    texts[8] = "topic8 head"
    index = MemoryIndex(texts)
    prompt = "Answer from the memory about these topics and words please. "
    queries = [prompt + q for q in ("topic1 word2", "topic4", "nothing here", "entry 12", "topic9", "topic7 topic8")]
    queries += ["istanbul", "lines split", "?!"]
    singles = [index.search(q, 5) for q in queries]
    assert index.search_many(queries, 5) == singles
    assert singles == [_reference_top_k(texts, q, 5) for q in queries]
    assert set(singles[4][:2]) == {3, 4} and set(singles[5][:2]) == {7, 8} and singles[-1] == []
    monkeypatch.setattr("benchmark.retrieval.DENSE_CELLS", 2 * len(texts))  # two queries per dense block
    assert index.search_many(queries, 5) == singles


def test_ties_follow_memory_order_and_k_is_capped():
    index = MemoryIndex(["apple pie", "banana bread", "apple pie", "cherry tart", "plum cake", "fig roll"])
    assert index.search("apple", 10) == [0, 2, 1, 3, 4, 5]  # k best whatever the score, as the original
    assert index.search("apple", 1) == [0]


def test_empty_memory_oov_query_and_blank_entries():
    assert MemoryIndex([]).search("anything", 5) == []
    index = MemoryIndex(["the cat sat on the mat", "dogs bark loudly", "birds sing at dawn", "", "  "])
    assert index.search("zebra unicorn", 3) == [0, 1, 2]  # unknown words: every score 0, memory order
    assert index.search("?!", 5) == []  # no word at all: nothing
    assert index.search("dogs", 0) == []
    assert index.search("DOGS bark!", 2) == [1, 0]
    assert MemoryIndex(["", "..."]).search("x", 3) == [0, 1]
    assert MemoryIndex(["", "..."]).search("...", 3) == []


def test_a_small_memory_is_shown_whole_even_where_idf_is_floored():
    """In 3 entries, a word found in 2 has idf log(1.5/2.5) < 0, floored at 0: every score is 0. The
    original still returned the entries, so must we."""
    index = MemoryIndex(["paris is the capital of france", "paris has the louvre", "rome is in italy"])
    assert index.search("paris", 20) == [0, 1, 2]


def test_tokenize_matches_the_original_word_regex():
    assert tokenize("Where's the U.S. Capitol, built 1793?") == [
        "where",
        "s",
        "the",
        "u",
        "s",
        "capitol",
        "built",
        "1793",
    ]


def test_ties_at_the_k_boundary_keep_memory_order_in_the_batched_path():
    texts = [f"filler entry number {i} about nothing" for i in range(300)]
    for i in (250, 20, 140, 7, 299, 60):
        texts[i] = "apple pie recipe"
    index = MemoryIndex(texts)
    assert index.search_many(["apple"] * 3, 4) == [[7, 20, 60, 140]] * 3
    assert index.search("apple pie", 10) == [7, 20, 60, 140, 250, 299, 0, 1, 2, 3]


@pytest.mark.realdata
def test_array_tokeniser_finds_exactly_the_regex_tokens(raw_dir):
    """The index tokenises without a Python loop; its tokens must be the original's \\w+ words."""
    from benchmark.retrieval import _code_points, _hash_codes

    paragraphs = read_squad_file(next((raw_dir / "squad").glob("*.json")))
    text = "\n".join(p.context for p in paragraphs).lower() + " naïve café_ü 東京 x²"
    assert not text.isascii()
    words = tokenize(text)
    hashes, starts = _hash_codes(_code_points(text))
    assert len(hashes) == len(words) == len(starts)
    assert all(text.startswith(w, s) for w, s in zip(words, starts.tolist(), strict=True))
    seen: dict[str, int] = {}
    for word, h in zip(words, hashes.tolist(), strict=True):
        assert seen.setdefault(word, h) == h  # equal words, equal hashes
    assert len(set(seen.values())) == len(seen)  # no two distinct words collide here


def _original_top_k(entries: list[str], query: str, k: int) -> list[int]:
    """rank-bm25 with its defaults (epsilon 0.25), top k of a stable descending sort (the memory server)."""
    tokens = tokenize(query)
    if not tokens:
        return []
    scores = BM25Okapi([tokenize(e) for e in entries]).get_scores(tokens)
    return sorted(range(len(entries)), key=lambda i: scores[i], reverse=True)[:k]


@pytest.mark.realdata
def test_epsilon_floor_gives_rank_bm25s_ranked_lists_exactly(raw_dir):
    """Memories of 3 to 1,500 real sentences (tiny ones, where the mean idf is negative, with repeated
    entries: exact ties), queries with and without a long query prompt: the same list, ties included."""
    from tasks.catalog import LABEL_PROMPT, SUMMARY_PROMPT

    paragraphs = read_squad_file(next((raw_dir / "squad").glob("*.json")))
    sentences = [s.strip() for p in paragraphs for s in split_sentences(p.context) if s.strip()]
    questions = [qa.question for p in paragraphs for qa in p.qas]
    rng = np.random.default_rng(0)
    for size in (3, 5, 12, 40, 300, 1500):
        for start in rng.integers(0, len(sentences) - size, 3):
            entries = sentences[start : start + size]
            entries += entries[:2] if size <= 12 else []
            prompts = [LABEL_PROMPT, SUMMARY_PROMPT, ""]
            queries = [
                (prompts[i % 3] + "\n\n" if prompts[i % 3] else "") + questions[int(j)]
                for i, j in enumerate(rng.integers(0, len(questions), 30))
            ]
            got = MemoryIndex(entries, epsilon=0.25).search_many(queries, 20)
            assert got == [_original_top_k(entries, q, 20) for q in queries]


def test_epsilon_floor_on_a_tiny_memory_follows_rank_bm25_even_where_it_is_odd():
    """3 entries sharing most words: "is" is in 2, so its idf is negative and takes 0.25 × the mean idf;
    here that mean is negative too, so the entries with "is" rank below the one without (rank-bm25's
    behaviour, kept)."""
    entries = ["paris is big", "paris is old", "paris and rome"]
    assert BM25Okapi([tokenize(e) for e in entries]).average_idf < 0
    assert MemoryIndex(entries, epsilon=0.25).search("is", 3) == _original_top_k(entries, "is", 3) == [2, 0, 1]
    assert MemoryIndex(entries).search("is", 3) == [0, 1, 2]  # floored at 0: all equal, memory order


def _same_index(a: MemoryIndex, b: MemoryIndex) -> bool:
    """The same terms and the same weights, to the last bit, in the same layout."""
    return (
        np.array_equal(a._terms, b._terms)
        and np.array_equal(a._matrix.indptr, b._matrix.indptr)
        and np.array_equal(a._matrix.indices, b._matrix.indices)
        and np.array_equal(a._matrix.data, b._matrix.data)
    )


@pytest.mark.realdata
def test_blocks_change_nothing_even_across_long_entries_and_context_sensitive_lower_casing(raw_dir, monkeypatch):
    """The index is built a block of texts at a time; tiny blocks (every entry its own block, a long entry
    cut into many pieces, a block lower-cased apart) must give the index built with the default blocks."""
    from benchmark import retrieval

    paragraphs = read_squad_file(next((raw_dir / "squad").glob("*.json")))[:120]
    entries = [s.strip() for p in paragraphs for s in split_sentences(p.context) if s.strip()]
    entries[7] = " ".join(entries[:60])  # a long entry: cut at non-word characters
    entries[11] = "İSTANBUL'DA ΟΔΥΣΣΕΥΣ' ΣΑΣ. Σ" + entries[11]  # İ lower-cases to two characters; final sigma
    entries[12] = ""
    questions = [*[qa.question for p in paragraphs for qa in p.qas][:60], "istanbul odysseus", "σας"]
    for epsilon in (None, 0.25):
        whole = MemoryIndex(entries, epsilon=epsilon)
        expected = whole.search_many(questions, 20)
        monkeypatch.setattr(retrieval, "BLOCK_CHARS", 97)
        pieces = MemoryIndex(entries, epsilon=epsilon)
        monkeypatch.undo()
        assert _same_index(whole, pieces)
        assert pieces.search_many(questions, 20) == expected
    words = {w for e in entries for w in tokenize(e)}
    assert len(whole._terms) == len(words)  # one term per distinct \w+ word of the lower-cased texts


@pytest.mark.realdata
def test_repeated_entries_tie_everywhere_and_keep_rank_bm25s_order(raw_dir):
    """Every entry three times: each score ties with two others, so the k-th best is nearly always tied;
    the lists must still be rank-bm25's stable sort (the original's), from the linear-time tie path."""
    paragraphs = read_squad_file(next((raw_dir / "squad").glob("*.json")))[:40]
    sentences = [s.strip() for p in paragraphs for s in split_sentences(p.context) if s.strip()][:200]
    entries = [s for s in sentences for _ in range(3)]
    questions = [qa.question for p in paragraphs for qa in p.qas][:40]
    got = MemoryIndex(entries, epsilon=0.25).search_many(questions, 20)
    assert got == [_original_top_k(entries, q, 20) for q in questions]
    assert sum(len(set(entries[i] for i in ranked)) < len(ranked) for ranked in got) == len(questions)


@pytest.mark.realdata
def test_building_an_index_needs_a_few_bytes_per_character(raw_dir):
    """The build works a block at a time: its peak allocation (the finished index included) stays under 8
    bytes per character of a 5 MB memory (hashing the whole memory at once took about 38), and the index
    itself under one."""
    import tracemalloc

    paragraphs = [p for f in sorted((raw_dir / "squad").glob("*.json")) for p in read_squad_file(f)]
    sentences = [s.strip() for p in paragraphs for s in split_sentences(p.context) if s.strip()]
    entries = [f"{sentences[i % len(sentences)]} {sentences[(i * 7 + 3) % len(sentences)]}" for i in range(16_000)]
    chars = sum(map(len, entries))
    assert chars > 4_000_000
    MemoryIndex(entries[:100])  # the tables every index shares, made once per process
    tracemalloc.start()
    index = MemoryIndex(entries, epsilon=0.25)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * chars
    # the finished index holds a pair's entry and term frequency (5 bytes), not its weight (12 with the entry)
    assert index.nbytes() < chars
    assert index.search("Who wrote the treaty?", 3)
