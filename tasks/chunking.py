"""Sentence splitting and packing of text into token-limited chunks.

Chunks hold whole sentences up to the token limit. A sentence longer than the limit is split at word
boundaries (and a single over-long "word" at character boundaries), so no chunk ever exceeds its limit.
Nothing is dropped or repeated: the pieces of a text, joined back, give the text again (up to the
whitespace at chunk edges). The limit applies to the chunk *as the agent sees it*, wrapper included.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .tokenization import TokenCounter

# A sentence ends after . ! ? (plus closing quotes/brackets) and the whitespace that follows, or at a
# line break. Spans keep their trailing whitespace so that "".join(spans) == text.
_BOUNDARY = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"'\u201d\u2019)\]]*\s+|\n\s*")
_WORD = re.compile(r"\S+\s*|\s+")

Budget = int | Callable[[int], int]
Wrap = Callable[[int, str], str]


def split_sentences(text: str) -> list[str]:
    """Split `text` into sentence spans; their concatenation is exactly `text`."""
    spans: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if end > start:
            spans.append(text[start:end])
            start = end
    if start < len(text):
        spans.append(text[start:])
    return _merge_markers(spans)


_MARKER = re.compile(r"\(?(\d{1,4}|[A-Za-z])[.)]")


def _merge_markers(spans: list[str]) -> list[str]:
    """Keep a list marker ("12.", "a)") with the text it numbers instead of making it a sentence."""
    out: list[str] = []
    carry = ""
    for span in spans:
        if _MARKER.fullmatch(span.strip()) and "\n" not in span.rstrip(" \t"):
            carry += span
            continue
        out.append(carry + span)
        carry = ""
    if carry:
        out.append(carry)
    return out


@dataclass(frozen=True)
class Chunk:
    text: str  # the wrapped chunk, as stored
    body: str  # the packed source text inside the wrapper
    units: tuple[int, ...]  # indices of the units this chunk holds (wholly or in part)


@dataclass
class _Piece:
    unit: int
    text: str
    tokens: int


def _join(pieces: Sequence[_Piece], sep: str) -> str:
    out: list[str] = []
    prev_unit = None
    for piece in pieces:
        if prev_unit is not None and piece.unit != prev_unit:
            out[-1] = out[-1].rstrip()
            out.append(sep)
        out.append(piece.text)
        prev_unit = piece.unit
    return "".join(out).strip()


def _split_piece(piece: _Piece, limit: int, counter: TokenCounter) -> list[_Piece]:
    """Split one over-long piece into pieces of at most `limit` tokens (estimated; verified by the packer)."""
    words = _WORD.findall(piece.text)
    if len(words) <= 1:  # one enormous word: cut by characters, halving until each part fits
        text = piece.text
        size = max(1, len(text) // 2)
        parts = [text[i : i + size] for i in range(0, len(text), size)]
        counts = counter.count_many(parts)
        if max(counts) > limit and size > 1:
            out: list[_Piece] = []
            for part, count in zip(parts, counts, strict=True):
                out.extend(_split_piece(_Piece(piece.unit, part, count), limit, counter))
            return out
        return [_Piece(piece.unit, p, c) for p, c in zip(parts, counts, strict=True)]
    counts = counter.count_many(words)
    out = []
    group: list[str] = []
    total = 0
    for word, count in zip(words, counts, strict=True):
        if group and total + count > limit:
            out.append(_Piece(piece.unit, "".join(group), total))
            group, total = [], 0
        group.append(word)
        total += count
    if group:
        out.append(_Piece(piece.unit, "".join(group), total))
    return out


def pack(
    units: Sequence[str],
    counter: TokenCounter,
    budget: Budget,
    *,
    sep: str = "\n\n",
    wrap: Wrap | None = None,
) -> list[Chunk]:
    """Pack units (paragraphs, documents, example lines) into chunks of whole sentences.

    `budget` is the token limit of every chunk, or a function of the chunk index (for the random
    chunk sizes of the Mem-alpha builders). `wrap(index, body)` turns a body into the stored chunk;
    the limit holds for the wrapped text.
    """
    wrap = wrap or (lambda _i, body: body)
    budget_of = budget if callable(budget) else (lambda _i: budget)
    sentence_units: list[int] = []
    sentences: list[str] = []
    for unit_index, unit in enumerate(units):
        for sentence in split_sentences(unit):
            if sentence.strip():
                sentences.append(sentence)
                sentence_units.append(unit_index)
    counts = counter.count_many(sentences)
    queue = deque(_Piece(u, s, c) for u, s, c in zip(sentence_units, sentences, counts, strict=True))

    chunks: list[Chunk] = []
    while queue:
        # Fast path: fill every remaining chunk from the per-sentence estimates, then count all of them
        # in one batch. Estimates are near-exact (the offline counter is additive), so overflows are
        # rare; the first one is re-packed exactly and the fast path resumes after it.
        drafts = []
        while queue:
            index = len(chunks) + len(drafts)
            limit = budget_of(index)
            drafts.append((index, limit, _fill(queue, limit - _overhead(counter, wrap, index, limit), counter)))
        texts = [wrap(i, _join(taken, sep)) for i, _, taken in drafts]
        actual = counter.count_many(texts)
        for k, ((index, limit, taken), text, n) in enumerate(zip(drafts, texts, actual, strict=True)):
            if n > limit:
                queue.extendleft(reversed([p for _, _, t in drafts[k:] for p in t]))
                chunks.append(_exact_chunk(queue, index, limit, counter, wrap, sep))
                break
            chunks.append(Chunk(text=text, body=_join(taken, sep), units=_units(taken)))
    return chunks


def _units(taken: Sequence[_Piece]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(p.unit for p in taken))


def _overhead(counter: TokenCounter, wrap: Wrap, index: int, limit: int) -> int:
    overhead = counter.count(wrap(index, ""))
    if overhead >= limit:
        raise ValueError(f"chunk budget {limit} leaves no room after the {overhead}-token wrapper")
    return overhead


def _fill(queue: deque[_Piece], room: int, counter: TokenCounter) -> list[_Piece]:
    """Take pieces off the queue while their estimated total fits `room` (splitting one that cannot fit)."""
    taken: list[_Piece] = []
    total = 0
    while queue:
        piece = queue[0]
        if piece.tokens > room:
            if taken:
                break
            queue.popleft()
            queue.extendleft(reversed(_split_piece(piece, room, counter)))
            continue
        if total + piece.tokens > room:
            break
        taken.append(queue.popleft())
        total += piece.tokens
    return taken


def _exact_chunk(queue: deque[_Piece], index: int, limit: int, counter: TokenCounter, wrap: Wrap, sep: str) -> Chunk:
    """One chunk, verified by counting: give pieces back (or split the last one) until it fits."""
    room = limit - _overhead(counter, wrap, index, limit)
    taken = _fill(queue, room, counter)
    while True:
        body = _join(taken, sep)
        text = wrap(index, body)
        actual = counter.count(text)
        if actual <= limit:
            return Chunk(text=text, body=body, units=_units(taken))
        if len(taken) > 1:
            queue.appendleft(taken.pop())
            continue
        piece = taken.pop()
        smaller = max(1, min(room, piece.tokens) - (actual - limit) - 1)
        parts = _split_piece(piece, smaller, counter)
        if len(parts) == 1:
            raise ValueError(f"cannot fit text into a {limit}-token chunk: {piece.text[:80]!r}")
        queue.extendleft(reversed(parts[1:]))
        taken = [parts[0]]


def chunk_text(text: str, counter: TokenCounter, max_tokens: int, *, wrap: Wrap | None = None) -> list[Chunk]:
    """Chunk one long text (a book, a haystack) into sentence chunks of at most `max_tokens`."""
    return pack([text], counter, max_tokens, wrap=wrap)
