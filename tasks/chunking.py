"""Sentence splitting and packing of text into token-limited chunks.

Two packers, one guarantee: no chunk exceeds its limit *as the agent sees it* (wrapper included; every
chunk is counted on its final text), and nothing is dropped or repeated (the pieces, joined back, give
the text again up to the whitespace at chunk edges).

- `pack` fills chunks sentence by sentence (books, haystacks): a sentence longer than the limit is split
  at words, and a single over-long "word" at characters.
- `pack_units` keeps units whole (SQuAD paragraphs, HotpotQA articles, labelled examples, chat turns):
  a unit that does not fit moves to the next chunk, and is cut by sentences (with `pack`) only when it
  alone exceeds the limit.

Cost: both packers tokenise their input once (`pack` in blocks of sentences, each token counted for the
sentence its first character is in). Under a tokenizer whose counts add up across a space that follows a
non-space character (`HFTokenizerCounter.splits_at_spaces`: Qwen's byte-level BPE, the default), a
chunk's exact count comes from that same pass (`_Sizer`); under any other counter every finished chunk
is counted again on its final text. See docs/performance.md for what that costs next to one tokenizer
pass.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .tokenization import TokenCounter, TokenScan, piece_counts

# A sentence ends after . ! ? (plus closing quotes/brackets) and the whitespace that follows, or at a
# line break. Spans keep their trailing whitespace so that "".join(spans) == text. (Only where a match
# ends counts; a pattern that starts with its punctuation, not a look-behind, is scanned faster.)
_BOUNDARY = re.compile(r"[.!?\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*\s+|\n\s*")
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
    for match in _BOUNDARY.finditer(text):  # matches are never empty
        end = match.end()
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
        if _MARKER.fullmatch(span.strip()) and "\n" not in span:
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
    start: int  # where `text` starts in its unit

    @property
    def end(self) -> int:
        return self.start + len(self.text)


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


def _split_piece(piece: _Piece, limit: int, counter: TokenCounter) -> list[_Piece]:
    """Split one over-long piece into pieces of at most `limit` tokens (estimated; verified by the packer)."""
    words = _WORD.findall(piece.text)
    if len(words) <= 1:  # one enormous word: cut by characters, halving until each part fits
        text = piece.text
        size = max(1, len(text) // 2)
        starts = range(0, len(text), size)
        counts = counter.count_many([text[i : i + size] for i in starts])
        parts = [
            _Piece(piece.unit, text[i : i + size], n, piece.start + i) for i, n in zip(starts, counts, strict=True)
        ]
        if max(counts) > limit and size > 1:
            return [small for part in parts for small in _split_piece(part, limit, counter)]
        return parts
    counts = counter.count_many(words)
    out = []
    group: list[str] = []
    total, start = 0, piece.start
    for word, count in zip(words, counts, strict=True):
        if group and total + count > limit:
            text = "".join(group)
            out.append(_Piece(piece.unit, text, total, start))
            group, total, start = [], 0, start + len(text)
        group.append(word)
        total += count
    if group:
        out.append(_Piece(piece.unit, "".join(group), total, start))
    return out


# ---------------------------------------------------------------------------------------- counting


Span = tuple[int, int, int]
"""(unit, start, end): a stretch of one unit's text."""


class _Laid(NamedTuple):
    """A chunk to count: `body` is the spans' text joined by `sep`; `text` is the body in its wrapper."""

    spans: list[Span]
    sep: str
    body: str
    text: str


def _cut_after(text: str, start: int, end: int) -> int | None:
    """The first space cut in text[start:end] with its non-space character inside: the smallest p with
    start < p < end, text[p] == " " and text[p - 1] not white space."""
    p = text.find(" ", start + 1, end)
    while p > 0 and text[p - 1].isspace():
        p = text.find(" ", p + 1, end)
    return p if p > 0 else None


def _cut_before(text: str, start: int, end: int) -> int | None:
    """The last such space cut with start < p < end."""
    p = text.rfind(" ", start + 1, end)
    while p > 0 and text[p - 1].isspace():
        p = text.rfind(" ", start + 1, p)
    return p if p > 0 else None


