"""`pack_units` and `chunk_text` on inputs whose token counts can be read by eye (the `simple` counter: one
token per word or punctuation mark): the separator and the wrapper count toward each chunk's target,
`flush` closes a chunk early, a unit over the limit is cut into chunks numbered on from its position, and
a budget function needs a limit. Under a counter whose joins cost more than their parts (as a BPE's
can) the exact re-pack runs: drafts give back pieces, a lone piece is cut by its overflow, an enormous
word is halved, and a piece that cannot shrink is an error. Each expected packing is worked out in the
comments. Then the packers' helpers on hand-made input: list markers, space cuts, where split pieces and
a chunk's stretches lie, and drafts that, under an additive counter, are never re-packed."""

from __future__ import annotations

import math
import random
import re

import pytest

import tasks.chunking as chunking
from tasks.chunking import (
    DRAFT_WINDOW,
    Chunk,
    _cut_after,
    _cut_before,
    _join,
    _Piece,
    _spans,
    _split_piece,
    chunk_text,
    pack,
    pack_units,
    split_sentences,
)
from tasks.tokenization import get_counter

COUNTER = get_counter("simple")
UNITS = ["a b", "c d e", "f", "g h i j"]  # 2, 3, 1 and 4 tokens


def texts(chunks: list[Chunk]) -> list[tuple[str, tuple[int, ...]]]:
    return [(c.text, c.units) for c in chunks]


def test_the_separator_counts_toward_the_target():
    # " | " is one token: 2 + 1 + 3 = 6 fits a target of 6, adding "f" (+ 2) does not; then 1 + 1 + 4 = 6
    chunks = pack_units(UNITS, COUNTER, lambda i: 6, limit=100, sep=" | ")
    assert texts(chunks) == [("a b | c d e", (0, 1)), ("f | g h i j", (2, 3))]
    # without a counted separator the first chunk would take "f" too: 2 + 3 + 1 = 6
    assert texts(pack_units(UNITS, COUNTER, lambda i: 6, limit=100, sep="  ")) == [
        ("a b  c d e  f", (0, 1, 2)),
        ("g h i j", (3,)),
    ]


def test_the_wrapper_counts_toward_the_target_and_each_chunk_takes_one_unit_at_least():
    # "[i] " is 3 tokens: 3 + 2 = 5, + 1 + 3 > 6; 3 + 3 = 6; 3 + 1 = 4, + 1 + 4 > 6; 3 + 4 = 7 > 6 but alone
    chunks = pack_units(UNITS, COUNTER, lambda i: 6, limit=100, sep=" | ", wrap=lambda i, body: f"[{i}] {body}")
    assert texts(chunks) == [("[0] a b", (0,)), ("[1] c d e", (1,)), ("[2] f", (2,)), ("[3] g h i j", (3,))]
    assert [c.body for c in chunks] == UNITS


def test_flush_closes_a_chunk_once_it_holds_enough():
    chunks = pack_units(UNITS, COUNTER, 100, sep=" | ", flush=3)
    assert texts(chunks) == [("a b | c d e", (0, 1)), ("f | g h i j", (2, 3))]  # 2 < 3, then 6 >= 3; 1, then 6
    assert texts(pack_units(UNITS, COUNTER, 100, sep=" | ", flush=2)) == [
        ("a b", (0,)),
        ("c d e", (1,)),
        ("f | g h i j", (2, 3)),
    ]


def test_a_unit_over_the_limit_is_cut_into_chunks_numbered_on_from_its_place():
    long = "One two three. Four five six. Seven eight nine."  # three sentences of 4 tokens each
    chunks = pack_units(["x", long, "y"], COUNTER, 9, sep=" ", wrap=lambda i, body: f"<{i}> {body}")
    assert [c.text for c in chunks] == [
        "<0> x",
        "<1> One two three.",
        "<2> Four five six.",
        "<3> Seven eight nine.",
        "<4> y",
    ]
    assert [c.units for c in chunks] == [(0,), (1,), (1,), (1,), (2,)]
    assert all(COUNTER.count(c.text) <= 9 for c in chunks)


