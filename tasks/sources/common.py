"""Readers and checks shared by the builders: every malformed input names its file and line or record."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..chunking import Wrap, chunk_text, pack_units
from ..errors import RawFormatError
from ..splits import capped, train_validation
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
    except (RecursionError, ValueError) as exc:  # nesting past the parser's limit, an integer over 4,300 digits
        raise RawFormatError(path, None, f"not readable JSON ({unreadable(exc)})") from None


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
            except (RecursionError, ValueError) as exc:
                raise RawFormatError(path, f"line {lineno}", f"not readable JSON ({unreadable(exc)})") from None


def unreadable(exc: Exception) -> str:
    """Why `json` gave up on a text that may be valid JSON (RecursionError, int_max_str_digits)."""
    return "nested too deep" if isinstance(exc, RecursionError) else str(exc).split(";")[0]


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
    """The texts of `chunking.pack_units` at a fixed limit: units (labelled examples, chat turns, session
    segments) packed whole, one too long even alone cut by sentences (use `split_to_fit` first to cut it
    another way); with `flush`, a chunk closes once it holds `flush` tokens."""
    return [c.text for c in pack_units(units, counter, limit, wrap=wrap, sep=sep, flush=flush)]


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
    return {"train": capped(train, train_cap, seed=seed), "validation": validation}