class _UnitTokens:
    """One unit's tokens from the sizing pass (its blocks' scans), read as exact counts of its prefixes.

    For a counter that splits at spaces, `count_to(p)` is the count of text[:p], tokenised alone, for any
    space cut p. Inside one block the scan's tokens before p are that count. Where two blocks meet, each
    block's scan saw the stretch between the space cuts around the seam cut short (a block starts after
    white space, so never at a cut); that stretch (`window`, a word or two) is counted alone once and
    replaces what the two scans counted for it."""

    def __init__(self, text: str, starts: list[int], scans: list[TokenScan]):
        self.text = text
        self._starts = starts
        self._scans = scans
        self._before_block = [0, *itertools.accumulate(s.tokens for s in scans)]
        self.windows: list[tuple[int, int]] = []
        for seam in starts[1:]:
            after = _cut_after(text, seam - 1, len(text))
            if after is None:
                continue  # nothing is asked past the last cut
            window = (_cut_before(text, 0, seam) or 0, after)
            if not self.windows or self.windows[-1] != window:
                self.windows.append(window)
        self._window_ends = [end for _, end in self.windows]
        self._corrections = [0] * (len(self.windows) + 1)

    def windows_text(self) -> tuple[str, list[int]]:
        """The windows one after the other, and where each ends in that text. Each window but a unit's
        first starts at a space cut and each ends before one, so their counts add up in it."""
        ends = list(itertools.accumulate(end - start for start, end in self.windows))
        return "".join(self.text[start:end] for start, end in self.windows), ends

    def correct(self, scan: TokenScan, ends: Sequence[int]) -> None:
        """Take the windows' own counts from `scan`, the scan of `windows_text()`."""
        total, before = 0, 0
        for k, ((start, end), cut) in enumerate(zip(self.windows, ends, strict=True)):
            alone = scan.before(cut) - before
            before += alone
            total += alone - (self._scanned(end) - self._scanned(start))
            self._corrections[k + 1] = total

    def _scanned(self, position: int) -> int:
        b = bisect.bisect_right(self._starts, position) - 1
        return self._before_block[b] + self._scans[b].before(position - self._starts[b])

    def count_to(self, cut: int) -> int:
        return self._scanned(cut) + self._corrections[bisect.bisect_right(self._window_ends, cut)]


class _Sizer:
    """The packers' token counts: an estimate per sentence (or unit) from one tokenizer pass, and the exact
    count of each chunk.

    Exact counts: a chunk is its wrapper's text around spans of the units joined by a separator. Under a
    counter that splits at spaces, each span counts as the tokens between its first and last space cut
    (from the units' scans) plus the few characters outside them, which are tokenised again together with
    the wrapper and separator text next to them (`_glue`). Any other counter counts the chunk's text.
    """

    def __init__(self, counter: TokenCounter, units: Sequence[str]):
        self.counter = counter
        self.units = units
        self._tokens: list[_UnitTokens] | None = None
        self._fast = getattr(counter, "splits_at_spaces", False) is True

    def _keep_scans(self, blocks: list[tuple[int, int, str]]) -> list[TokenScan]:
        """Scan `blocks` ((unit, start, text), in unit order) and keep the scans for exact counts."""
        scans = self.counter.scan([text for _, _, text in blocks])  # type: ignore[attr-defined]
        per_unit: list[tuple[list[int], list[TokenScan]]] = [([], []) for _ in self.units]
        for (unit, start, _), scan in zip(blocks, scans, strict=True):
            per_unit[unit][0].append(start)
            per_unit[unit][1].append(scan)
        self._tokens = [_UnitTokens(text, *blocks_of) for text, blocks_of in zip(self.units, per_unit, strict=True)]
        seamed = [t for t in self._tokens if t.windows]
        laid_out = [t.windows_text() for t in seamed]
        for t, scan, (_, ends) in zip(seamed, self.counter.scan([text for text, _ in laid_out]), laid_out, strict=True):
            t.correct(scan, ends)
        return scans

    def sentences(self, keep_first_line: bool) -> list[_Piece]:
        """Every non-blank sentence of the units with its estimated token count, from one tokenizer pass
        over blocks of `SIZING_BLOCK` consecutive sentences."""
        blocks: list[tuple[int, int, str]] = []
        cuts: list[list[int]] = []
        spans_of: list[list[str]] = []
        for unit_index, unit in enumerate(self.units):
            spans = _sentence_spans(unit, keep_first_line)
            position = 0
            for start in range(0, len(spans), SIZING_BLOCK):
                block = spans[start : start + SIZING_BLOCK]
                ends, end = [], 0
                for span in block[:-1]:
                    end += len(span)
                    ends.append(end)
                text = "".join(block)
                blocks.append((unit_index, position, text))
                cuts.append(ends)
                spans_of.append(block)
                position += len(text)
        if self._fast:
            scans = self._keep_scans(blocks)
            counts = [scan.piece_counts(ends) for scan, ends in zip(scans, cuts, strict=True)]
        else:
            counts = piece_counts(self.counter, [text for _, _, text in blocks], cuts)
        pieces = []
        for (unit_index, position, _), block, block_counts in zip(blocks, spans_of, counts, strict=True):
            for span, n in zip(block, block_counts, strict=True):
                if span.strip():
                    pieces.append(_Piece(unit_index, span, n, position))
                position += len(span)
        return pieces

    def whole_units(self) -> list[int]:
        """Each unit's token count (one pass over the units)."""
        if not self._fast:
            return self.counter.count_many(self.units)
        scans = self._keep_scans([(u, 0, text) for u, text in enumerate(self.units)])
        return [scan.tokens for scan in scans]

    def count(self, chunks: Sequence[_Laid]) -> list[int]:
        """The chunks' exact token counts (of their whole text)."""
        inner: list[int] = []
        rest: list[str] = []
        for chunk in chunks:
            layout = self._glue(*chunk) if self._tokens is not None else None
            inner.append(layout[0] if layout else 0)
            rest.append(layout[1] if layout else chunk.text)
        return [n + m for n, m in zip(inner, self.counter.count_many(rest), strict=True)]

    def _glue(self, spans: Sequence[Span], sep: str, body: str, text: str) -> tuple[int, str] | None:
        """(tokens between each span's first and last space cut, the text left to count), or None when the
        chunk is not laid out as said (it is then counted whole). The text left is the chunk with those
        stretches taken out: each stretch ran from a space cut to a space cut, so what is left on either
        side still meets at one, and its count adds to theirs."""
        at = text.find(body)
        if at < 0 or sep.join(self.units[u][a:b] for u, a, b in spans) != body:
            return None
        assert self._tokens is not None
        inner, strings, pending = 0, [], text[:at]
        for n, (u, a, b) in enumerate(spans):
            unit = self.units[u]
            if n:
                pending += sep
            first = _cut_after(unit, a, b)
            if first is None:
                pending += unit[a:b]
                continue
            last = _cut_before(unit, a, b)
            assert last is not None
            strings.append(pending + unit[a:first])
            inner += self._tokens[u].count_to(last) - self._tokens[u].count_to(first)
            pending = unit[last:b]
        strings.append(pending + text[at + len(body) :])
        return inner, "".join(strings)


