"""Strict JSON reading for every file the project accepts: memories, submissions, results-store records,
board files, run configs, task manifests and `memalpha metric` input lines.

Python's `json` module alone lets through what later crashes or misleads: nesting deep enough to raise
RecursionError, integers too long to convert (over 4,300 digits: ValueError), NaN and Infinity (not
JSON), numbers that overflow to infinity, escaped lone surrogates ("\\ud800": text that cannot be written
back as UTF-8, so `score` crashed when it saved a prompt) and duplicate keys (two readers of one file may
keep different values). Each is a `JsonProblem` here, with its place: the line when the parser knows it,
and the field as a path (`memory.semantic[3].content`).

Control characters are refused in object keys. In string values they are left to the format built on
this reader, which knows what a value is: task text holds them (a real InfiniteBench file carries
U+001D), so a memory that copies its input verbatim must load, while names may not hold any
(benchmark.memory: ids, task names, timestamps; the leaderboard: every submitted text, with all problems
of a file listed at once).

Records files are read line by line on b"\\n" only (`record_lines`): JSON text may hold U+2028, U+2029 or
U+0085 raw, and `str.splitlines` would cut a record in two there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from .errors import TaskError, quoted

MAX_DEPTH = 64  # nested arrays/objects; every accepted format needs fewer than 10
INT_LIMIT = 2**63  # integers must lie in the signed 64-bit range
_INT_CHARS = 20  # a 64-bit integer has at most 19 digits and a sign
FIELD_PARTS_SHOWN = 8
KEY_CHARS_SHOWN = 40

# Escapes that can decode to something refused: C0 controls (\u0000-\u001f, \b, \f) and surrogates. A hit
# only means "look closer" (an escaped backslash before a `u` also matches); the walk over the decoded
# value decides.
_SUSPECT_ESCAPE = re.compile(r"\\(?:u(?:00[01][0-9a-fA-F]|[dD][89a-fA-F][0-9a-fA-F]{2})|[bf])")
_SUSPECT_ESCAPE_BYTES = re.compile(_SUSPECT_ESCAPE.pattern.encode())
_BAD_IN_TEXT = re.compile("[\ud800-\udfff]")
_BAD_IN_KEY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class JsonProblem(ValueError):
    """Why a JSON text is refused: `message`, the `field` path inside the value ("" for the whole text) and
    the `line` of the text when the parser knows it."""

    def __init__(self, message: str, field: str = "", line: int | None = None):
        super().__init__(message)
        self.message, self.field, self.line = message, field, line


def location(source: str | Path, line: int | None = None, field: str = "") -> str:
    """`source, line N, field 'x'`: how every reading error names its place."""
    return f"{source}" + (f", line {line}" if line else "") + (f", field {field!r}" if field else "")


class JsonInputError(TaskError):
    """A file, or one line of a records file, that is not acceptable JSON; names the file, line and field."""

    def __init__(self, source: str | Path, problem: JsonProblem, line: int | None = None):
        self.source, self.problem = str(source), problem
        self.line = line if line is not None else problem.line
        super().__init__(f"{location(self.source, self.line, problem.field)}: {problem.message}")


class _Rejected:
    """Stands in for a number the parser must not return; the walk reports it at its field."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


class _DuplicateKeys(dict):
    """An object that gave `key` twice (it keeps the last value, as `json` does)."""

    key: str = ""


class _Hooks:
    """Parser hooks for one decode; `flagged` says a hook stood something in for a refused value."""

    def __init__(self) -> None:
        self.flagged = False

    def reject(self, message: str) -> _Rejected:
        self.flagged = True
        return _Rejected(message)

    def object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) == len(pairs):
            return value
        self.flagged = True
        duplicate = _DuplicateKeys(pairs)
        seen: set[str] = set()
        duplicate.key = next(k for k, _ in pairs if k in seen or seen.add(k))
        return duplicate

    def integer(self, text: str) -> int | _Rejected:
        if len(text) <= _INT_CHARS:
            value = int(text)
            if -INT_LIMIT <= value < INT_LIMIT:
                return value
            return self.reject(f"the integer {text} is outside the signed 64-bit range; integers must fit in 64 bits")
        digits = len(text.lstrip("-"))
        return self.reject(f"an integer of {digits:,} digits; integers must fit in 64 bits (at most 19 digits)")

    def number(self, text: str) -> float | _Rejected:
        value = float(text)
        if math.isfinite(value):
            return value
        return self.reject(f"the number {quoted(text, 30)} is too large to represent (it would be infinite)")

    def constant(self, name: str) -> _Rejected:
        return self.reject(f"{name} is not a JSON value")


def _field(path: tuple[str | int, ...]) -> str:
    """`memory.semantic[3].content` from the keys and indexes on the way; long paths and keys are cut."""
    out = []
    for part in path[:FIELD_PARTS_SHOWN]:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            key = part if len(part) <= KEY_CHARS_SHOWN else part[:KEY_CHARS_SHOWN] + "…"
            out.append(("." if out else "") + key)
    more = len(path) - FIELD_PARTS_SHOWN
    return "".join(out) + (f"… ({more} levels more)" if more > 0 else "")


