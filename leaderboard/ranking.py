"""Which entries appear on which board, in which order.

An entry is ranked on the board it was submitted for, among the entries scored with the same profile
(a board is bound to one), by overall score (higher first), then by memory size (smaller first;
unknown sizes last), then by agent name and version. A reported seed entry (on a `memalpha-paper`
board) is dropped once an entry with the same board, profile, agent name and version has been
re-scored.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from benchmark.profiles import get_profile

from .boards import Board, board_order, record_board
from .submission import normalise


def rank_key(record: dict[str, Any]) -> tuple:
    memory = record.get("memory_tokens")
    return (
        -record["scores"]["overall"],
        math.inf if memory is None else memory,
        normalise(record["agent"]["name"]),
        normalise(record["agent"]["version"]),
        record["id"],
    )


def shown_entries(records: Iterable[dict[str, Any]], seeds: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The store's records plus the seeds nobody has re-scored yet (a record id stands for board, profile,
    agent name and version)."""
    records = list(records)
    rescored = {r["id"] for r in records}
    return records + [s for s in seeds if s["id"] not in rescored]


def ranked_boards(entries: Iterable[dict[str, Any]]) -> list[tuple[Board, list[dict[str, Any]]]]:
    """Boards that have entries, in registry order (the default profile's board first, then the others by
    id), each with its entries in rank order."""
    groups: dict[Board, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        groups[record_board(entry)].append(entry)
    order, default = board_order(), get_profile().id
    boards = sorted(groups, key=lambda b: (order.get(b.name, len(order)), b.profile != default, b.profile))
    return [(board, sorted(groups[board], key=rank_key)) for board in boards]
