"""The results store: one JSON record per leaderboard entry in a results folder.

Records are written atomically and never overwritten: a record is written to a temporary file beside
its final name and hard-linked into place, which fails if the name is taken. So a failed or duplicate
`add` leaves the folder as it was, and a reader of the folder never sees half a record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tasks.errors import TaskError

from .boards import record_board
from .submission import identity

RECORD_FORMAT = "memalpha-bench/leaderboard-record@1"


class StoreError(TaskError):
    """A results folder that cannot be read or written as a store."""


class DuplicateEntryError(StoreError):
    """An entry with the same board, agent name and version is already in the store."""


def record_identity(record: dict[str, Any]) -> str:
    _, board, profile = record_board(record)
    return identity(board, record["agent"]["name"], record["agent"]["version"], profile)


def dumps(record: dict[str, Any]) -> str:
    """The canonical text of a record (sorted keys), so equal records are equal files."""
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class ResultsStore:
    """The records under `root`, one `<id>.json` each; names starting with '.' are temp files."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def paths(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*.json") if not p.name.startswith("."))

    def records(self) -> list[dict[str, Any]]:
        """Every record, in id order; an unreadable record is an error, never skipped."""
        out = []
        for path in self.paths():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise StoreError(f"{path}: not a readable results record ({exc})") from exc
            named = isinstance(record, dict) and record.get("id") == path.stem
            if not named or record.get("format") != RECORD_FORMAT:
                raise StoreError(f"{path}: not a {RECORD_FORMAT} record named after its id")
            out.append(record)
        return out

    def find(self, key: str) -> dict[str, Any] | None:
        """The record with this identity (see submission.identity), if any."""
        return next((r for r in self.records() if record_identity(r) == key), None)

    def board_task_hashes(self, board: str) -> dict[str, str] | None:
        """The task versions a board's re-scored entries were scored on (None for a board without any)."""
        for record in self.records():
            if record["board"]["name"] == board and record.get("task_hashes"):
                return dict(record["task_hashes"])
        return None

    def add(self, record: dict[str, Any]) -> Path:
        """Write a new record; DuplicateEntryError, and the store as it was, if its identity is taken."""
        existing = self.find(record_identity(record))
        if existing is not None:
            agent = record["agent"]
            raise DuplicateEntryError(
                f"{self.root}: an entry for agent {agent['name']!r} version {agent['version']!r} on board "
                f"{record['board']['name']} ({record_board(record)[2]}) already exists ({existing['id']}.json); "
                "submit a new version"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"{record['id']}.json"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(dumps(record))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise DuplicateEntryError(f"{final}: already exists; the store is unchanged") from None
        finally:
            os.unlink(tmp)
        return final
