"""Validating a submission folder: the metadata, the memories file, coverage of the board's instances,
task versions, size caps and duplicates in the results store. Every problem is collected; the caller
gets a ValidatedSubmission or one SubmissionError listing them all. Nothing is executed or written.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark.memory import MemoryRecord, parse_record
from benchmark.results_schema import LEGACY_SCORES, SCORES_MODELS, check_versioned
from tasks.errors import TaskError, quoted
from tasks.manifest import load_built
from tasks.strict_json import JsonProblem, decode, load_file

from .boards import Board
from .contamination import Contamination, assess
from .record_schema import RECORD_MODELS
from .store import ResultsStore
from .submission import (
    MEMORIES_FILE,
    SUBMISSION_FILE,
    CheckedMeta,
    Limits,
    Meta,
    Problem,
    SubmissionError,
    check_meta,
    text_problem,
)

SHOWN_IDS = 10


@dataclass
class ValidatedSubmission:
    path: Path
    meta: Meta
    memories_path: Path
    memories_sha256: str
    memories_bytes: int
    instances: int
    contamination: Contamination
    checked_against_data: bool


@dataclass
class MemoryScan:
    """What reading memories.jsonl found: where each (task, instance) is given, the problems, the hash."""

    lines: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    problems: list[Problem] = field(default_factory=list)
    sha256: str = ""
    size: int = 0

    def add(self, line: int, fld: str, message: str) -> None:
        self.problems.append(Problem(MEMORIES_FILE, line, fld, message))


def _folder_problems(path: Path) -> list[Problem]:
    if not path.is_dir():
        return [
            Problem(
                str(path), 0, "", f"not a folder; a submission is a folder with {SUBMISSION_FILE} and {MEMORIES_FILE}"
            )
        ]
    problems = []
    for child in sorted(path.iterdir()):
        if child.name not in (SUBMISSION_FILE, MEMORIES_FILE):
            problems.append(
                Problem(
                    child.name,
                    0,
                    "",
                    f"unexpected; a submission folder holds only {SUBMISSION_FILE} and {MEMORIES_FILE}",
                )
            )
    for name in (SUBMISSION_FILE, MEMORIES_FILE):
        item = path / name
        if item.is_symlink():
            problems.append(Problem(name, 0, "", "is a symbolic link; put the file itself in the folder"))
        elif not item.exists():
            problems.append(Problem(name, 0, "", "missing"))
        elif not item.is_file():
            problems.append(Problem(name, 0, "", "not a regular file"))
    return problems


def _read_metadata(path: Path, limits: Limits) -> CheckedMeta:
    size = path.stat().st_size
    if size > limits.submission_bytes:
        message = f"{size:,} bytes, over the limit of {limits.submission_bytes:,}"
        return CheckedMeta(None, None, {}, [Problem(SUBMISSION_FILE, 0, "", message)])
    try:
        obj = decode(path.read_bytes())
    except JsonProblem as problem:
        found = Problem(SUBMISSION_FILE, problem.line or 0, problem.field, problem.message)
        return CheckedMeta(None, None, {}, [found])
    return check_meta(obj)


def _check_text(scan: MemoryScan, line: int, fld: str, value: str, max_chars: int, what: str) -> None:
    if len(value) > max_chars:
        scan.add(line, fld, f"{what} of {len(value):,} characters, over the limit of {max_chars:,}")
    elif (why := text_problem(value, memory=True)) is not None:
        scan.add(line, fld, why)


def _check_record(scan: MemoryScan, line: int, record: MemoryRecord, limits: Limits) -> None:
    """Size caps and plain-text checks on one parsed memory."""
    for fld, value in (("instance_id", record.instance_id), ("task", record.task)):
        _check_text(scan, line, fld, value, limits.id_chars, "an id")
    mem = record.memory
    _check_text(scan, line, "memory.core", mem.core, limits.core_chars, "a core memory")
    n = len(mem.semantic) + len(mem.episodic)
    if n > limits.entries_per_memory:
        scan.add(line, "memory", f"{n:,} semantic + episodic entries, over the limit of {limits.entries_per_memory:,}")
    for kind, entries in (("semantic", mem.semantic), ("episodic", mem.episodic)):
        for i, entry in enumerate(entries):
            where = f"memory.{kind}[{i}]"
            _check_text(scan, line, f"{where}.id", entry.id, limits.id_chars, "an id")
            _check_text(scan, line, f"{where}.content", entry.content, limits.entry_chars, "an entry")
            if entry.timestamp is not None:
                _check_text(scan, line, f"{where}.timestamp", entry.timestamp, limits.id_chars, "a timestamp")
    total = sum(len(t) for t in mem.texts())
    if total > limits.memory_chars:
        scan.add(line, "memory", f"{total:,} characters in all, over the limit of {limits.memory_chars:,}")
    stats = json.dumps(record.stats, ensure_ascii=False)
    if len(stats) > limits.stats_chars:
        scan.add(line, "stats", f"{len(stats):,} characters, over the limit of {limits.stats_chars:,}")


def _parse_line(scan: MemoryScan, line: int, raw: bytes) -> MemoryRecord | None:
    try:
        obj: Any = decode(raw)
    except JsonProblem as problem:
        scan.add(line, problem.field or "<line>", problem.message)
        return None
    record, found = parse_record(obj)
    for fld, message in found:
        scan.add(line, fld, message)
    return record


def scan_memories(path: Path, board: Board | None, limits: Limits) -> MemoryScan:
    """Read memories.jsonl line by line: format (benchmark.memory), caps, text, board membership, hash."""
    scan = MemoryScan(size=path.stat().st_size)
    if scan.size > limits.memories_bytes:
        scan.add(0, "", f"{scan.size:,} bytes, over the limit of {limits.memories_bytes:,}")
        return scan
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for line, raw in enumerate(f, 1):
            digest.update(raw)
            if not raw.strip():
                continue
            record = _parse_line(scan, line, raw)
            if record is None:
                continue
            _check_record(scan, line, record, limits)
            if board is not None and record.task not in board.tasks:
                scan.add(
                    line,
                    "task",
                    f"task {quoted(record.task)} is not on board {board.name} (its tasks: {', '.join(board.tasks)})",
                )
                continue
            scan.lines[(record.task, record.instance_id)].append(line)
    scan.sha256 = digest.hexdigest()
    if not scan.lines and not scan.problems:
        scan.add(0, "", "no memory records")
    return scan


def _duplicates(scan: MemoryScan) -> list[Problem]:
    return [
        Problem(
            MEMORIES_FILE,
            again,
            "instance_id",
            f"instance {quoted(iid)} of {task} given again (first on line {lines[0]}); give each once",
        )
        for (task, iid), lines in sorted(scan.lines.items())
        for again in lines[1:]
    ]


def _listing(ids: list[str]) -> str:
    return ", ".join(ids[:SHOWN_IDS]) + (f", ... ({len(ids)} in all)" if len(ids) > SHOWN_IDS else "")


def _task_data(
    data_dir: Path, task: str, splits: list[str], scan: MemoryScan, expected_hash: str | None
) -> tuple[str | None, list[Problem]]:
    """The version (manifest sha256) of one built task, and the problems of the memories' coverage of
    its instances in the board's split(s)."""
    where = f"--data {data_dir}"
    try:
        data, manifest = load_built(data_dir, task)
    except TaskError as exc:
        return None, [Problem(where, 0, task, str(exc))]
    digest, problems = manifest["sha256"], []
    if expected_hash is not None and digest != expected_hash:
        problems.append(
            Problem(
                where,
                0,
                task,
                f"the task data is version {digest[:12]}…, but the board is scored on version {expected_hash[:12]}…",
            )
        )
    missing_splits = [s for s in splits if s not in data]
    if missing_splits:
        problems.append(Problem(where, 0, task, f"built without split(s) {', '.join(missing_splits)}"))
        return digest, problems
    expected = {iid for s in splits for iid in data[s]["instance_id"]}
    split_of = {iid: s for s in data for iid in data[s]["instance_id"]}
    given = {iid: lines[0] for (t, iid), lines in scan.lines.items() if t == task}
    for iid, line in sorted(given.items(), key=lambda kv: kv[1]):
        if iid not in expected:
            found = f" (it is in the {split_of[iid]} split, not evaluated here)" if iid in split_of else ""
            problems.append(
                Problem(
                    MEMORIES_FILE,
                    line,
                    "instance_id",
                    f"instance {quoted(iid)} is not in {task}'s {'/'.join(splits)} data{found}",
                )
            )
    missing = sorted(expected - set(given))
    if missing:
        problems.append(
            Problem(
                MEMORIES_FILE,
                0,
                "instance_id",
                f"{len(missing)} of {len(expected)} instances of {task} ({'/'.join(splits)}) "
                f"missing: {_listing(missing)}; give every instance of the board once",
            )
        )
    return digest, problems


