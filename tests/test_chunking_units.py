"""`pack_units` and `chunk_text` on inputs whose token counts can be read by eye (the `simple` counter: one
token per word or punctuation mark): the separator and the wrapper count toward each chunk's target,
`flush` closes a chunk early, a unit over the limit is cut into chunks numbered on from its position, and
a budget function needs a limit. Under a counter whose joins cost more than their parts (as a BPE's
can) the exact re-pack runs: drafts give back pieces, a lone piece is cut by its overflow, an enormous
word is halved, and a piece that cannot shrink is an error. Each expected packing is worked out in the
comments."""

from __future__ import annotations

import math

import pytest

from tasks.chunking import Chunk, chunk_text, pack, pack_units
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
