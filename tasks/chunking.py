"""Sentence splitting and packing of text into token-limited chunks.

Two packers, one guarantee: no chunk exceeds its limit *as the agent sees it* (wrapper included; every
chunk is counted on its final text), and nothing is dropped or repeated (the pieces, joined back, give
the text again up to the whitespace at chunk edges).

- `pack` fills chunks sentence by sentence (books, haystacks): a sentence longer than the limit is split
  at words, and a single over-long "word" at characters.
- `pack_units` keeps units whole (SQuAD paragraphs, HotpotQA articles, labelled examples, chat turns):
  a unit that does not fit moves to the next chunk, and is cut by sentences (with `pack`) only when it
  alone exceeds the limit.

Cost: `pack` tokenises the input once to size its sentences (in blocks of sentences, each token counted
for the sentence its first character is in) and counts each finished chunk once; see
docs/performance.md for what that costs next to a single tokenizer pass.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .tokenization import TokenCounter, piece_counts

# A sentence ends after . ! ? (plus closing quotes/brackets) and the whitespace that follows, or at a
# line break. Spans keep their trailing whitespace so that "".join(spans) == text.
_BOUNDARY = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"'\u201d\u2019)\]]*\s+|\n\s*")
_WORD = re.compile(r"\S+\s*|\s+")

Budget = int | Callable[[int], int]
Wrap = Callable[[int, str], str]
# Sentences are sized in blocks of this many (one tokenizer call per block, all blocks in one batch).
SIZING_BLOCK = 8
# Chunks drafted from the estimates and then counted together, in one batch, before any is accepted.
DRAFT_WINDOW = 32


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


def _units(taken: Sequence[_Piece]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(p.unit for p in taken))


def _budget_of(budget: Budget) -> Callable[[int], int]:
    return budget if callable(budget) else (lambda _i: budget)


def _overhead(counter: TokenCounter, wrap: Wrap, index: int, limit: int) -> int:
    overhead = counter.count(wrap(index, ""))
    if overhead >= limit:
        raise ValueError(f"chunk budget {limit} leaves no room after the {overhead}-token wrapper")
    return overhead


# ---------------------------------------------------------------------------------------- sentences


def _sentence_spans(unit: str, keep_first_line: bool) -> list[str]:
    spans = split_sentences(unit)
    if keep_first_line and len(spans) > 1 and spans[0].endswith("\n"):
        spans[:2] = [spans[0] + spans[1]]  # a title line travels with the sentence after it
    return spans


def _sized_sentences(units: Sequence[str], counter: TokenCounter, keep_first_line: bool) -> list[_Piece]:
    """Every non-blank sentence of the units with its estimated token count, from one tokenizer pass
    over blocks of `SIZING_BLOCK` consecutive sentences."""
    blocks: list[str] = []
    cuts: list[list[int]] = []
    owners: list[list[tuple[int, str]]] = []
    for unit_index, unit in enumerate(units):
        spans = _sentence_spans(unit, keep_first_line)
        for start in range(0, len(spans), SIZING_BLOCK):
            block = spans[start : start + SIZING_BLOCK]
            ends, position = [], 0
            for span in block[:-1]:
                position += len(span)
                ends.append(position)
            blocks.append("".join(block))
            cuts.append(ends)
            owners.append([(unit_index, span) for span in block])
    pieces = []
    for block_owners, counts in zip(owners, piece_counts(counter, blocks, cuts), strict=True):
        for (unit_index, span), n in zip(block_owners, counts, strict=True):
            if span.strip():
                pieces.append(_Piece(unit_index, span, n))
    return pieces


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
    keep_first_line: bool = False,
) -> list[Chunk]:
    """Pack units (paragraphs, documents, example lines) into chunks of whole sentences.

    `budget` is the token limit of every chunk, or a function of the chunk index (for the random
    chunk sizes of the Mem-alpha builders). `wrap(index, body)` turns a body into the stored chunk;
    the limit holds for the wrapped text. With `keep_first_line`, a unit's first line (a title) is
    never parted from the sentence that follows it.
    """
    wrap = wrap or (lambda _i, body: body)
    budget_of = _budget_of(budget)
    queue = deque(_sized_sentences(units, counter, keep_first_line))
    sep_tokens = counter.count(sep)
    chunks: list[Chunk] = []
    while queue:
        # Draft a window of chunks from the estimates and count them in one batch. Estimates are close
        # but not exact (a BPE merges across the joins), so a draft can overflow: the first one that does
        # is re-packed exactly, and drafting resumes after it.
        drafts = []
        while queue and len(drafts) < DRAFT_WINDOW:
            index = len(chunks) + len(drafts)
            limit = budget_of(index)
            room = limit - _overhead(counter, wrap, index, limit)
            drafts.append((index, limit, _fill(queue, room, counter, sep_tokens)))
        texts = [wrap(i, _join(taken, sep)) for i, _, taken in drafts]
        actual = counter.count_many(texts)
        for k, ((index, limit, taken), text, n) in enumerate(zip(drafts, texts, actual, strict=True)):
            if n > limit:
                queue.extendleft(reversed([p for _, _, t in drafts[k:] for p in t]))
                chunks.append(_exact_chunk(queue, index, limit, counter, wrap, sep, sep_tokens))
                break
            chunks.append(Chunk(text=text, body=_join(taken, sep), units=_units(taken)))
    return chunks


def _fill(queue: deque[_Piece], room: int, counter: TokenCounter, sep_tokens: int) -> list[_Piece]:
    """Take pieces off the queue while their estimated total (with the separators between units) fits
    `room`, splitting a piece that cannot fit even alone."""
    taken: list[_Piece] = []
    total = 0
    while queue:
        piece = queue[0]
        cost = piece.tokens + (sep_tokens if taken and piece.unit != taken[-1].unit else 0)
        if not taken and piece.tokens > room:
            queue.popleft()
            queue.extendleft(reversed(_split_piece(piece, room, counter)))
            continue
        if total + cost > room:
            break
        taken.append(queue.popleft())
        total += cost
    return taken


def _exact_chunk(
    queue: deque[_Piece], index: int, limit: int, counter: TokenCounter, wrap: Wrap, sep: str, sep_tokens: int
) -> Chunk:
    """One chunk, verified by counting: give pieces back (or split the last one) until it fits."""
    room = limit - _overhead(counter, wrap, index, limit)
    taken = _fill(queue, room, counter, sep_tokens)
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


# ---------------------------------------------------------------------------------------- whole units


def pack_units(
    units: Sequence[str],
    counter: TokenCounter,
    budget: Budget,
    *,
    limit: int | None = None,
    sep: str = "\n\n",
    wrap: Wrap | None = None,
    flush: int | None = None,
    keep_first_line: bool = False,
) -> list[Chunk]:
    """Pack units into chunks without ever cutting one that fits a chunk on its own.

    `budget(i)` is chunk i's target: units are added while the estimate stays within it, and a chunk
    always takes at least one unit, so a unit larger than its target fills a chunk alone (as the
    Mem-alpha builders did with their random targets). `limit` (default: `budget`, which must then be a
    number) is the hard cap, checked on every chunk's final text; a unit over it even alone is cut by
    sentences with `pack`, each part in a chunk of its own (`keep_first_line` as there). With `flush`,
    a chunk closes as soon as it holds `flush` tokens.
    """
    wrap = wrap or (lambda _i, body: body)
    target_of = _budget_of(budget)
    if limit is None:
        if callable(budget):
            raise ValueError("pack_units: a budget function needs an explicit `limit`")
        limit = budget

    def shifted(offset: int) -> Wrap:
        return lambda i, body: wrap(offset + i, body)

    counts = counter.count_many(units)
    sep_tokens = counter.count(sep)
    chunks: list[Chunk] = []
    start = 0
    while start < len(units):
        index = len(chunks)
        target = min(target_of(index), limit)
        end, total = start, counter.count(wrap(index, ""))
        while end < len(units):
            add = counts[end] + (sep_tokens if end > start else 0)
            if end > start and total + add > target:
                break
            total += add
            end += 1
            if flush is not None and total >= flush:
                break
        # token counts are not exactly additive under BPE: verify, and give units back until it fits
        text = wrap(index, sep.join(units[start:end]))
        while end - start > 1 and counter.count(text) > limit:
            end -= 1
            text = wrap(index, sep.join(units[start:end]))
        if end - start == 1 and counter.count(text) > limit:
            pieces = pack([units[start]], counter, limit, wrap=shifted(index), keep_first_line=keep_first_line)
            chunks.extend(Chunk(c.text, c.body, (start,)) for c in pieces)
        else:
            chunks.append(Chunk(text, sep.join(units[start:end]), tuple(range(start, end))))
        start = end
    return chunks
