"""Token counters: the offline simple counter, local tokenizer files, and clear errors."""

from __future__ import annotations

import pytest

from tasks.errors import SourceUnavailableError, TaskError
from tasks.tokenization import get_counter


def test_simple_counter_counts_words_and_punctuation():
    counter = get_counter("simple")
    assert counter.count("Hello, world! It's 2024.") == 9  # Hello , world ! It ' s 2024 .
    assert counter.count_many(["a b", "", "c."]) == [2, 0, 2]
    assert counter.describe()["spec"] == "simple"


def test_local_tokenizer_file_is_loaded_and_described(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        ["the cat sat on the mat"] * 50, trainers.BpeTrainer(vocab_size=60, special_tokens=["[UNK]"])
    )
    tok.save(str(tmp_path / "tokenizer.json"))
    counter = get_counter(str(tmp_path))
    assert counter.count("the cat sat") == 3
    assert counter.count_many(["the mat", "cat"]) == [2, 1]
    described = counter.describe()
    assert described["revision"].startswith("sha256:") and described["spec"] == str(tmp_path)


def test_hub_tokenizer_offline_gives_actionable_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    get_counter.cache_clear()
    with pytest.raises(SourceUnavailableError, match="--tokenizer simple"):
        get_counter("someorg/not-a-real-tokenizer@abc")


def test_unknown_tokenizer_name_is_rejected():
    with pytest.raises(TaskError, match="unknown tokenizer"):
        get_counter("nonsense")


def test_counts_come_from_bounded_slices_and_equal_one_text_at_a_time(qwen_bpe, monkeypatch):
    """A whole memory is never encoded in one call (its encodings take ~100 bytes a token): the texts go in
    slices of about COUNT_SLICE_CHARS characters, and the counts are those of each text alone."""
    from tasks import tokenization

    texts = [f"Entry {i}: the café on rue {i} opened in {1900 + i}." * (1 + i % 7) for i in range(300)]
    texts += ["", "a" * 5000]
    calls: list[tuple[int, int]] = []  # (texts, characters) per tokenizer call
    encode = qwen_bpe._tok.encode_batch_fast

    def spy(batch, **kwargs):
        calls.append((len(batch), sum(map(len, batch))))
        return encode(batch, **kwargs)

    monkeypatch.setattr(tokenization, "COUNT_SLICE_CHARS", 2000)
    monkeypatch.setattr(qwen_bpe, "_tok", type("Spy", (), {"encode_batch_fast": staticmethod(spy)})())
    counts = qwen_bpe.count_many(texts)
    monkeypatch.undo()
    assert counts == [qwen_bpe.count(t) for t in texts]
    assert len(calls) > 10 and all(chars <= 2000 or n == 1 for n, chars in calls)  # a longer text goes alone
    assert sum(n for n, _ in calls) == len(texts)
    assert qwen_bpe.count_many([]) == []
