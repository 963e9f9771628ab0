"""Shared helpers of the leaderboard tests: tiny built tasks, submission folders, a fake reader."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmark.readers.base import OnResult, ReaderError, ReaderRequest, ReaderResponse
from leaderboard.boards import get_board
from leaderboard.pins import PinnedScorer
from leaderboard.store import ResultsStore
from tasks.manifest import MANIFEST_FORMAT, dataset_sha256, split_sha256, write_manifest
from tasks.registry import get_task
from tasks.schema import FEATURES
from tasks.tokenization import get_counter

ANSWER = "blue"


def task_rows(task: str, ids: Iterable[str]) -> list[dict[str, Any]]:
    """One chunk and two questions per instance: golds 'blue' and 'red', so a reader that always says
    'blue' scores exactly 0.5 per instance on substring metrics."""
    spec = get_task(task)
    return [
        {
            "instance_id": iid,
            "task": task,
            "competency": spec.competency,
            "chunks": [f"The sky over {iid} is blue and the roses are red."],
            "questions": [
                {
                    "question_id": f"{iid}-q{i}",
                    "question": q,
                    "answers": [gold],
                    "question_type": None,
                    "question_date": None,
                }
                for i, (q, gold) in enumerate(
                    (("What colour is the sky?", "blue"), ("What colour are the roses?", "red"))
                )
            ],
            "context_tokens": 12,
            "metadata": "{}",
        }
        for iid in ids
    ]


def write_task(data_dir: Path, task: str, splits: dict[str, Sequence[str]]) -> str:
    """A built task folder (dataset + manifest) as `memalpha tasks build` lays it out; returns its sha256."""
    from datasets import Dataset, DatasetDict

    spec = get_task(task)
    rows = {split: task_rows(task, ids) for split, ids in splits.items()}
    hashes = {split: split_sha256(r) for split, r in rows.items()}
    directory = data_dir / task
    DatasetDict({s: Dataset.from_list(r, features=FEATURES) for s, r in rows.items()}).save_to_disk(
        str(directory / "data")
    )
    digest = dataset_sha256(hashes)
    write_manifest(
        directory,
        {
            "format": MANIFEST_FORMAT,
            "task": task,
            "competency": spec.competency,
            "metric": spec.metric,
            "splits": {s: {"sha256": h} for s, h in hashes.items()},
            "sha256": digest,
        },
    )
    return digest


def memory_line(
    task: str,
    iid: str,
    *,
    core: str = "",
    semantic: Sequence[str] = ("The sky is blue.",),
    episodic: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "instance_id": iid,
        "task": task,
        "memory": {
            "core": core,
            "semantic": [{"id": f"s{i}", "content": c} for i, c in enumerate(semantic)],
            "episodic": [{"id": f"e{i}", "content": c, "timestamp": "2024-01-01"} for i, c in enumerate(episodic)],
        },
        "stats": {"chunks_seen": 1},
    }


def metadata(board: tuple[str, str], hashes: dict[str, str], **overrides: Any) -> dict[str, Any]:
    meta = {
        "format": "memalpha-bench/submission@1",
        "agent": {"name": "Test Agent", "version": "1.0"},
        "model": "Qwen/Qwen3-4B",
        "parameters": "4B",
        "link": "https://example.org/agent",
        "contact": "someone@example.org",
        "license": "MIT",
        "trained_on": [],
        board[0]: board[1],
        "task_hashes": hashes,
        "description": "A test agent.",
    }
    meta.update(overrides)
    return meta


def write_submission(folder: Path, meta: dict[str, Any] | str, lines: Sequence[dict[str, Any] | str]) -> Path:
    """A submission folder; `meta` and each line may be given as raw text (for broken files)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = meta if isinstance(meta, str) else json.dumps(meta, indent=2, ensure_ascii=False)
    (folder / "submission.json").write_text(text, encoding="utf-8")
    with open(folder / "memories.jsonl", "w", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n")
    return folder


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes (to show that nothing changed)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class FakeReader:
    """A reader that answers every request with the same text (or fails), counting the requests."""

    def __init__(self, answer: str = ANSWER, fail: bool = False):
        self.answer, self.fail, self.requests = answer, fail, 0

    def describe(self) -> dict:
        return {"backend": "fake", "model": "fake-reader"}

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        if self.fail:
            raise ReaderError("the fake reader is down")
        out = []
        for i, _ in enumerate(requests):
            self.requests += 1
            response = ReaderResponse.from_raw(self.answer, 10, 1)
            if on_result is not None:
                on_result(i, response)
            out.append(response)
        return out


def pin_board(
    store: ResultsStore, board: tuple[str, str], reader: Any = None, profile: str | None = None, **numbers: int
) -> PinnedScorer:
    """Pin a board of `store` to `reader` (default: the fake reader) and the offline `simple` counter."""
    described = (reader or FakeReader()).describe()
    scorer = PinnedScorer.create(
        profile=profile,
        reader=(described["backend"], described["model"]),
        counter=get_counter("simple"),
        **numbers,
    )
    store.pin(get_board(*board, profile), scorer)
    return scorer