def test_a_title_line_stays_with_its_sentence_only_when_asked():
    """Title (1 token) + a 5-token sentence overflow a 5-token limit: by default the title is a chunk of its
    own; kept with its sentence, the sentence is cut at words instead."""
    unit = "Title\nOne two three four. Five six seven eight."
    plain = pack_units([unit], COUNTER, 5)
    assert [c.text for c in plain] == ["Title", "One two three four.", "Five six seven eight."]
    kept = pack_units([unit], COUNTER, 5, keep_first_line=True)
    assert [c.text for c in kept] == ["Title\nOne two three", "four.", "Five six seven eight."]


def test_a_budget_function_needs_a_limit():
    with pytest.raises(ValueError, match=r"^pack_units: a budget function needs an explicit `limit`$"):
        pack_units(UNITS, COUNTER, lambda i: 6)


def test_chunk_text_wraps_each_chunk():
    chunks = chunk_text("One two three. Four five six.", COUNTER, 7, wrap=lambda i, body: f"#{i} {body}")
    assert [c.text for c in chunks] == ["#0 One two three.", "#1 Four five six."]


class SuperAdditive:
    """A token counter whose joins cost more than their parts, as a BPE's can: one token per word (one
    per 4 characters of a longer word) plus one for every third word of the text. Pieces counted alone
    underestimate their join, so the packer's exact re-pack paths run, on counts read by eye."""

    def count(self, text: str) -> int:
        words = text.split()
        return sum(math.ceil(len(w) / 4) for w in words) + len(words) // 3

    def count_many(self, texts):
        return [self.count(t) for t in texts]

    def describe(self) -> dict:
        return {"name": "super-additive"}


SUPER = SuperAdditive()


def test_an_overflowing_draft_gives_back_its_last_sentence():
    # each sentence is 2 tokens: three fill the estimate of 6, but their join is 6 words = 8 tokens;
    # giving one back leaves 4 words = 5 tokens
    chunks = pack(["Aa bb. Cc dd. Ee ff. Gg hh."], SUPER, 6)
    assert texts(chunks) == [("Aa bb. Cc dd.", (0,)), ("Ee ff. Gg hh.", (0,))]
    assert all(SUPER.count(c.text) <= 6 for c in chunks)


def test_the_re_pack_counts_separators_and_wrappers():
    # " | " is one word: 2 + 2 + 1 + 2 = 7 estimated, 7 words = 9 actual > 7, so unit 1 goes back
    chunks = pack(["Aa bb. Cc dd.", "Ee ff. Gg hh."], SUPER, 7, sep=" | ")
    assert texts(chunks) == [("Aa bb. Cc dd.", (0,)), ("Ee ff. Gg hh.", (1,))]
    # "<0> " is one token: room 7 takes three sentences (6), but "<0> Aa bb. Cc dd. Ee ff." is 7 words = 9
    chunks = pack(["Aa bb. Cc dd. Ee ff."], SUPER, 8, wrap=lambda i, body: f"<{i}> {body}")
    assert [c.text for c in chunks] == ["<0> Aa bb. Cc dd.", "<1> Ee ff."]
    assert [c.body for c in chunks] == ["Aa bb. Cc dd.", "Ee ff."]


def test_a_lone_piece_that_overflows_is_split_by_its_overflow():
    """One 9-word sentence (12 tokens) in chunks of 6: cut at words into 6 + 3 estimated tokens; the
    first part is 6 words = 8 tokens, 2 over, so it is cut again into parts of 6 - 2 - 1 = 3 words."""
    chunks = pack(["Aa bb cc dd ee ff gg hh ii."], SUPER, 6)
    assert [c.text for c in chunks] == ["Aa bb cc", "dd ee ff", "gg hh ii."]
    assert all(SUPER.count(c.text) <= 6 for c in chunks) and {c.units for c in chunks} == {(0,)}


