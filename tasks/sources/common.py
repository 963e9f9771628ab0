"""Readers and checks shared by the builders: every malformed input names its file and line or record."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..chunking import Wrap, chunk_text
from ..errors import RawFormatError
from ..splits import train_validation
from ..tokenization import TokenCounter

T = TypeVar("T")


def read_json(path: Path) -> Any:
    """A whole JSON file; a syntax error names the line and column."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise RawFormatError(path, f"line {exc.lineno}, column {exc.colno}", f"not valid JSON ({exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise RawFormatError(path, f"byte {exc.start}", "not UTF-8 text") from exc


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, object) for each non-empty line of a JSON-lines file."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise RawFormatError(path, f"line {lineno}", f"not valid JSON ({exc.msg})") from exc


def read_json_records(path: Path) -> Iterator[tuple[str, Any]]:
    """Records of a file that is either a JSON array or JSON lines, with a location for each."""
    with open(path, encoding="utf-8") as f:
        head = f.read(1024).lstrip()
    if head.startswith("["):
        data = read_json(path)
        for i, record in enumerate(data):
            yield f"record {i}", record
    else:
        for lineno, record in read_jsonl(path):
            yield f"line {lineno}", record


def field(record: Any, key: str, kind: type | tuple[type, ...], path: Path | str, where: str) -> Any:
    """`record[key]`, checked to exist and to have type `kind`."""
    if not isinstance(record, Mapping):
        raise RawFormatError(path, where, f"expected a JSON object, found {type(record).__name__}")
    if key not in record:
        raise RawFormatError(path, where, "missing", field=key)
    value = record[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise RawFormatError(path, where, f"expected {names}, found {type(value).__name__}", field=key)
    return value


def read_csv(
    path: Path, required: Sequence[str], *, delimiter: str = ",", encoding: str = "utf-8"
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV file whose header must hold `required`."""
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise RawFormatError(path, "line 1", f"header lacks column(s) {', '.join(missing)}; found {header}")
        for row in reader:
            lineno = reader.line_num
            if None in row or any(row.get(c) is None for c in required):
                raise RawFormatError(path, f"line {lineno}", f"expected {len(header)} columns")
            yield lineno, row


def unique(values: Sequence[str]) -> list[str]:
    """Non-empty strings, stripped, in order, without repeats."""
    return list(dict.fromkeys(v.strip() for v in values if isinstance(v, str) and v.strip()))


def answer_in_chunks(answers: Sequence[str], chunks: Sequence[str]) -> bool:
    """True when at least one gold answer occurs verbatim in one chunk (extractive answers stay findable)."""
    return any(a in chunk for a in answers for chunk in chunks)


def split_to_fit(text: str, counter: TokenCounter, room: int, *, prefix: str = "") -> list[str]:
    """`prefix + text` as one unit when it fits in `room` tokens, else its sentence pieces, each prefixed."""
    if counter.count(prefix + text) <= room:
        return [prefix + text]
    return [c.text for c in chunk_text(text, counter, room, wrap=lambda _i, body: prefix + body)]


def pack_whole(
    units: Sequence[str],
    counter: TokenCounter,
    limit: int,
    *,
    wrap: Wrap | None = None,
    sep: str = "\n\n",
    flush: int | None = None,
) -> list[str]:
    """Pack units into chunks of at most `limit` tokens (wrapper included) without ever cutting one.

    Unlike `chunking.pack`, which fills chunks sentence by sentence, a unit here (a labelled example,
    a chat turn, a session segment) moves whole to the next chunk when it does not fit. With `flush`,
    a chunk is closed as soon as it holds `flush` tokens. A unit too long even alone is cut by
    sentences into chunks of its own (use `split_to_fit` first to cut it another way).
    """
    wrap = wrap or (lambda _i, body: body)

    def shifted(offset: int) -> Wrap:
        return lambda i, body: wrap(offset + i, body)

    counts = counter.count_many(units)
    sep_tokens = counter.count(sep)
    chunks: list[str] = []
    start = 0
    while start < len(units):
        index = len(chunks)
        end, total = start, counter.count(wrap(index, ""))
        while end < len(units):
            add = counts[end] + (sep_tokens if end > start else 0)
            if end > start and total + add > limit:
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
            chunks.extend(c.text for c in chunk_text(units[start], counter, limit, wrap=shifted(index)))
        else:
            chunks.append(text)
        start = end
    return chunks


def split_by_group(
    instances: Sequence[T], groups: Sequence[str], *, seed: int, train_cap: int | None = 100
) -> dict[str, list[T]]:
    """The 90/10 train/validation split drawn over groups (books, say), so a group never straddles it.

    The train side is then capped at `train_cap` instances, as `splits.train_validation` caps items.
    """
    sides = train_validation(sorted(set(groups)), seed=seed, train_cap=None)
    train_groups = set(sides["train"])
    train = [inst for inst, g in zip(instances, groups, strict=True) if g in train_groups]
    validation = [inst for inst, g in zip(instances, groups, strict=True) if g not in train_groups]
    if train_cap is not None and len(train) > train_cap:
        train = random.Random(seed + 1).sample(train, train_cap)
    return {"train": train, "validation": validation}