def _spans(taken: Sequence[_Piece], units: Sequence[str]) -> list[Span]:
    """The stretches of unit text that `_join(taken, sep)` is made of, in order, white space at the joins
    and ends removed as `_join` removes it."""
    spans: list[list[int]] = []
    for piece in taken:
        if spans and spans[-1][0] == piece.unit and spans[-1][2] == piece.start:
            spans[-1][2] = piece.end
        else:
            spans.append([piece.unit, piece.start, piece.end])
    for k, span in enumerate(spans):
        text = units[span[0]]
        if k == 0:
            while span[1] < span[2] and text[span[1]].isspace():
                span[1] += 1
        while span[2] > span[1] and text[span[2] - 1].isspace():
            span[2] -= 1
    return [(u, a, b) for u, a, b in spans]


def _laid(taken: Sequence[_Piece], sep: str, wrap: Wrap, index: int, units: Sequence[str]) -> _Laid:
    """A drafted chunk of `pack`, as `_Sizer.count` takes it."""
    body = _join(taken, sep)
    return _Laid(_spans(taken, units), sep, body, wrap(index, body))


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
    sizer = _Sizer(counter, units)
    queue = deque(sizer.sentences(keep_first_line))
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
        laid = [_laid(taken, sep, wrap, i, units) for i, _, taken in drafts]
        actual = sizer.count(laid)
        for k, ((index, limit, taken), draft, n) in enumerate(zip(drafts, laid, actual, strict=True)):
            if n > limit:
                queue.extendleft(reversed([p for _, _, t in drafts[k:] for p in t]))
                chunks.append(_exact_chunk(queue, index, limit, sizer, wrap, sep, sep_tokens))
                break
            chunks.append(Chunk(text=draft.text, body=draft.body, units=_units(taken)))
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
    queue: deque[_Piece], index: int, limit: int, sizer: _Sizer, wrap: Wrap, sep: str, sep_tokens: int
) -> Chunk:
    """One chunk, verified by counting: give pieces back (or split the last one) until it fits."""
    counter = sizer.counter
    room = limit - _overhead(counter, wrap, index, limit)
    taken = _fill(queue, room, counter, sep_tokens)
    while True:
        draft = _laid(taken, sep, wrap, index, sizer.units)
        (actual,) = sizer.count([draft])
        if actual <= limit:
            return Chunk(text=draft.text, body=draft.body, units=_units(taken))
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

    sizer = _Sizer(counter, units)
    counts = sizer.whole_units()
    sep_tokens = counter.count(sep)

    def count(index: int, start: int, end: int) -> tuple[int, str, str]:
        """(tokens, text, body) of the chunk of units start .. end-1."""
        body = sep.join(units[start:end])
        text = wrap(index, body)
        (n,) = sizer.count([_Laid([(u, 0, len(units[u])) for u in range(start, end)], sep, body, text)])
        return n, text, body

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
        n, text, body = count(index, start, end)
        while end - start > 1 and n > limit:
            end -= 1
            n, text, body = count(index, start, end)
        if end - start == 1 and n > limit:
            pieces = pack([units[start]], counter, limit, wrap=shifted(index), keep_first_line=keep_first_line)
            chunks.extend(Chunk(c.text, c.body, (start,)) for c in pieces)
        else:
            chunks.append(Chunk(text, body, tuple(range(start, end))))
        start = end
    return chunks