@pytest.mark.parametrize(
    ("limit", "parts"),
    [(4, ["abcdefghijkl", "mnopqrstuvwx"]), (2, ["abcdef", "ghijkl", "mnopqr", "stuvwx"])],
)
def test_one_enormous_word_is_halved_until_each_part_fits(limit, parts):
    # 24 characters = 6 tokens: halves of 3 fit a limit of 4; for 2 each half is halved again (2 tokens)
    assert [c.text for c in pack(["abcdefghijklmnopqrstuvwx"], SUPER, limit)] == parts


def test_a_piece_that_cannot_shrink_further_is_an_error_not_an_overflow():
    # the wrapper is 2 words (2 tokens), leaving room 1 of 3; "x" fits that, but "<0> <> x" is 3 words = 4
    with pytest.raises(ValueError, match=r"^cannot fit text into a 3-token chunk: 'x'$"):
        pack(["x"], SUPER, 3, wrap=lambda i, body: f"<{i}> <> {body}")


def test_whole_units_give_back_under_a_super_additive_counter():
    # 2 + 2 + 2 = 6 estimated (the blank-line separator is no word), but 6 words = 8; two units are 5
    chunks = pack_units(["Aa bb", "Cc dd", "Ee ff"], SUPER, 6)
    assert texts(chunks) == [("Aa bb\n\nCc dd", (0, 1)), ("Ee ff", (2,))]


class CharCounter:
    """One token per character that is not a space."""

    def count(self, text: str) -> int:
        return len(text.replace(" ", ""))

    def count_many(self, texts):
        return [self.count(t) for t in texts]

    def describe(self) -> dict:
        return {"name": "chars"}


def test_a_sentence_is_cut_at_words_each_part_starting_from_zero():
    assert [c.text for c in pack(["a b c d e f g"], COUNTER, 3)] == ["a b c", "d e f", "g"]
    # two words are words, not one enormous word cut by characters
    assert [c.text for c in pack(["Alpha betagamma"], COUNTER, 1)] == ["Alpha", "betagamma"]


def test_a_word_is_cut_down_to_single_characters_when_it_must_be():
    assert [c.text for c in pack(["abc"], CharCounter(), 1)] == ["a", "b", "c"]
    assert [c.text for c in pack(["abcd"], CharCounter(), 1)] == ["a", "b", "c", "d"]  # halves, then halves again


def test_the_parts_of_a_cut_word_keep_their_unit():
    chunks = pack(["x", "abcdefghijklmnopqrstuvwx"], SUPER, 4)
    assert texts(chunks) == [("x", (0,)), ("abcdefghijkl", (1,)), ("mnopqrstuvwx", (1,))]
    chunks = pack(["x", "abcdefghijklmnopqrstuvwx"], SUPER, 2)  # halved twice
    assert [c.units for c in chunks] == [(0,), (1,), (1,), (1,), (1,)]


def test_a_trailing_space_before_a_unit_separator_is_dropped():
    assert [c.text for c in pack(["Aa bb. \n", "Cc dd."], COUNTER, 100, sep=" | ")] == ["Aa bb. | Cc dd."]


def test_a_re_packed_chunk_may_reach_the_limit_exactly():
    # 2 + 2 + 1 = 5 estimated, 5 words = 6 actual; without "Ee." 4 words = 5 tokens: exactly the limit
    assert [c.text for c in pack(["Aa bb. Cc dd. Ee."], SUPER, 5)] == ["Aa bb. Cc dd.", "Ee."]


def test_an_overflow_as_large_as_the_room_cuts_word_by_word():
    # the 2-token wrapper leaves room 2; "<0> <> Aa bb." is 4 words = 5 tokens, 1 over: parts of
    # max(1, 2 - 1 - 1) = 1 word each
    chunks = pack(["Aa bb."], SUPER, 4, wrap=lambda i, body: f"<{i}> <> {body}")
    assert [c.text for c in chunks] == ["<0> <> Aa", "<1> <> bb."]


