"""BM25 retrieval over one memory's semantic or episodic entries.

Scores equal the original pipeline's BM25 Okapi (rank-bm25, k1 = 1.5, b = 0.75) with its negative-idf
floor at 0 instead of 0.25 × mean idf: bm25s with the `atire` method and `robertson` idf. Tokens are
lower-cased `\\b\\w+\\b` words, as in the original. Each index is built once per instance and
answers all of its questions; only entries with a positive score are returned (a query of unknown
words retrieves nothing), best first, ties broken by memory order so results are deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

K1, B = 1.5, 0.75
METHOD, IDF = "atire", "robertson"
_WORD = re.compile(r"\b\w+\b")


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def settings() -> dict[str, object]:
    """What results records say about the retriever."""
    import bm25s

    return {"library": f"bm25s {bm25s.__version__}", "method": METHOD, "idf": IDF, "k1": K1, "b": B,
            "tokens": "lowercase \\b\\w+\\b", "positive_scores_only": True, "ties": "memory order"}


class MemoryIndex:
    """A BM25 index over the texts of one memory type (possibly empty)."""

    def __init__(self, texts: Sequence[str]):
        self.size = len(texts)
        self._bm25 = None
        tokens = [tokenize(t) for t in texts]
        if any(tokens):  # bm25s cannot index a corpus without a single token
            import bm25s

            self._bm25 = bm25s.BM25(method=METHOD, idf_method=IDF, k1=K1, b=B)
            self._bm25.index([t or [""] for t in tokens], show_progress=False)

    def search(self, query: str | Sequence[str], k: int) -> list[int]:
        """Indices of the top-`k` entries for `query` (text or tokens), best first."""
        if self._bm25 is None or k <= 0:
            return []
        tokens = tokenize(query) if isinstance(query, str) else list(query)
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        hits = np.flatnonzero(scores > 0)
        if hits.size == 0:
            return []
        order = hits[np.lexsort((hits, -scores[hits]))]
        return order[:k].tolist()
