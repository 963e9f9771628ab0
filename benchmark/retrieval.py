"""BM25 retrieval over one memory's semantic or episodic entries.

The scores are BM25 Okapi with k1 = 1.5, b = 0.75 and the Robertson idf. A word found in more than
half of the entries has a negative idf, which needs a floor; two are offered (a scorer profile picks
one, see `benchmark/profiles.py`):

- `epsilon=None`: the idf floored at 0 — exactly rank-bm25's `BM25Okapi(epsilon=0)` and bm25s's
  `BM25(method="atire", idf_method="robertson")`;
- `epsilon=e`: rank-bm25's own floor, as the original pipeline used it (`BM25Okapi` defaults, e =
  0.25): a negative idf becomes e × the mean idf of the memory's vocabulary (negatives included).

Tokens are lower-cased `\\b\\w+\\b` words, as in the original.

Why not call bm25s here: its index build loops over documents in Python (about 25 µs per entry) and
it scores one query at a time, which put a 10k-entry memory at ~8 ms per question. This module
computes the same formula vectorised with numpy/scipy — the whole corpus tokenised and hashed in one
array pass (no per-token Python), one sparse term × entry matrix per index, all of an instance's
questions scored together, one array operation per word position — and the tests hold it to bm25s's
and rank-bm25's scores on real text. The arithmetic is rank-bm25's own, operation by operation (its
logarithms, the order of its sums), so `memalpha-paper` gets the original's ranked lists exactly, ties
included.

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


def _token_hashes(lowered: str) -> tuple[np.ndarray, np.ndarray]:
    """(hash, start offset) of every `\\w+` token of an already lower-cased text, without a Python loop.

    A token's hash is the polynomial sum of its code points modulo 2**64 plus its length, computed from
    prefix sums, so equal tokens hash equally wherever they stand; the hashes stand in for a
    vocabulary (a collision between two words of one memory, ~1e-10, would merge their statistics).
    """
    codes = np.frombuffer(lowered.encode("utf-32-le"), dtype=np.uint32)
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

    Texts are gathered into blocks of about BLOCK_CHARS characters; a longer text is a block of its own,
    hashed in pieces cut at non-word characters (after lower-casing the whole text: lower-casing is
    context-sensitive), so that no token is cut.
    """
    pieces: list[str] = []
    owners: list[int] = []
    size = 0
    for i, text in enumerate(texts):
        lowered = text.lower()
        if pieces and size + len(lowered) > BLOCK_CHARS:
            yield _hash_pieces(pieces, owners)
            pieces, owners, size = [], [], 0
        if len(lowered) > BLOCK_CHARS:
            parts = [_hash_pieces([piece], [i]) for piece in _cut(lowered)]
            yield np.concatenate([h for h, _ in parts]), np.concatenate([e for _, e in parts])
            continue
        pieces.append(lowered)
        owners.append(i)
        size += len(lowered) + 1
    if pieces:
        yield _hash_pieces(pieces, owners)


def _hash_pieces(pieces: list[str], owners: list[int]) -> tuple[np.ndarray, np.ndarray]:
    hashes, starts = _token_hashes("\n".join(pieces))  # "\n" is no word character: no token spans two pieces
    first = np.cumsum([0] + [len(p) + 1 for p in pieces[:-1]])
    return hashes, np.asarray(owners, dtype=np.int32)[np.searchsorted(first, starts, side="right") - 1]


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


DENSE_CELLS = 2_000_000  # at most 16 MB of float64 scores at a time


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


def _row_slices(indptr: np.ndarray, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges [first, last) of a CSR layout holding about `size` values each."""
    rows = indptr.size - 1
    first = 0
    while first < rows:
        last = max(first + 1, int(np.searchsorted(indptr, indptr[first] + size, side="right")) - 1)
        last = min(last, rows)
        yield first, last
        first = last


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


WEIGHT_SLICE = 1 << 20
"""Pairs whose BM25 weight is computed at a time (bounds the temporaries of that step)."""


class MemoryIndex:
    """A BM25 index over the texts of one memory type (possibly empty); `epsilon`: see `floored_idf`.

    Built one block of texts at a time, so that it needs, beyond the texts and the finished index, about
    8 bytes per (term, entry) pair and a few MB: each block's tokens are grouped into (term, entry, term
    frequency) triples (`_BlockPairs`), which are placed into one sparse term × entry matrix at the end
    (a counting sort: blocks hold whole texts, in memory order, so every term's entries come out
    ascending), whose values then become BM25 weights in place.
    """

    def __init__(self, texts: Sequence[str], *, epsilon: float | None = None):
        self.size = len(texts)
        self._terms = np.empty(0, dtype=np.uint64)  # sorted token hashes: term i is self._terms[i]
        self._matrix = None  # terms × entries, BM25 weight of each (term, entry)
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
        values = np.empty(int(indptr[-1]), dtype=np.float64)  # term frequencies, then weights
        filled = indptr[:-1].copy()
        while blocks:  # placed in memory order: each term's entries ascending
            block, block_ids = blocks.pop(0), ids.pop(0)
            run_start = np.cumsum(block.pairs) - block.pairs
            where = np.repeat(filled[block_ids] - run_start, block.pairs) + np.arange(block.doc.size)
            indices[where], values[where] = block.doc, block.tf
            filled[block_ids] += block.pairs
        idf = floored_idf(n, df, first_seen, epsilon)
        norm = K1 * (1 - B + B * lengths / lengths.mean())
        for first, last in _row_slices(indptr, WEIGHT_SLICE):
            tf = values[indptr[first] : indptr[last]]
            term_idf = np.repeat(idf[first:last], df[first:last])
            tf[:] = term_idf * ((tf * (K1 + 1)) / (tf + norm[indices[indptr[first] : indptr[last]]]))
        self._matrix = sparse.csr_matrix((values, indices, indptr), shape=(v, n))

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
        """Add to `scores[query_rows[i]]` the weights of term `terms[i]` (one term per query row)."""
        postings = self._matrix[terms]
        scores[np.repeat(query_rows, np.diff(postings.indptr)), postings.indices] += postings.data

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