def test_whole_units_that_overflow_together_part_and_those_at_the_limit_stay():
    assert texts(pack_units(["Aa bb", "Cc dd"], SUPER, 4)) == [("Aa bb", (0,)), ("Cc dd", (1,))]  # 5 > 4
    assert texts(pack_units(["Aa bb", "Cc dd"], SUPER, 5)) == [("Aa bb\n\nCc dd", (0, 1))]  # 5 = 5


def test_a_unit_that_fits_is_kept_verbatim():
    assert texts(pack_units([" Aa bb "], COUNTER, 2)) == [(" Aa bb ", (0,))]  # 2 tokens: at the limit


def test_the_target_of_each_chunk_is_asked_by_its_index():
    chunks = pack_units(UNITS, COUNTER, lambda i: [3, 100][min(i, 1)], limit=100, sep=" | ")
    assert texts(chunks) == [("a b", (0,)), ("c d e | f | g h i j", (1, 2, 3))]


# ------------------------------------------------------------------------------- the packers' helpers


def test_markers_join_the_text_they_number_unless_alone_on_their_line():
    assert split_sentences("1. 2. Both.") == ["1. 2. Both."]  # two markers in a row, both kept
    assert split_sentences("Done. 3.") == ["Done. ", "3."]  # a marker at the very end stays
    assert split_sentences("Steps:\n1.\nDo it.") == ["Steps:\n", "1.\n", "Do it."]  # a line of its own


def test_a_title_line_is_kept_with_its_sentence_only_when_asked_and_there_is_one():
    # "Title\nOne two." is 4 tokens: the title kept with its sentence makes one 4-token piece, cut at words
    assert [c.text for c in pack(["Title\nOne two."], COUNTER, 3)] == ["Title", "One two."]
    assert [c.text for c in pack(["Title\nOne two."], COUNTER, 3, keep_first_line=True)] == ["Title\nOne", "two."]
    assert [c.text for c in pack(["Title\n"], COUNTER, 3, keep_first_line=True)] == ["Title"]


def test_a_wrapper_as_large_as_the_limit_leaves_no_room():
    with pytest.raises(ValueError, match=r"^chunk budget 3 leaves no room after the 3-token wrapper$"):
        pack(["text"], COUNTER, 3, wrap=lambda i, body: f"a b c {body}")


def first_space_cut(text: str, start: int, end: int, last: bool = False) -> int | None:
    cuts = [p for p in range(start + 1, end) if text[p] == " " and not text[p - 1].isspace()]
    return (cuts[-1] if last else cuts[0]) if cuts else None


def test_space_cuts_are_found_as_defined():
    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(rng.choice("ab \n\t") for _ in range(rng.randint(0, 12)))
        start = rng.randint(0, len(text))
        end = rng.randint(start, len(text))
        assert _cut_after(text, start, end) == first_space_cut(text, start, end), (text, start, end)
        assert _cut_before(text, start, end) == first_space_cut(text, start, end, last=True), (text, start, end)


def triples(pieces: list[_Piece]) -> list[tuple[str, int, int]]:
    return [(p.text, p.tokens, p.start) for p in pieces]


def test_a_split_piece_keeps_where_each_part_is_and_what_it_counts():
    # a sentence at position 4 of its unit, cut at words into parts of 2 tokens
    parts = _split_piece(_Piece(0, "Aa bb cc dd ee.", 6, 4), 2, COUNTER)
    assert triples(parts) == [("Aa bb ", 2, 4), ("cc dd ", 2, 10), ("ee.", 2, 16)]
    # one word at position 3, halved while a part is over the limit: parts at the limit are not halved
    assert triples(_split_piece(_Piece(0, "abcd", 4, 3), 2, CharCounter())) == [("ab", 2, 3), ("cd", 2, 5)]
    assert triples(_split_piece(_Piece(0, "abcd", 4, 3), 1, CharCounter())) == [
        ("a", 1, 3),
        ("b", 1, 4),
        ("c", 1, 5),
        ("d", 1, 6),
    ]


