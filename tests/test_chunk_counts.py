"""Exact chunk counts from one tokenizer pass, under the real Qwen-vocabulary BPE (`qwen_bpe`).

The chunker counts a chunk from the pass that sized its sentences, re-tokenising only the characters
around the first and last space cut of each stretch of source text (a space that follows a non-space
character), on the grounds that Qwen's tokenizer counts add up across such a cut
(`HFTokenizerCounter.splits_at_spaces`). These tests hold that ground and its use to the tokenizer itself,
on real text and on text salted with the characters most likely to break it.
"""

from __future__ import annotations

import json
import random
import unicodedata

import pytest
from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers

import tasks.chunking as chunking
from tasks import wrappers
from tasks.chunking import chunk_text, pack, pack_units
from tasks.sources.squad import read_squad_file
from tasks.tokenization import QWEN_SPLIT_PATTERN, HFTokenizerCounter, splits_at_spaces

SALT = [
    "  ", "\t", "\u00a0", "\u3000", "\u2003", "\u202f", "\n", "\r\n", " \n ", "\n\n  ", "e\u0301", "\u0301",
    "\u65e5\u672c\u8a9e\u3002", "123 4567", "<think>", "</think>", "<|im_start|>", "\U0001f600", "...", " '", "'s",
    "\x1c", "\u200b", "\u0085", "\ufeff", "x" * 40, "(a)", "\u2019ll", "--", " .",
]  # fmt: skip


def salted(paragraphs: list[str], seed: int) -> list[str]:
    """Real paragraphs with odd characters and white space stuck to random words."""
    rng = random.Random(seed)
    out = []
    for paragraph in paragraphs:
        words = paragraph.split(" ")
        for _ in range(rng.randint(0, 10)):
            i = rng.randrange(len(words))
            words[i] += rng.choice(SALT) + rng.choice(["", " "])
        out.append(" ".join(words))
    return out


def space_cuts(text: str) -> list[int]:
    return [p for p in range(1, len(text)) if text[p] == " " and not text[p - 1].isspace()]


@pytest.fixture(scope="module")
def texts(raw_dir) -> dict[str, list[str]]:
    """Real text of several kinds: SQuAD paragraphs, long-book answers (double spaces after full stops),
    LoCoMo chat turns, and SQuAD salted with odd characters."""
    squad = [p.context for f in sorted((raw_dir / "squad").glob("*.json")) for p in read_squad_file(f)]
    books = [
        json.loads(line)["prediction"]
        for f in sorted((raw_dir / "infinitebench").glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
    ]
    turns = []
    for conversation in json.loads((raw_dir / "locomo" / "locomo10.json").read_text(encoding="utf-8")):
        for session in conversation["conversation"].values():
            if isinstance(session, list):
                turns.extend(f"{t['speaker']}: {t['text']}" for t in session if isinstance(t, dict) and "text" in t)
    return {"squad": squad[:400], "books": books, "turns": turns[:1500], "salted": salted(squad[400:700], seed=3)}


# ------------------------------------------------------------------------------- the ground it stands on


def test_qwen_pipeline_is_recognised_and_others_are_not(qwen_bpe):
    assert qwen_bpe.splits_at_spaces is True

    def shaped(normalizer=None, pre_tokenizer=None, added=()) -> Tokenizer:
        """A tokenizer with Qwen's pipeline (a tiny vocabulary: the rule does not look at it), changed."""
        tok = Tokenizer(models.BPE({c: i for i, c in enumerate(pre_tokenizers.ByteLevel.alphabet())}, []))
        tok.normalizer = normalizer or normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizer or pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok.add_special_tokens(["<|im_start|>", *added])
        return tok

    assert splits_at_spaces(shaped()) is True
    variants = {
        "NFKC (maps a no-break space to a space)": shaped(normalizer=normalizers.NFKC()),
        "GPT-2's regex": shaped(pre_tokenizer=pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)),
        "an added token that strips": shaped(added=[AddedToken("<mark>", lstrip=True)]),
        "an added token with a space": shaped(added=["new york"]),
    }
    assert [name for name, tok in variants.items() if splits_at_spaces(tok)] == []


def test_no_character_joins_a_space_after_it(qwen_bpe):
    """The step the rule rests on: for every character that is not white space to Python (the chunker's
    test), Qwen's pre-tokenizer starts a new pre-token at a space that follows it, and NFC leaves the
    two apart. Checked for every control, format, separator and combining character, all of Latin-1 and
    a sample of everything else."""
    risky = {"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Mc", "Me"}
    rng = random.Random(0)
    chars = [
        chr(c)
        for c in range(0x110000)
        if not 0xD800 <= c < 0xE000
        and not chr(c).isspace()
        and (c < 0x100 or unicodedata.category(chr(c)) in risky or rng.random() < 0.02)
    ]
    assert len(chars) > 20_000
    text = "".join(c + " b" for c in chars)
    starts = {start for _, (start, _) in qwen_bpe._tok.pre_tokenizer.pre_tokenize_str(text)}
    assert [c for k, c in enumerate(chars) if 3 * k + 1 not in starts] == []
    assert [
        c for c in chars if unicodedata.normalize("NFC", f"a{c} b") != unicodedata.normalize("NFC", f"a{c}") + " b"
    ] == []


