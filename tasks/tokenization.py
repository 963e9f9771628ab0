"""Token counters used for chunking and for `context_tokens`.

A counter is named in the registry and on the command line (`--tokenizer`):

- ``qwen3``: the Qwen3 tokenizer at a pinned hub revision (the default; the reader is Qwen3-32B);
- ``simple``: a dependency-free, offline counter (one token per word or punctuation mark);
- a local directory or ``tokenizer.json`` file, or ``org/name[@revision]`` on the hub.

The manifest of every built task records which counter was used.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol

from .errors import SourceUnavailableError, TaskError

QWEN3_REPO = "Qwen/Qwen3-32B"
QWEN3_REVISION = "9216db5781bf21249d130ec9da846c4624c16137"

_SIMPLE_TOKEN = re.compile(r"\w+|[^\w\s]")
# The pre-tokenisation regex of Qwen2/Qwen3's tokenizer.json (one digit per pre-token).
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


class TokenCounter(Protocol):
    """Counts tokens; `describe()` is what the manifest records."""

    def count(self, text: str) -> int: ...

    def count_many(self, texts: Sequence[str]) -> list[int]: ...

    def describe(self) -> dict[str, str | None]: ...


class SimpleCounter:
    """One token per run of word characters or per punctuation mark; needs nothing, works offline."""

    name = "simple"

    def count(self, text: str) -> int:
        return len(_SIMPLE_TOKEN.findall(text))

    def count_many(self, texts: Sequence[str]) -> list[int]:
        findall = _SIMPLE_TOKEN.findall
        return [len(findall(t)) for t in texts]

    def describe(self) -> dict[str, str | None]:
        return {"name": "simple", "revision": None, "spec": "simple", "kind": "regex \\w+|[^\\w\\s]"}


_QWEN_PRE_TOKENIZER = {
    "type": "Sequence",
    "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN_SPLIT_PATTERN}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False},
    ],
}


class TokenScan:
    """One text's tokens, and where each starts (a `tokenizers` encoding with character offsets)."""

    __slots__ = ("_encoding", "_length", "tokens")

    def __init__(self, encoding, length: int):
        self._encoding = encoding
        self._length = length
        self.tokens = len(encoding)

    def before(self, position: int) -> int:
        """How many tokens start before character `position`."""
        if position <= 0:
            return 0
        if position >= self._length:
            return self.tokens
        encoding = self._encoding
        k = encoding.char_to_token(position)  # the first token that covers the character
        if k is None:  # no token covers it (a tokenizer that drops characters): count from the offsets
            return sum(start < position for start, _ in encoding.offsets)
        if encoding.token_to_chars(k)[0] < position:
            return k + 1
        while k and encoding.token_to_chars(k - 1)[0] >= position:  # an empty token just before
            k -= 1
        return k

    def piece_counts(self, ends: Sequence[int]) -> list[int]:
        """Tokens per piece of the text cut at the character positions `ends` (ascending): a token
        counts for the piece its first character is in."""
        bounds = [0, *(self.before(end) for end in ends), self.tokens]
        return [b - a for a, b in itertools.pairwise(bounds)]


@dataclass
class HFTokenizerCounter:
    """A Hugging Face `tokenizers` tokenizer (Rust, batched); special tokens are not added."""

    name: str
    revision: str | None
    tokenizer_file: Path
    spec: str  # what `get_counter` takes to load this tokenizer again

    def __post_init__(self) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(self.tokenizer_file))
        self._tok.no_truncation()
        self._tok.no_padding()

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False))

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """One count per text, from batched tokenizer calls over slices of about COUNT_SLICE_CHARS
        characters: the encodings of a call take ~100 bytes per token, so a whole memory is never
        encoded at once."""
        out: list[int] = []
        for start, end in _slices(texts, COUNT_SLICE_CHARS):
            encodings = self._tok.encode_batch_fast(list(texts[start:end]), add_special_tokens=False)
            out.extend(map(len, encodings))
        return out

    def scan(self, texts: Sequence[str]) -> list[TokenScan]:
        """Tokenise `texts` in one batched pass, keeping where each token starts."""
        if not texts:
            return []
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [TokenScan(e, len(t)) for e, t in zip(encodings, texts, strict=True)]

    def count_pieces(self, texts: Sequence[str], cuts: Sequence[Sequence[int]]) -> list[list[int]]:
        """Tokens per piece of each text cut at the character positions `cuts[k]` (ascending), from one
        batched pass over the whole texts: a token counts for the piece its first character is in."""
        return [scan.piece_counts(ends) for scan, ends in zip(self.scan(texts), cuts, strict=True)]

    @cached_property
    def splits_at_spaces(self) -> bool:
        """Whether counts add up across a space after a non-space character (see `splits_at_spaces`)."""
        return splits_at_spaces(self._tok)

    def describe(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "revision": self.revision,
            "spec": self.spec,
            "kind": "huggingface-tokenizers",
        }


