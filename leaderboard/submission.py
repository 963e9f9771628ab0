"""The submission format: a folder with `submission.json` (who made the memories, with what, for which
board and task versions) and `memories.jsonl` (benchmark.memory's format). See docs/submit.md.

This module holds the metadata schema, its checks, the size limits and the names derived from a
submission (identity, record id). Every check reports a Problem; nothing stops at the first one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.errors import TaskError, UnknownNameError, quoted

from .boards import Board, get_board
from .names import invisible_problem, name_key

FORMAT = "memalpha-bench/submission@1"
SUBMISSION_FILE = "submission.json"
MEMORIES_FILE = "memories.jsonl"
PLACEHOLDER = "TODO"  # `init` writes "TODO: <what to give>" where the run does not tell
MAX_PROBLEMS_SHOWN = 100
FIELD_CHARS = {
    "agent.name": 100,
    "agent.version": 50,
    "model": 200,
    "parameters": 50,
    "link": 500,
    "contact": 200,
    "license": 100,
    "description": 2000,
    "trained_on": 200,
}
MAX_TRAINED_ON = 50
REQUIRED_FIELDS = ("format", "agent", "model", "parameters", "link", "contact", "license", "trained_on", "task_hashes")
KNOWN_FIELDS = (*REQUIRED_FIELDS, "suite", "task", "description")  # exactly one of suite and task

# The rules of the fields as regular expressions (Python `re` and ECMA-262 alike), so that the published JSON
# Schema (schema.py) states exactly what check_meta checks. Control characters, lone surrogates and (outside
# memory text) bidirectional overrides are not text.
_BIDI = r"\u202a-\u202e\u2066-\u2069"
CONTROL_MEMORY = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"  # tab, LF, CR allowed
CONTROL_MULTILINE = rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]"
CONTROL = rf"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]"
NOT_BLANK = r"\S"
PLACEHOLDER_LEAD = rf"^\s*{PLACEHOLDER}:"
PATH_SEPARATOR = r"[/\\]"
PARENT = r"\.\."
WEB_LINK = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]"
WHITESPACE = r"\s"
SHA256 = r"^[0-9a-f]{64}$"
_CONTROL_MEMORY, _CONTROL_MULTILINE, _CONTROL = (re.compile(p) for p in (CONTROL_MEMORY, CONTROL_MULTILINE, CONTROL))


@dataclass(frozen=True)
class Limits:
    """Size caps. Generous enough for the chunk-store baseline (every chunk kept verbatim) on mab-paper."""

    submission_bytes: int = 64 * 1024
    memories_bytes: int = 256 * 1024 * 1024
    entries_per_memory: int = 20_000  # semantic + episodic
    entry_chars: int = 100_000
    core_chars: int = 200_000
    memory_chars: int = 8_000_000  # core + every entry of one memory
    id_chars: int = 200
    stats_chars: int = 10_000


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a submission: where (file, line, field) and what."""

    file: str
    line: int = 0
    field: str = ""
    message: str = ""

    def __str__(self) -> str:
        line = f", line {self.line}" if self.line else ""
        fld = f", field {quoted(self.field, 100)}" if self.field else ""  # a field may be a key of the input
        return f"{self.file}{line}{fld}: {self.message}"