@pytest.mark.realdata
def test_counts_add_up_at_space_cuts(qwen_bpe, texts):
    rng = random.Random(1)
    pairs = []
    for kind, paragraphs in texts.items():
        for text in rng.sample(paragraphs, 60):
            cuts = space_cuts(text)
            if cuts:
                cut = rng.choice(cuts)
                pairs.append((kind, text[:cut], text[cut:]))
    assert len(pairs) > 200
    whole = qwen_bpe.count_many([a + b for _, a, b in pairs])
    left = qwen_bpe.count_many([a for _, a, _ in pairs])
    right = qwen_bpe.count_many([b for _, _, b in pairs])
    assert [p[0] for p, n, a, b in zip(pairs, whole, left, right, strict=True) if n != a + b] == []
    # and they do not add up elsewhere: what the rule excludes is real
    misses = 0
    for text in texts["squad"][:100]:
        p = text.index(" ") + 1  # just after a space: the word's leading space is cut off
        misses += qwen_bpe.count(text) != qwen_bpe.count(text[:p]) + qwen_bpe.count(text[p:])
    assert misses > 50


@pytest.mark.realdata
def test_token_scan_counts_the_tokens_that_start_before_a_position(qwen_bpe, texts):
    sample = texts["salted"][:40] + texts["turns"][:40]
    for text, scan in zip(sample, qwen_bpe.scan(sample), strict=True):
        starts = [start for start, _ in qwen_bpe._tok.encode(text, add_special_tokens=False).offsets]
        assert scan.tokens == len(starts)
        assert [scan.before(p) for p in range(len(text) + 1)] == [
            sum(s < p for s in starts) for p in range(len(text) + 1)
        ]


# ------------------------------------------------------------------------------- the chunker's use of it


class Believed:
    """Every count the packers took for a chunk, by the chunk's text; how many were laid out from the pass
    and how many counted whole."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.from_pass = 0
        self.whole = 0


@pytest.fixture
def believed(monkeypatch) -> Believed:
    seen = Believed()
    original_count, original_glue = chunking._Sizer.count, chunking._Sizer._glue

    def count(self, chunks):
        counts = original_count(self, chunks)
        for chunk, n in zip(chunks, counts, strict=True):
            assert seen.counts.setdefault(chunk.text, n) == n
        return counts

    def glue(self, *args):
        layout = original_glue(self, *args)
        if layout:
            seen.from_pass += 1
        else:
            seen.whole += 1
        return layout

    monkeypatch.setattr(chunking._Sizer, "count", count)
    monkeypatch.setattr(chunking._Sizer, "_glue", glue)
    return seen


def dialogue(i: int, body: str) -> str:
    return wrappers.dialogue(body, wrappers.date_for(i), random.Random(i))


def prefixed(i: int, body: str) -> str:
    return f"Part {i} of the record:\n{body}\n(end of part {i})"


CASES = [
    ("squad", "one text", 512, None),
    ("squad", "one text", 2048, dialogue),
    ("books", "one text", 300, prefixed),
    ("turns", "one text", 700, dialogue),
    ("salted", "one text", 256, None),
    ("salted", "one text", 96, prefixed),
    ("squad", "units", 256, dialogue),
    ("salted", "units", 128, None),
    ("turns", "whole units", 400, dialogue),
    ("salted", "whole units", 200, prefixed),
    ("books", "whole units", 160, None),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("kind", "packer", "limit", "wrap"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_every_chunk_count_is_the_tokenizers_and_within_the_limit(qwen_bpe, texts, believed, kind, packer, limit, wrap):
    paragraphs = texts[kind]
    if packer == "one text":
        chunks = chunk_text("\n\n".join(paragraphs), qwen_bpe, limit, wrap=wrap)
    elif packer == "units":
        chunks = pack(paragraphs, qwen_bpe, limit, wrap=wrap)
    else:
        chunks = pack_units(paragraphs, qwen_bpe, limit, wrap=wrap)
    texts_counted = list(believed.counts)
    truth = dict(zip(texts_counted, qwen_bpe.count_many(texts_counted), strict=True))
    assert {text: n for text, n in believed.counts.items() if truth[text] != n} == {}  # every count it took
    produced = qwen_bpe.count_many([c.text for c in chunks])
    assert [believed.counts[c.text] for c in chunks] == produced
    assert max(produced) <= limit
    assert believed.whole <= 0.02 * believed.from_pass  # counted from the pass, not whole


class Recounting:
    """The same tokenizer, minus `splits_at_spaces`: the packers then count every chunk on its text, as
    they did before counting from the pass."""

    def __init__(self, counter: HFTokenizerCounter):
        self.count = counter.count
        self.count_many = counter.count_many
        self.count_pieces = counter.count_pieces
        self.describe = counter.describe


@pytest.mark.realdata
@pytest.mark.parametrize(("kind", "packer", "limit", "wrap"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_chunks_are_those_of_counting_every_chunk(qwen_bpe, texts, kind, packer, limit, wrap):
    """Same decisions, so the same chunks (and built tasks keep their hashes)."""
    paragraphs = texts[kind]
    rng = random.Random(limit)
    budgets = [rng.randint(limit // 2, limit) for _ in range(5000)]
    for counter in (qwen_bpe, Recounting(qwen_bpe)):
        if packer == "one text":
            chunks = pack(["\n\n".join(paragraphs)], counter, lambda i: budgets[i], wrap=wrap, keep_first_line=True)
        elif packer == "units":
            chunks = pack(paragraphs, counter, limit, wrap=wrap)
        else:
            chunks = pack_units(paragraphs, counter, lambda i: budgets[i], limit=limit, wrap=wrap, flush=limit - 10)
        if counter is qwen_bpe:
            fast = chunks
    assert [(c.text, c.body, c.units) for c in fast] == [(c.text, c.body, c.units) for c in chunks]
    assert len(fast) > 5
