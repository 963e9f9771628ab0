"""The results store: one JSON record per leaderboard entry in a results folder, and under `boards/` one
file per board that pins its scorer (`pins.py`; written by `memalpha leaderboard init-board`).

Records and pins are written atomically and never overwritten: each is written to a temporary file beside
its final name and hard-linked into place, which fails if the name is taken. So a failed or duplicate
`add` leaves the folder as it was, and a reader of the folder never sees half a record. A re-scored
record is stored only on a board that pins a scorer, and only if it was scored with that scorer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks.errors import TaskError
from tasks.strict_json import load_file

from .boards import Board, record_board
from .pins import BOARD_FORMAT, PinnedScorer, ScorerMismatchError
from .record_schema import RECORD_FORMAT, check_record
from .scratch import write_new
from .submission import identity, slug


class StoreError(TaskError):
    """A results folder that cannot be read or written as a store."""


class DuplicateEntryError(StoreError):
    """An entry with the same board, agent name and version is already in the store."""


def record_identity(record: dict[str, Any]) -> str:
    board = record_board(record)
    return identity(board.name, record["agent"]["name"], record["agent"]["version"], board.profile)


def dumps(record: dict[str, Any]) -> str:
    """The canonical text of a record (sorted keys), so equal records are equal files."""
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _read_json(path: Path, what: str) -> Any:
    try:
        return load_file(path, what)
    except TaskError as exc:
        raise StoreError(f"{exc} (unreadable {what} of the results store)") from None


BOARDS_DIR = "boards"


class ResultsStore:
    """The records under `root`, one `<id>.json` each, and the boards' pinned scorers under `root/boards/`;
    names starting with '.' are temp files."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ------------------------------------------------------------ pinned scorers

    def board_file(self, board: Board) -> Path:
        return self.root / BOARDS_DIR / f"{board.kind}--{slug(board.name)}--{slug(board.profile)}.json"

    def pinned(self, board: Board) -> PinnedScorer | None:
        """The scorer `board` pins in this store, if its publisher has set one."""
        path = self.board_file(board)
        if not path.is_file():
            return None
        doc = _read_json(path, "board file")
        expected = {"kind": board.kind, "name": board.name, "profile": board.profile}
        if not isinstance(doc, dict) or doc.get("format") != BOARD_FORMAT or doc.get("board") != expected:
            raise StoreError(f"{path}: not the {BOARD_FORMAT} file of board {board.name} ({board.profile})")
        return PinnedScorer.from_json(doc.get("scorer") or {}, str(path))

    def pins(self) -> dict[Board, PinnedScorer]:
        """Every pinned board of the store."""
        out = {}
        for path in sorted((self.root / BOARDS_DIR).glob("*.json")) if (self.root / BOARDS_DIR).is_dir() else []:
            if path.name.startswith("."):
                continue
            doc = _read_json(path, "board file")
            try:
                board = record_board(doc)
            except (KeyError, TypeError, TaskError) as exc:
                raise StoreError(f"{path}: not a {BOARD_FORMAT} file ({exc})") from exc
            pin = self.pinned(board)
            if pin is None or path != self.board_file(board):
                raise StoreError(
                    f"{path}: misnamed; the file of board {board.name} ({board.profile}) is {self.board_file(board)}"
                )
            out[board] = pin
        return out

    def pin(self, board: Board, scorer: PinnedScorer) -> Path:
        """Pin `board`'s scorer. Pinning the same scorer again changes nothing; a board's scorer never changes,
        and every record already on the board must have been scored with it."""
        path = self.board_file(board)
        existing = self.pinned(board)
        if existing == scorer:
            return path
        if existing is not None:
            old, new = existing.to_json(), scorer.to_json()
            changed = "\n".join(f"  - {k}: pinned {old[k]!r}, asked {new[k]!r}" for k in old if old[k] != new[k])
            raise ScorerMismatchError(
                f"{path}: board {board.name} ({board.profile}) already pins another scorer, and a board's scorer "
                f"never changes:\n{changed}"
            )
        for record in self.records():
            if record_board(record) == board:
                scorer.check(record.get("scorer"), f"{self.root / record['id']}.json", board)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": BOARD_FORMAT, "board": {"kind": board.kind, "name": board.name, "profile": board.profile}}
        try:
            write_new(path, dumps({**doc, "scorer": scorer.to_json()}))
        except FileExistsError:
            raise StoreError(f"{path}: written meanwhile by someone else; run again") from None
        return path

    # ------------------------------------------------------------ records

    def paths(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*.json") if not p.name.startswith("."))

    def records(self) -> list[dict[str, Any]]:
        """Every record, in id order, each checked against its format (`record_schema`; records of an older
        format load as they are); an unreadable or malformed record is an error, never skipped."""
        out = []
        for path in self.paths():
            record = check_record(_read_json(path, "results record"), str(path))
            if record.get("id") != path.stem:
                raise StoreError(f"{path}: field id: {record.get('id')!r}, but a record is named after its id")
            out.append(record)
        return out

    def find(self, key: str) -> dict[str, Any] | None:
        """The record with this identity (see submission.identity), if any."""
        return next((r for r in self.records() if record_identity(r) == key), None)

    def board_task_hashes(self, board: str) -> dict[str, str] | None:
        """The task versions a board's re-scored entries were scored on (None for a board without any)."""
        for record in self.records():
            if record_board(record).name == board and record.get("task_hashes"):
                return dict(record["task_hashes"])
        return None

    def add(self, record: dict[str, Any]) -> Path:
        """Write a new record; DuplicateEntryError, and the store as it was, if its identity is taken;
        ScorerMismatchError if it was not scored with the scorer its board pins (StoreError: no pin);
        StoreError if it is of an older format, ResultsFormatError if it is not a valid record."""
        if record.get("format") != RECORD_FORMAT:
            raise StoreError(f"entry {record.get('id')}: field format: new records are {RECORD_FORMAT}")
        check_record(record, f"entry {record.get('id')}")
        board = record_board(record)
        pin = self.pinned(board)
        if pin is None:
            raise StoreError(
                f"{self.root}: board {board.name} ({board.profile}) has no pinned scorer; its publisher sets it once "
                f"with `memalpha leaderboard init-board --{board.kind} {board.name} --profile {board.profile} "
                f"--results {self.root} ...`"
            )
        pin.check(record.get("scorer"), f"entry {record['id']}", board)
        existing = self.find(record_identity(record))
        if existing is not None:
            agent = record["agent"]
            raise DuplicateEntryError(
                f"{self.root}: an entry for agent {agent['name']!r} version {agent['version']!r} on board "
                f"{record_board(record).name} ({record_board(record).profile}) already exists ({existing['id']}.json); "
                "submit a new version"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"{record['id']}.json"
        try:
            write_new(final, dumps(record))
        except FileExistsError:
            raise DuplicateEntryError(f"{final}: already exists; the store is unchanged") from None
        return final
