"""BM25 retrieval over one memory's semantic or episodic entries.

The scores are BM25 Okapi with k1 = 1.5, b = 0.75 and the Robertson idf. A word found in more than
half of the entries has a negative idf, which needs a floor; two are offered (a scorer profile picks
one, see `benchmark/profiles.py`):

- `epsilon=None`: the idf floored at 0 — exactly rank-bm25's `BM25Okapi(epsilon=0)` and bm25s's
  `BM25(method="atire", idf_method="robertson")`;
- `epsilon=e`: rank-bm25's own floor, as the original pipeline used it (`BM25Okapi` defaults, e =
  0.25): a negative idf becomes e × the mean idf of the memory's vocabulary (negatives included).

Tokens are lower-cased `\\b\\w+\\b` words, as in the original.

Why not call bm25s here: its index build loops over documents in Python and it scores one query at a
time, 3.5–4 times slower than this module at 10k to 1M entries (docs/performance.md). This module computes
the same formula vectorised with numpy/scipy — the texts tokenised and hashed as array operations, a
block of about 256k characters at a time (no per-token Python, and a few MB of temporaries whatever the
memory's size), one sparse term × entry matrix of term frequencies per index, all of an instance's
questions scored together, one array operation per word position — and the tests hold it to bm25s's
and rank-bm25's scores on real text. The arithmetic is rank-bm25's own, operation by operation (its
logarithms, the order of its sums), so `memalpha-paper` gets the original's ranked lists exactly, ties
included. Time and memory grow linearly with the memory (docs/performance.md: 100 to 1M entries).

Like the original, a query retrieves the k best entries whatever their scores, so a memory with
fewer than k entries is shown whole; the floor of idf at 0 would otherwise hide the entries of a
small memory (in a memory of 3 entries, a word found in 2 has idf 0). A query with no word at all
retrieves nothing. Best first, ties broken by memory order, so results are deterministic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from functools import cache
from typing import NamedTuple

import numpy as np
from scipy import sparse

K1, B = 1.5, 0.75
_WORD = re.compile(r"\w+")  # the same matches as the original's \b\w+\b


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def settings(epsilon: float | None = None) -> dict[str, object]:
    """What results records say about the retriever with this idf floor."""
    return {
        "scoring": (
            "BM25 Okapi (= bm25s atire/robertson, rank-bm25 epsilon 0)"
            if epsilon is None
            else f"BM25 Okapi (= rank-bm25 BM25Okapi, epsilon {epsilon})"
        ),
        "k1": K1,
        "b": B,
        "idf_floor": 0.0 if epsilon is None else f"{epsilon} x mean idf",
        "tokens": "lowercase \\b\\w+\\b",
        "zero_scores_fill_k": True,
        "ties": "memory order",
    }


@cache
def _word_table() -> np.ndarray:
    """For every code point, whether `\\w` matches it (Python's rule: alphanumeric or underscore)."""
    return np.array([chr(c).isalnum() or c == 0x5F for c in range(0x110000)], dtype=bool)


_P = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_P_INVERSE = pow(_P, -1, 2**64)
_powers: dict[int, np.ndarray] = {}


def _power_table(base: int, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) modulo 2**64, grown on demand and kept."""
    table = _powers.get(base)
    if table is None or table.size < n:
        size = max(n, 1 << 16, 2 * (table.size if table is not None else 0))
        steps = np.full(size, base, dtype=np.uint64)
        steps[0] = 1
        table = np.cumprod(steps, dtype=np.uint64)
        _powers[base] = table
    return table[:n]


def _code_points(text: str) -> np.ndarray:
    """The text's code points: one byte each for ASCII text, four otherwise (the same numbers)."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _hash_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hash, start offset) of every `\\w+` token of a lower-cased text given as its code points.

    A token's hash is the polynomial sum of its code points modulo 2**64 plus its length, computed from
    prefix sums, so equal tokens hash equally wherever they stand; the hashes stand in for a
    vocabulary (a collision between two words of one memory, ~1e-10, would merge their statistics).
    """
    edges = np.diff(_word_table()[codes].astype(np.int8), prepend=0, append=0)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    with np.errstate(over="ignore"):
        weighted = np.cumsum(codes * _power_table(_P, codes.size), dtype=np.uint64)
        prefix = np.concatenate((np.zeros(1, dtype=np.uint64), weighted))
        hashes = (prefix[ends] - prefix[starts]) * _power_table(_P_INVERSE, codes.size + 1)[starts]
        hashes += (ends - starts).astype(np.uint64)
    return hashes, starts


BLOCK_CHARS = 1 << 18
"""Characters hashed at a time: the arrays of one pass (about 40 bytes per character) stay a few MB."""


def _texts_tokens(texts: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(token hash, index of its text) for every token of `texts`, in order, one block of whole texts at a time.

    Texts are gathered into blocks of about BLOCK_CHARS characters, joined by "\n" (no word character, so
    no token spans two texts, and a boundary to lower-casing's context rule) and lower-cased at once; a
    longer text is a block of its own, hashed in pieces cut at non-word characters, so that no token is cut.
    """
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    ends = np.cumsum(lengths + 1)  # where each text's separator stands in the running join, plus one
    long = [*np.flatnonzero(lengths > BLOCK_CHARS).tolist(), len(texts)]
    first, next_long = 0, 0
    while first < len(texts):
        if first == long[next_long]:
            lowered = texts[first].lower()
            parts = [_hash_pieces([piece], first) for piece in _cut(lowered)]
            yield np.concatenate([h for h, _ in parts]), np.concatenate([e for _, e in parts])
            first, next_long = first + 1, next_long + 1
            continue
        before = int(ends[first - 1]) if first else 0
        last = int(np.searchsorted(ends, before + BLOCK_CHARS, side="right"))
        last = min(max(last, first + 1), long[next_long])
        yield _hash_pieces(texts[first:last], first, lengths[first:last])
        first = last


def _hash_pieces(pieces: Sequence[str], owner: int, lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes of consecutive texts (or pieces of one), each token with its text's index (the first
    text is `owner`); `lengths`: the pieces' lengths, when known."""
    joined = "\n".join(pieces)
    if joined.isascii():
        codes = np.frombuffer(joined.encode("ascii").lower(), dtype=np.uint8)
    else:
        lowered = joined.lower()
        if len(lowered) != len(joined):  # a character that lower-cases to several (İ): lower each apart
            pieces = [p.lower() for p in pieces]
            lowered, lengths = "\n".join(pieces), None
        codes = _code_points(lowered)
    hashes, starts = _hash_codes(codes)
    if len(pieces) == 1:
        return hashes, np.full(hashes.size, owner, dtype=np.int32)
    if lengths is None:
        lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    separators = np.cumsum(lengths + 1) - 1
    return hashes, (owner + np.searchsorted(separators, starts, side="left")).astype(np.int32)


_NON_WORD = re.compile(r"\W")


def _cut(text: str) -> Iterator[str]:
    """`text` in pieces of about BLOCK_CHARS characters, each cut just after a non-word character."""
    start = 0
    while len(text) - start > BLOCK_CHARS:
        found = _NON_WORD.search(text, start + BLOCK_CHARS)
        if found is None:
            break
        yield text[start : found.end()]
        start = found.end()
    yield text[start:]


DENSE_CELLS = 2_000_000  # at most 16 MB of float64 scores at a time (fewer queries at once as entries grow)


def _ranked(scores: np.ndarray, k: int) -> list[int]:
    """Exact top-k of one score row: best first, ties in entry order."""
    entries = np.arange(scores.size)
    return entries[np.lexsort((entries, -scores))][:k].tolist()


def _top_k(dense: np.ndarray, k: int) -> list[list[int]]:
    """Top-k per row of a queries × entries score matrix: best first, ties in entry order (the first k of a
    stable descending sort), in time linear in the row's length.

    `argpartition` finds each row's k best; where entries tied with the k-th best score were left out (it
    picks among ties arbitrarily), the row's entries above that score and its tied ones in entry order are
    taken instead (memories with repeated entries tie often).
    """
    n = dense.shape[1]
    if k >= n:
        return [_ranked(row, k) for row in dense]
    top = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(dense, top, axis=1)
    kth = values.min(axis=1)
    ambiguous = (dense == kth[:, None]).sum(axis=1) != (values == kth[:, None]).sum(axis=1)
    for i in np.flatnonzero(ambiguous).tolist():
        row = dense[i]
        above = np.flatnonzero(row > kth[i])
        top[i] = np.concatenate((above, np.flatnonzero(row == kth[i])[: k - above.size]))
        values[i] = row[top[i]]
    order = np.lexsort((top, -values), axis=1)
    return np.take_along_axis(top, order, axis=1).tolist()


def floored_idf(n: int, df: np.ndarray, first_seen: np.ndarray, epsilon: float | None) -> np.ndarray:
    """Robertson idf per term of a corpus of `n` entries, with its floor for negative values, computed with
    rank-bm25's own arithmetic so that its scores are reproduced to the last bit.

    rank-bm25 computes `math.log(n - df + 0.5) - math.log(df + 0.5)` and floors a negative value at
    epsilon × the mean of all idfs (negatives included), summed in the order the words first occur in
    the corpus (`first_seen`: each term's first token position); with `epsilon=None` the floor is 0.
    """
    values, inverse = np.unique(df, return_inverse=True)
    idf = np.array([math.log(n - d + 0.5) - math.log(d + 0.5) for d in values.tolist()])[inverse]
    if epsilon is None:
        return np.maximum(idf, 0.0)
    total = np.cumsum(idf[np.argsort(first_seen)])[-1]  # a sequential sum, as rank-bm25's loop
    return np.where(idf < 0, epsilon * (total / idf.size), idf)


class _BlockPairs(NamedTuple):
    """One block's tokens grouped: its distinct terms (sorted hashes), the memory-wide position of each
    term's first token, and its (term, entry) pairs with their term frequencies, in (term, entry) order."""

    terms: np.ndarray  # uint64, sorted, distinct
    first_seen: np.ndarray  # int64, per term
    pairs: np.ndarray  # int64, per term: how many entries of the block hold it
    doc: np.ndarray  # int32, per pair: the entry
    tf: np.ndarray  # int32, per pair: the term's occurrences in the entry

    @classmethod
    def of(cls, hashes: np.ndarray, entry: np.ndarray, position: int) -> _BlockPairs:
        """From a block's token hashes and entries, in token order; `position`: where its first token stands
        in the memory. One stable sort by hash groups each term's tokens, entries ascending; terms, pairs
        and term frequencies all follow from run boundaries."""
        order = np.argsort(hashes, kind="stable")
        hashes, entry = hashes[order], entry[order]
        term_start = np.empty(hashes.size, dtype=bool)
        term_start[0] = True
        np.not_equal(hashes[1:], hashes[:-1], out=term_start[1:])
        pair_start = term_start.copy()
        pair_start[1:] |= entry[1:] != entry[:-1]
        starts = np.flatnonzero(pair_start)
        term_pairs = np.diff(np.append(np.flatnonzero(term_start[starts]), starts.size))
        return cls(
            terms=hashes[term_start],
            first_seen=order[term_start] + position,  # a run's first token is the term's first use
            pairs=term_pairs,
            doc=entry[starts],
            tf=np.diff(np.append(starts, hashes.size)).astype(np.int32),
        )


class MemoryIndex:
    """A BM25 index over the texts of one memory type (possibly empty); `epsilon`: see `floored_idf`.

    It holds, per (term, entry) pair, the entry (4 bytes) and the term's frequency in it (1 byte, 2 where
    a word occurs 256 times or more in one entry), in a sparse term × entry matrix, plus each term's idf
    and each entry's length norm; a pair's BM25 weight is computed when a query needs it, with the same
    operations as at build time in rank-bm25, so the scores are the same to the last bit (holding the
    weights instead took 12 bytes a pair).

    It is built one block of texts at a time, so that beyond the texts and the finished index it needs
    about 8 bytes a pair and a few MB: each block's tokens are grouped into (term, entry, term frequency)
    triples (`_BlockPairs`), which are then placed into the matrix (a counting sort: blocks hold whole
    texts, in memory order, so every term's entries come out ascending).
    """

    def __init__(self, texts: Sequence[str], *, epsilon: float | None = None):
        self.size = len(texts)
        self._terms = np.empty(0, dtype=np.uint64)  # sorted token hashes: term i is self._terms[i]
        self._matrix = None  # terms × entries: the term's frequency in the entry
        self._idf = np.empty(0)  # per term
        self._norm = np.empty(0)  # per entry: k1 (1 - b + b × length / mean length)
        if not texts:
            return
        blocks, position = [], 0
        for hashes, entry in _texts_tokens(texts):
            if hashes.size:
                blocks.append(_BlockPairs.of(hashes, entry, position))
            position += hashes.size
        if not blocks:
            return
        # Term ids over the whole memory: each block's terms are sorted and distinct, so `np.unique` of their
        # concatenation gives the vocabulary, and its first index of a term is in the first block using it.
        self._terms, first_index, term_ids = np.unique(
            np.concatenate([b.terms for b in blocks]), return_index=True, return_inverse=True
        )
        first_seen = np.concatenate([b.first_seen for b in blocks])[first_index]
        ids = np.split(term_ids, np.cumsum([b.terms.size for b in blocks])[:-1])
        n, v = len(texts), self._terms.size
        df = np.zeros(v, dtype=np.int64)
        lengths = np.zeros(n, dtype=np.float64)
        for block, block_ids in zip(blocks, ids, strict=True):
            df[block_ids] += block.pairs
            low = int(block.doc.min())
            lengths[low : int(block.doc.max()) + 1] += np.bincount(block.doc - low, weights=block.tf)
        indptr = np.zeros(v + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        most = max(int(b.tf.max()) for b in blocks)
        tfs = np.empty(int(indptr[-1]), dtype=np.uint8 if most <= 0xFF else np.uint16 if most <= 0xFFFF else np.uint32)
        filled = indptr[:-1].copy()
        while blocks:  # placed in memory order: each term's entries ascending
            block, block_ids = blocks.pop(0), ids.pop(0)
            run_start = np.cumsum(block.pairs) - block.pairs
            where = np.repeat(filled[block_ids] - run_start, block.pairs) + np.arange(block.doc.size)
            indices[where], tfs[where] = block.doc, block.tf
            filled[block_ids] += block.pairs
        self._idf = floored_idf(n, df, first_seen, epsilon)
        self._norm = K1 * (1 - B + B * lengths / lengths.mean())
        self._matrix = sparse.csr_matrix((tfs, indices, indptr), shape=(v, n))

    def nbytes(self) -> int:
        """The index's size in memory (its arrays)."""
        arrays = [self._terms, self._idf, self._norm]
        if self._matrix is not None:
            arrays += [self._matrix.data, self._matrix.indices, self._matrix.indptr]
        return sum(a.nbytes for a in arrays)

    def search_many(self, queries: Sequence[str], k: int) -> list[list[int]]:
        """For each query, the indices of its top-`k` entries, best first.

        A block of queries is scored at once, query word by query word: the weights of each query's j-th
        word are added to its entries' scores before those of its (j+1)-th, as rank-bm25 adds them, so
        equal scores come out equal to the last bit and ties keep memory order exactly as its stable sort.
        """
        if self.size == 0 or k <= 0 or not queries:
            return [[] for _ in queries]
        tokens = list(_texts_tokens(queries))
        hashes, rows = (np.concatenate([block[j] for block in tokens]) for j in (0, 1))
        has_words = np.bincount(rows, minlength=len(queries)) > 0
        if self._matrix is None:  # entries without a single word: all score 0, memory order
            return [list(range(min(k, self.size))) if w else [] for w in has_words]
        cols = np.searchsorted(self._terms, hashes).clip(max=len(self._terms) - 1)
        known = self._terms[cols] == hashes  # an unknown word adds 0 to every score: it is dropped
        rows, cols = rows[known], cols[known]
        out: list[list[int]] = []
        block = max(1, DENSE_CELLS // self.size)  # queries scored densely at a time (bounded memory)
        for first in range(0, len(queries), block):
            size = min(block, len(queries) - first)
            inside = (rows >= first) & (rows < first + size)
            out.extend(_top_k(self._scores(rows[inside] - first, cols[inside], size), k))
        return [ranked if w else [] for ranked, w in zip(out, has_words, strict=True)]

    def _add(self, scores: np.ndarray, query_rows: np.ndarray, terms: np.ndarray) -> None:
        """Add to `scores[query_rows[i]]` the BM25 weights of term `terms[i]` (one term per query row).

        A weight is rank-bm25's `idf × (tf × (k1 + 1)) / (tf + k1 (1 - b + b × length / mean length))`.
        """
        postings = self._matrix[terms]
        counts = np.diff(postings.indptr)
        tf = postings.data.astype(np.float64)
        weights = np.repeat(self._idf[terms], counts) * ((tf * (K1 + 1)) / (tf + self._norm[postings.indices]))
        scores[np.repeat(query_rows, counts), postings.indices] += weights

    def _scores(self, rows: np.ndarray, terms: np.ndarray, size: int) -> np.ndarray:
        """Dense scores of `size` queries given their known words in order, as (query row, term) pairs.

        The words the queries share at their start (a query prompt) are added once for all of them.
        """
        lengths = np.bincount(rows, minlength=size)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        shared = terms[: int(lengths.min())]
        for start in starts[1:].tolist():
            differs = np.flatnonzero(terms[start : start + shared.size] != shared)
            shared = shared[: differs[0]] if differs.size else shared
        prefix = np.zeros((1, self.size))
        for term in shared:
            self._add(prefix, np.zeros(1, dtype=np.int64), np.array([term]))
        dense = np.repeat(prefix, size, axis=0)
        position = np.arange(rows.size) - starts[rows]  # the word's place among its query's known words
        rest = position >= shared.size
        rows, terms, position = rows[rest], terms[rest], position[rest]
        order = np.argsort(position, kind="stable")
        rows, terms, position = rows[order], terms[order], position[order]
        bounds = np.flatnonzero(np.diff(position)) + 1
        for group_rows, group_terms in zip(np.split(rows, bounds), np.split(terms, bounds), strict=True):
            self._add(dense, group_rows, group_terms)
        return dense

    def search(self, query: str, k: int) -> list[int]:
        return self.search_many([query], k)[0]