def _text_problem(value: str, pattern: re.Pattern[str], what: str) -> str | None:
    bad = pattern.search(value)
    if bad is None:
        return None
    code = ord(bad.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"{what} holds a lone surrogate U+{code:04X} (half of a UTF-16 pair) at position {bad.start()}; not text"
    return f"{what} holds the control character U+{code:04X} at position {bad.start()}"


def _find_problem(root: Any) -> JsonProblem | None:
    """The first refused thing in document order, with its field path (depth, numbers, keys, text)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _Rejected):
            return JsonProblem(value.message, _field(path))
        if isinstance(value, str):
            if why := _text_problem(value, _BAD_IN_TEXT, "the text"):
                return JsonProblem(why, _field(path))
            continue
        if not isinstance(value, dict | list):
            continue
        if len(path) >= MAX_DEPTH:
            return JsonProblem(f"nested deeper than {MAX_DEPTH} levels", _field(path))
        if isinstance(value, _DuplicateKeys):
            return JsonProblem(f"the key {quoted(value.key)} is given twice in one object", _field(path))
        if isinstance(value, dict):
            for key in value:
                if why := _text_problem(key, _BAD_IN_KEY, "the key"):
                    return JsonProblem(why, _field((*path, key)))
            children: Iterable[tuple[str | int, Any]] = value.items()
        else:
            children = enumerate(value)
        stack.extend(((item, (*path, key)) for key, item in reversed(list(children))))
    return None


def _deeper_than(root: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` deep: level by level, looking at containers only."""
    level = [root] if type(root) is dict or type(root) is list else []
    for _ in range(limit):
        if not level:
            return False
        level = [
            x
            for v in level
            for x in (v.values() if type(v) is dict else v)
            if type(x) is dict or type(x) is list  # exact types: the fast path sees only plain values
        ]
    return bool(level)


def decode(data: str | bytes) -> Any:
    """A JSON text (bytes must be UTF-8) decoded strictly; JsonProblem says what is refused and where."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise JsonProblem(f"not UTF-8 text (byte {exc.start})", line=line) from None
    else:
        text = data
    hooks = _Hooks()
    try:
        value = json.loads(
            text,
            object_pairs_hook=hooks.object,
            parse_int=hooks.integer,
            parse_float=hooks.number,
            parse_constant=hooks.constant,
        )
    except json.JSONDecodeError as exc:
        raise JsonProblem(f"not valid JSON ({exc.msg}, column {exc.colno})", line=exc.lineno) from None
    except RecursionError:
        raise JsonProblem(f"nested deeper than {MAX_DEPTH} levels") from None
    if hooks.flagged or _SUSPECT_ESCAPE.search(text) or _deeper_than(value, MAX_DEPTH):
        problem = _find_problem(value)
        if problem is not None:
            raise problem
    return value


def decode_reply(data: bytes) -> Any:
    """A server's reply, fast, refusing what would crash or corrupt text. `orjson` reads a plain reply in
    0.8–0.9 µs against 3.1–3.4 µs for `json.loads` (docs/performance.md) and refuses lone surrogates
    itself, so what it reads is taken as it is. What it refuses goes to `json.loads`, which also takes a
    byte-order mark, UTF-16, NaN and numbers that overflow to infinity, and then to the walk of `decode`'s
    checks when an escape may be a lone surrogate; where `json` gives up too (RecursionError, an integer
    over 4,300 digits, no JSON at all) `decode` reads it and raises JsonProblem. Repeated keys, NaN, keys
    with control characters and nesting that `json` can parse pass: a reply's reader looks at a few
    fields only, and `decode` costs several times `json.loads` on every reply of a scoring run."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return decode(data)
    if _SUSPECT_ESCAPE_BYTES.search(data):
        problem = _find_problem(value)
        if problem is not None:
            raise problem
    return value


def load_line(raw: str | bytes, source: str | Path, line: int) -> Any:
    """One line of a records file, decoded strictly; JsonInputError names the file and line."""
    try:
        return decode(raw)
    except JsonProblem as problem:
        raise JsonInputError(source, problem, line) from None


def load_file(path: str | Path, what: str = "JSON file") -> Any:
    """A whole JSON file, decoded strictly; JsonInputError names the file, the line (syntax errors) and the
    field. A file that cannot be read is a TaskError too."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TaskError(f"{path}: cannot read this {what} ({exc.strerror or exc})") from None
    try:
        return decode(data)
    except JsonProblem as problem:
        raise JsonInputError(path, problem) from None


def record_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) for each non-blank line of a binary stream, split on b"\\n" only."""
    for number, raw in enumerate(stream, 1):
        if raw.strip():
            yield number, raw


def read_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSON-lines file; stops at the first bad line with
    a JsonInputError naming it."""
    with open(path, "rb") as stream:
        for number, raw in record_lines(stream):
            yield number, load_line(raw, path, number)