class TwoPerCharacter:
    def count(self, text: str) -> int:
        return 2 * len(text)

    def count_many(self, texts):
        return [self.count(t) for t in texts]


def test_single_characters_are_the_smallest_parts_even_over_the_limit():
    assert triples(_split_piece(_Piece(0, "ab", 4, 0), 1, TwoPerCharacter())) == [("a", 2, 0), ("b", 2, 1)]


def test_the_stretches_of_a_chunk_are_its_pieces_joined_and_trimmed_as_its_body():
    # pieces of one unit that follow each other make one stretch; only the chunk's first stretch loses its
    # leading white space (as the body's strip does), every stretch its trailing white space
    units = ["Xx. Aa bb. Cc dd.   ", " Ee ff. Gg. ", "  Hh."]
    taken = [_Piece(0, "Aa bb. ", 2, 4), _Piece(0, "Cc dd.   ", 2, 11), _Piece(1, " Ee ff. ", 2, 0)]
    taken += [_Piece(1, "Gg. ", 1, 8), _Piece(2, "  Hh.", 1, 0)]
    spans = _spans(taken, units)
    assert spans == [(0, 4, 17), (1, 0, 11), (2, 0, 5)]
    assert "|".join(units[u][a:b] for u, a, b in spans) == _join(taken, "|") == "Aa bb. Cc dd.| Ee ff. Gg.|  Hh."
    units = ["   Aa. Bb.   "]
    assert _spans([_Piece(0, "   Aa. ", 1, 0), _Piece(0, "Bb.   ", 1, 7)], units) == [(0, 3, 10)]
    # a first piece of white space alone comes out as an empty stretch
    units = ["abcdef   ", "Gg."]
    assert _spans([_Piece(0, "   ", 0, 6), _Piece(1, "Gg.", 1, 0)], units) == [(0, 9, 9), (1, 0, 3)]


@pytest.fixture
def no_repack(monkeypatch):
    def repack(*args):
        raise AssertionError("a draft was re-packed")

    monkeypatch.setattr(chunking, "_exact_chunk", repack)


def test_under_an_additive_counter_every_draft_is_right_first_time(no_repack):
    """The estimates are exact under the `simple` counter, so no draft overflows, not even one at the limit:
    "[i] " is 3 tokens of 9, leaving 6; " | " is one token. 3 + 3 fill the first chunk; 4 + 1 + 2 > 6."""
    units = ["Aa bb. Cc dd.", "Ee ff gg.", "Hh."]
    chunks = pack(units, COUNTER, 9, sep=" | ", wrap=lambda i, body: f"[{i}] {body}")
    assert texts(chunks) == [("[0] Aa bb. Cc dd.", (0,)), ("[1] Ee ff gg.", (1,)), ("[2] Hh.", (2,))]
    assert COUNTER.count(chunks[0].text) == 9


def test_drafts_are_counted_a_window_at_a_time(monkeypatch):
    batches = []
    original = chunking._Sizer.count

    def count(self, chunks):
        batches.append(len(chunks))
        return original(self, chunks)

    monkeypatch.setattr(chunking._Sizer, "count", count)
    assert len(pack(["Aa bb. " * (DRAFT_WINDOW + 8)], COUNTER, 3)) == DRAFT_WINDOW + 8
    assert batches == [DRAFT_WINDOW, 8]


class PerFortyCharacters:
    """One token per 40 characters of a text, leading and trailing white space not counted: a word alone is
    no token, a line of them is."""

    def count(self, text: str) -> int:
        return len(text.strip()) // 40

    def count_many(self, texts):
        return [self.count(t) for t in texts]


def test_the_piece_that_cannot_fit_is_quoted_by_its_first_80_characters():
    # 50 words of no token each, 2 tokens together: over a 1-token limit, and cut at words it stays whole
    with pytest.raises(ValueError, match=r"^cannot fit text into a 1-token chunk: " + re.escape(repr("a " * 40)) + "$"):
        pack([" ".join(["a"] * 50)], PerFortyCharacters(), 1)
