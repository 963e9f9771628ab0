"""Built tasks → the parquet files verl's `RLHFDataset` reads: one row per instance.

Columns (what verl and our agent loop and reward manager read):

- `prompt`: a one-message chat list. verl needs it (it builds `raw_prompt` from it and sizes batches
  with it); the agent loop builds its own prompt per chunk and does not use it;
- `data_source`: the task name, so validation metrics come out per source;
- `agent_name`: the agent loop registered in `verl_recipe/config/agent_loop.yaml`;
- `reward_model`: `{"style", "ground_truth"}` (empty ground truth: the questions column holds the
  golds), for verl tools that expect the column;
- `chunks`, `questions`: JSON strings (the chunk list; the question list of the task schema). Nested
  columns would be copied into every step row as numpy object arrays; strings travel intact;
- `extra_info`: `index` (verl's sample index) plus `instance_id`, `task`, `split`, counts and the
  task's sha256, so every training row can be traced back to a hashed task.

No verl import: this runs in the main environment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tasks.atomic import Content, replace_together
from tasks.errors import TaskError, UsageError
from tasks.manifest import load_built
from tasks.registry import get_suite

AGENT_NAME = "memalpha_agent"
TRAIN_FILE, VAL_FILE, MANIFEST_FILE = "train.parquet", "val.parquet", "manifest.json"
FORMAT = "memalpha-bench/verl-parquet@1"


@dataclass
class PrepareSummary:
    out_dir: Path
    rows: dict[str, int]  # file name -> rows
    tasks: dict[str, str]  # task -> sha256


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("data_source", pa.string()),
            ("agent_name", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("chunks", pa.string()),
            ("questions", pa.string()),
            (
                "extra_info",
                pa.struct(
                    [
                        ("index", pa.int64()),
                        ("instance_id", pa.string()),
                        ("task", pa.string()),
                        ("split", pa.string()),
                        ("num_chunks", pa.int64()),
                        ("num_questions", pa.int64()),
                        ("context_tokens", pa.int64()),
                        ("task_sha256", pa.string()),
                    ]
                ),
            ),
        ]
    )


def training_row(row: dict[str, Any], split: str, index: int, task_sha256: str) -> dict[str, Any]:
    """The verl row for one task instance (a row of the uniform task schema)."""
    task, instance_id = row["task"], row["instance_id"]
    questions = [{k: v for k, v in q.items() if v is not None} for q in row["questions"]]
    return {
        "data_source": task,
        "agent_name": AGENT_NAME,
        "prompt": [
            {
                "role": "user",
                "content": f"Memorise the {len(row['chunks'])} chunks of {task} instance {instance_id}.",
            }
        ],
        "reward_model": {"style": "memalpha", "ground_truth": ""},
        "chunks": json.dumps(list(row["chunks"]), ensure_ascii=False),
        "questions": json.dumps(questions, ensure_ascii=False),
        "extra_info": {
            "index": index,
            "instance_id": instance_id,
            "task": task,
            "split": split,
            "num_chunks": len(row["chunks"]),
            "num_questions": len(questions),
            "context_tokens": int(row["context_tokens"]),
            "task_sha256": task_sha256,
        },
    }


def suite_rows(
    data_dir: Path, members: Sequence[tuple[str, str]], limit: int | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """verl rows for (task, split) pairs from built tasks under `data_dir`, and the task hashes."""
    rows: list[dict[str, Any]] = []
    hashes: dict[str, str] = {}
    for task, split in members:
        data, manifest = load_built(data_dir, task)
        if split not in data:
            raise TaskError(f"{data_dir / task}: no split {split!r} (it has {', '.join(data)})")
        hashes[task] = manifest["sha256"]
        instances = data[split].to_list()
        for row in instances[:limit] if limit else instances:
            rows.append(training_row(row, split, len(rows), manifest["sha256"]))
    return rows, hashes


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows, schema=_schema()), path)


def select_members(suite: str, tasks: Sequence[str] | None) -> list[tuple[str, str]]:
    """The suite's (task, split) members, restricted to `tasks` when given (unknown names are errors)."""
    members = list(get_suite(suite).members)
    if not tasks:
        return members
    outside = sorted(set(tasks) - {t for t, _ in members})
    if outside:
        raise UsageError(f"task(s) {', '.join(outside)} not in suite {suite}")
    return [(t, s) for t, s in members if t in tasks]


def prepare(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    suite: str = "memalpha-train",
    val_suite: str | None = "memalpha-val",
    tasks: Sequence[str] | None = None,
    limit: int | None = None,
) -> PrepareSummary:
    """Write `train.parquet` (from `suite`), `val.parquet` (from `val_suite`, unless None) and a
    manifest with the task hashes to `out_dir`. Every selected task must be built under `data_dir`."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    plans = [(TRAIN_FILE, suite, select_members(suite, tasks))]
    if val_suite:  # restricted to `tasks` without complaint: lme_train, say, has no validation split
        plans.append(
            (VAL_FILE, val_suite, [(t, s) for t, s in get_suite(val_suite).members if not tasks or t in tasks])
        )
    written: dict[str, list[dict[str, Any]]] = {}
    hashes: dict[str, str] = {}
    for name, _, members in plans:  # read everything first: a missing task writes nothing
        written[name], found = suite_rows(data_dir, members, limit)
        hashes.update(found)
    if not written[TRAIN_FILE]:
        raise TaskError(f"no training instances: suite {suite} selects nothing from {data_dir}")
    manifest = {
        "format": FORMAT,
        "agent_name": AGENT_NAME,
        "suites": {name: s for name, s, _ in plans},
        "rows": {name: len(rows) for name, rows in written.items()},
        "task_hashes": dict(sorted(hashes.items())),
        "limit": limit,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Content] = {name: partial(write_parquet, rows) for name, rows in written.items() if rows}
    outputs[MANIFEST_FILE] = json.dumps(manifest, indent=2, sort_keys=True) + "\n"  # the seal: written last
    replace_together(out_dir, outputs)
    for stale in {TRAIN_FILE, VAL_FILE} - set(outputs):  # an older run's file the new manifest does not count
        (out_dir / stale).unlink(missing_ok=True)
    return PrepareSummary(out_dir, manifest["rows"], manifest["task_hashes"])