class SubmissionError(TaskError):
    """A submission that is not accepted; `problems` lists every problem found."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.path, self.problems = path, problems
        shown = "\n".join(f"  - {p}" for p in problems[:MAX_PROBLEMS_SHOWN])
        hidden = len(problems) - MAX_PROBLEMS_SHOWN
        more = f"\n  ... and {hidden} more" if hidden > 0 else ""
        super().__init__(f"{path}: {len(problems)} problem(s), submission not accepted:\n{shown}{more}")


def text_problem(value: str, *, multiline: bool = False, memory: bool = False) -> str | None:
    """Why `value` is not plain text (control characters, lone surrogates, bidi overrides), or None."""
    pattern = _CONTROL_MEMORY if memory else _CONTROL_MULTILINE if multiline else _CONTROL
    bad = pattern.search(value)
    if bad is None:
        return None
    return f"has the character U+{ord(bad.group()):04X} at position {bad.start()}; only plain text is allowed"


def normalise(text: str) -> str:
    """Case-, width- and spacing-insensitive form of a name: for ordering and for record ids (which must stay
    stable); duplicates are told apart by `names.name_key`, which also folds look-alikes."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def slug(text: str, max_len: int = 40) -> str:
    """An ASCII file-name part: letters, digits and dashes only, so no name can leave the results folder."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:max_len].strip("-") or "x"


def identity(board: str, name: str, version: str, profile: str) -> str:
    """What makes two entries the same: board, scorer profile, agent name and version as they look
    (`names.name_key`: look-alike names are one name)."""
    return "\x1f".join((board, profile, name_key(name), name_key(version)))


def record_id(board: str, name: str, version: str, profile: str) -> str:
    """The file-name-safe id of an entry: readable slugs plus a hash of board, profile, name and version
    (case-, width- and spacing-folded; slugs alone may collide). Two entries with one identity never both
    reach the store, and entries with different identities have different ids."""
    folded = "\x1f".join((board, profile, normalise(name), normalise(version)))
    digest = hashlib.sha256(folded.encode()).hexdigest()[:12]
    return f"{slug(board)}--{slug(profile)}--{slug(name)}--{slug(version)}--{digest}"


@dataclass(frozen=True)
class Meta:
    """A checked submission.json."""

    agent_name: str
    agent_version: str
    model: str
    parameters: str
    link: str
    contact: str
    license: str
    trained_on: tuple[str, ...]
    board: Board
    task_hashes: dict[str, str]
    description: str = ""

    @property
    def identity(self) -> str:
        return identity(self.board.name, self.agent_name, self.agent_version, self.board.profile)

    @property
    def record_id(self) -> str:
        return record_id(self.board.name, self.agent_name, self.agent_version, self.board.profile)

    def to_json(self) -> dict[str, Any]:
        """The metadata a results record publishes."""
        return {
            "agent": {"name": self.agent_name, "version": self.agent_version},
            "model": self.model,
            "parameters": self.parameters,
            "link": self.link,
            "contact": self.contact,
            "license": self.license,
            "trained_on": list(self.trained_on),
            "description": self.description,
        }


@dataclass
class _Checker:
    """Collects the problems of one submission.json."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, fld: str, message: str) -> None:
        self.problems.append(Problem(SUBMISSION_FILE, 0, fld, message))

    def text(
        self,
        value: Any,
        where: str,
        *,
        required: bool = True,
        multiline: bool = False,
        extra: Callable[[str], str | None] | None = None,
    ) -> str:
        """A checked text field; `where` is its name in FIELD_CHARS (list items: `trained_on[i]`)."""
        max_chars = FIELD_CHARS[where.split("[")[0]]
        if not required and value in (None, ""):
            return ""
        if not isinstance(value, str) or not re.search(NOT_BLANK, value):
            self.add(where, "must be a non-empty string" if required else "must be a string when given")
            return ""
        if re.search(PLACEHOLDER_LEAD, value):
            self.add(where, f"still the {PLACEHOLDER} placeholder of `memalpha leaderboard init`; fill it in")
        elif len(value) > max_chars:
            self.add(where, f"{len(value)} characters, over the limit of {max_chars}")
        elif why := text_problem(value, multiline=multiline) or (extra(value) if extra else None):
            self.add(where, why)
        return value


def _name_problem(value: str) -> str | None:
    """Names become file-name parts and are compared as they look: no path tricks, nothing invisible."""
    if re.search(PATH_SEPARATOR, value):
        return "must not contain a path separator ('/' or '\\')"
    if re.search(PARENT, value):
        return "must not contain '..'"
    return invisible_problem(value)


def _web_link(value: str) -> str | None:
    if not re.search(WEB_LINK, value) or re.search(WHITESPACE, value):
        return "must be an http:// or https:// address (with a host) without spaces"
    return None