def _hash_problems(given: dict[str, str], expected: dict[str, str]) -> list[Problem]:
    return [
        Problem(
            SUBMISSION_FILE,
            0,
            f"task_hashes.{task}",
            f"the memories were made on task version {digest[:12]}…, but the board expects "
            f"{expected[task][:12]}…; build that version of the task and run the agent on it",
        )
        for task, digest in sorted(given.items())
        if task in expected and expected[task] != digest
    ]


def validate_submission(
    path: str | Path,
    data_dir: str | Path | None = None,
    *,
    store: ResultsStore | None = None,
    limits: Limits | None = None,
    profile: str | None = None,
) -> ValidatedSubmission:
    """Check everything about a submission folder; raise SubmissionError listing every problem.

    `profile` is the scorer profile of the board the entry is for (default: the default profile); the
    same agent and version may be on a board once per profile.
    Without `data_dir` the instances and task versions cannot be checked (`checked_against_data` is
    False); with `store`, the entry must be new and the task versions those the board is scored on.
    """
    path, limits = Path(path), limits or Limits()
    problems = _folder_problems(path)
    if any(p.file == str(path) for p in problems):
        raise SubmissionError(path, problems)
    checked = CheckedMeta(None, None, {}, [])
    if (path / SUBMISSION_FILE).is_file() and not (path / SUBMISSION_FILE).is_symlink():
        checked = _read_metadata(path / SUBMISSION_FILE, limits)
        problems += checked.problems
    meta, board = checked.meta, checked.board
    if meta is not None:
        meta = replace(meta, board=meta.board.with_profile(profile))
    scan = MemoryScan()
    memories = path / MEMORIES_FILE
    if memories.is_file() and not memories.is_symlink():
        scan = scan_memories(memories, board, limits)
        problems += scan.problems + _duplicates(scan)
    pinned = store.board_task_hashes(board.name) if store is not None and board is not None else None
    data_hashes: dict[str, str] = {}
    if data_dir is not None and board is not None:
        for task in board.tasks:
            splits = [s for t, s in board.members if t == task]
            digest, found = _task_data(Path(data_dir), task, splits, scan, (pinned or {}).get(task))
            problems += found
            if digest is not None:
                data_hashes[task] = digest
    problems += _hash_problems(checked.task_hashes, pinned or data_hashes)
    if meta is not None and store is not None and (existing := store.find(meta.identity)) is not None:
        problems.append(
            Problem(
                SUBMISSION_FILE,
                0,
                "agent",
                f"agent {meta.agent_name!r} version {meta.agent_version!r} is already on "
                f"board {meta.board.name}, profile {meta.board.profile} ({existing['id']}); submit a new version",
            )
        )
    if problems or meta is None:
        raise SubmissionError(path, list(dict.fromkeys(problems)))
    return ValidatedSubmission(
        path,
        meta,
        memories,
        scan.sha256,
        scan.size,
        len(scan.lines),
        assess(meta.trained_on, meta.board),
        data_dir is not None,
    )


def validate_results_file(path: str | Path) -> tuple[str, str]:
    """Check a results record or a run's scores.json against the schema of its format, told apart by its
    `format` (a file without one is a scores.json of format 1); returns (what it is, its format)."""
    path = Path(path)
    what = "results record or scores.json"
    obj = check_versioned(load_file(path, what), {**SCORES_MODELS, **RECORD_MODELS}, what, str(path))
    fmt = obj.get("format")
    if fmt in RECORD_MODELS:
        return "results record", fmt
    return "scores.json", fmt or f"{LEGACY_SCORES} (no format key)"