COUNT_SLICE_CHARS = 1 << 18


def _slices(texts: Sequence[str], chars: int) -> Iterator[tuple[int, int]]:
    """Consecutive index ranges [start, end) of `texts` holding about `chars` characters each (at least one
    text each)."""
    start, size = 0, 0
    for i, text in enumerate(texts):
        if size and size + len(text) > chars:
            yield start, i
            start, size = i, 0
        size += len(text)
    if start < len(texts):
        yield start, len(texts)


def splits_at_spaces(tok) -> bool:
    """Whether the counts of `tok` (a `tokenizers.Tokenizer`) add up across a space that follows a
    non-space character: `count(a + b) == count(a) + count(b)` whenever `a` ends in a character that is
    not white space and `b` starts with " ".

    True for the one pipeline this was proven for, Qwen's (the default counter): an optional NFC
    normaliser (a space composes with nothing), a `Split` on Qwen's regex, byte-level BPE, and added
    tokens without white space that strip nothing. No alternative of that regex matches a non-space
    character followed by a space, nor looks past that space, so the pre-tokens of `a + b` are
    those of `a` followed by those of `b`; BPE tokenises each pre-token alone. The chunker uses this
    to count a chunk from the pass that sized its sentences (tests/test_chunk_counts.py holds it
    to the tokenizer on real text); for any other tokenizer it counts every chunk again.
    """
    from tokenizers.models import BPE

    try:
        normalizer = json.loads(tok.normalizer.__getstate__()) if tok.normalizer is not None else None
        pre_tokenizer = json.loads(tok.pre_tokenizer.__getstate__()) if tok.pre_tokenizer is not None else None
    except (AttributeError, TypeError, ValueError):
        return False
    for step in (pre_tokenizer or {}).get("pretokenizers", []):
        step.pop("trim_offsets", None)  # moves offsets, never tokens
    return (
        normalizer in (None, {"type": "NFC"})
        and pre_tokenizer == _QWEN_PRE_TOKENIZER
        and isinstance(tok.model, BPE)
        and tok.model.dropout is None
        and all(
            not (t.lstrip or t.rstrip or t.single_word) and not any(c.isspace() for c in t.content)
            for t in tok.get_added_tokens_decoder().values()
        )
    )


def piece_counts(counter: TokenCounter, texts: Sequence[str], cuts: Sequence[Sequence[int]]) -> list[list[int]]:
    """Token counts of the pieces of each text, cut at the character positions `cuts[k]` (ascending).

    A counter with `count_pieces` sizes the pieces in one pass over the whole texts (estimates: under a
    BPE a piece counted alone can differ by a token or two at its edges); any other counter counts each
    piece on its own.
    """
    method = getattr(counter, "count_pieces", None)
    if method is not None:
        return method(texts, cuts)
    pieces, sizes = [], []
    for text, ends in zip(texts, cuts, strict=True):
        bounds = [0, *ends, len(text)]
        pieces.extend(text[a:b] for a, b in itertools.pairwise(bounds))
        sizes.append(len(bounds) - 1)
    counts = counter.count_many(pieces)
    out, position = [], 0
    for size in sizes:
        out.append(counts[position : position + size])
        position += size
    return out


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _from_hub(repo: str, revision: str | None) -> HFTokenizerCounter:
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(repo, "tokenizer.json", revision=revision)
    except Exception as exc:  # offline, gated, unknown repo: all end the same way for the user
        raise SourceUnavailableError(
            f"cannot fetch the tokenizer {repo}@{revision or 'main'} from the Hugging Face hub ({exc}); "
            "on a machine without hub access use --tokenizer simple or a local tokenizer directory"
        ) from exc
    spec = f"{repo}@{revision}" if revision else repo
    return HFTokenizerCounter(name=repo, revision=revision, tokenizer_file=Path(path), spec=spec)


@lru_cache(maxsize=8)
def get_counter(spec: str = "qwen3") -> TokenCounter:
    """Resolve a `--tokenizer` value to a counter (cached: loading a tokenizer takes a moment)."""
    if spec == "simple":
        return SimpleCounter()
    if spec == "qwen3":
        return _from_hub(QWEN3_REPO, QWEN3_REVISION)
    path = Path(spec)
    if path.exists():
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise TaskError(f"{path}: no tokenizer.json there; --tokenizer needs a tokenizer.json or its folder")
        return HFTokenizerCounter(
            name=str(path), revision=f"sha256:{_file_sha256(file)}", tokenizer_file=file, spec=str(path)
        )
    if "/" in spec:
        repo, _, revision = spec.partition("@")
        return _from_hub(repo, revision or None)
    raise TaskError(
        f"unknown tokenizer {spec!r}: use 'qwen3', 'simple', a local tokenizer folder, or org/name[@revision]"
    )