@dataclass
class CheckedMeta:
    """What check_meta found. The board and the well-formed task hashes are kept even when other fields
    are wrong, so that the memories and task versions can still be checked (every problem at once)."""

    meta: Meta | None
    board: Board | None
    task_hashes: dict[str, str]
    problems: list[Problem]


def check_meta(obj: Any) -> CheckedMeta:
    """Check a decoded submission.json; `meta` is None when anything is wrong."""
    c = _Checker()
    if not isinstance(obj, dict):
        c.add("<file>", "must be a JSON object")
        return CheckedMeta(None, None, {}, c.problems)
    for key in sorted(set(obj) - set(KNOWN_FIELDS)):
        c.add(key, "unknown field")
    if obj.get("format") != FORMAT:
        c.add("format", f"must be {FORMAT!r}")
    agent = obj.get("agent")
    name = version = ""
    if not isinstance(agent, dict):
        c.add("agent", "must be an object with 'name' and 'version'")
    else:
        for key in sorted(set(agent) - {"name", "version"}):
            c.add(f"agent.{key}", "unknown field")
        name = c.text(agent.get("name"), "agent.name", extra=_name_problem)
        version = c.text(agent.get("version"), "agent.version", extra=_name_problem)
    model, parameters, contact, license_ = (
        c.text(obj.get(k), k) for k in ("model", "parameters", "contact", "license")
    )
    link = c.text(obj.get("link"), "link", extra=_web_link)
    description = c.text(obj.get("description"), "description", required=False, multiline=True)
    trained_on = _trained_on(obj.get("trained_on"), c)
    board = _board(obj, c)
    hashes = _task_hashes(obj.get("task_hashes"), board, c)
    if c.problems or board is None:
        return CheckedMeta(None, board, hashes, c.problems)
    meta = Meta(
        name.strip(),
        version.strip(),
        model,
        parameters,
        link,
        contact,
        license_,
        trained_on,
        board,
        hashes,
        description,
    )
    return CheckedMeta(meta, board, hashes, [])


def _trained_on(value: Any, c: _Checker) -> tuple[str, ...]:
    if not isinstance(value, list):
        c.add("trained_on", "must be a list of suite, task or dataset names ([] if trained on none)")
        return ()
    if len(value) > MAX_TRAINED_ON:
        c.add("trained_on", f"{len(value)} items, over the limit of {MAX_TRAINED_ON}")
    items = []
    for i, item in enumerate(value[:MAX_TRAINED_ON]):
        items.append(c.text(item, f"trained_on[{i}]"))
    return tuple(items)


def _board(obj: Mapping[str, Any], c: _Checker) -> Board | None:
    kinds = [k for k in ("suite", "task") if k in obj]
    if len(kinds) != 1:
        c.add("suite", "give exactly one of 'suite' (a suite name) or 'task' (a single task name)")
        return None
    kind = kinds[0]
    name = obj[kind]
    if not isinstance(name, str) or re.search(PLACEHOLDER_LEAD, name):
        c.add(kind, "must be a registered name (`memalpha tasks list` shows them)")
        return None
    try:
        return get_board(kind, name)
    except UnknownNameError as exc:
        c.add(kind, str(exc))
        return None


def _task_hashes(value: Any, board: Board | None, c: _Checker) -> dict[str, str]:
    if not isinstance(value, dict):
        c.add("task_hashes", "must map each task of the board to the sha256 of its built manifest")
        return {}
    hashes = {}
    for task, digest in sorted(value.items()):
        if board is not None and task not in board.tasks:
            c.add(f"task_hashes.{task}", f"not a task of board {board.name}")
        elif not isinstance(digest, str) or len(digest) != 64 or not re.search(SHA256, digest):
            c.add(f"task_hashes.{task}", "must be the 'sha256' of the task's manifest.json (64 hex digits)")
        else:
            hashes[task] = digest
    if board is not None:
        for task in board.tasks:
            if task not in value:
                c.add(f"task_hashes.{task}", "missing; give each task's version (its manifest sha256)")
    return hashes
