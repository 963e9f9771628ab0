"""Built task folders: canonical hashing, the manifest, loading with verification.

A built task is `DIR/<task>/`: the `DatasetDict` as `save_to_disk` writes it (so
`datasets.load_from_disk("DIR/<task>")` loads it), `manifest.json` and a dataset card (`README.md`).
Builds before memalpha-bench 0.2 kept the dataset in `DIR/<task>/data/`; both layouts are read.

The manifest's `sha256` is taken over a canonical serialisation of the rows (JSON with sorted keys, one
line per row, splits in name order), so equal data gives an equal hash whatever machine or library wrote
it, and key order or split order cannot change it. `load_built` recomputes it from the rows every time a
task is loaded (for scoring, training, the leaderboard): a task changed after its build is an error.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .atomic import replace_file
from .errors import TaskError, quoted
from .strict_json import load_file

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "memalpha-bench/task-manifest@1"
LEGACY_DATA_DIR = "data"  # where builds before 0.2 kept the dataset, under the task folder
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HASH_BATCH = 256  # rows converted from Arrow at a time while hashing


class TaskHashError(TaskError):
    """A built task whose rows no longer hash to what its manifest says."""


def canonical_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def split_sha256(rows: Iterable[Mapping[str, Any]]) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(canonical_line(row))
    return h.hexdigest()


def stream_split_sha256(split: Any) -> str:
    """`split_sha256` of a `datasets.Dataset`, read from Arrow in batches (never all rows at once)."""
    h = hashlib.sha256()
    for batch in split.with_format("arrow").iter(batch_size=_HASH_BATCH):
        for row in batch.to_pylist():
            h.update(canonical_line(row))
    return h.hexdigest()


def dataset_sha256(split_hashes: Mapping[str, str]) -> str:
    """The task hash: over the split names and their hashes, in name order."""
    h = hashlib.sha256()
    for name in sorted(split_hashes):
        h.update(f"{name}:{split_hashes[name]}\n".encode())
    return h.hexdigest()


def _spread(values: list[int]) -> dict[str, float | int]:
    if not values:
        return {"min": 0, "median": 0, "max": 0, "total": 0}
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "total": sum(values)}


def split_stats(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts that `tasks show` prints and the manifest records."""
    return {
        "instances": len(rows),
        "questions": sum(len(r["questions"]) for r in rows),
        "chunks": sum(len(r["chunks"]) for r in rows),
        "context_tokens": _spread([int(r["context_tokens"]) for r in rows]),
        "chunks_per_instance": _spread([len(r["chunks"]) for r in rows]),
        "questions_per_instance": _spread([len(r["questions"]) for r in rows]),
    }


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> Path:
    return replace_file(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _hash_field(path: Path, where: str, value: Any) -> None:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise TaskError(f"{path}, field {where!r}: expected a sha256 (64 hex digits), found {quoted(value)}")


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a built task, checked: format, task, the task hash and one hash per split, and
    the task hash agreeing with the split hashes."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise TaskError(f"{path}: no manifest; is {directory} a task built by `memalpha tasks build`?")
    manifest = load_file(path, "task manifest")
    if not isinstance(manifest, dict):
        raise TaskError(f"{path}: expected a JSON object")
    for key in ("format", "task", "sha256", "splits"):
        if key not in manifest:
            raise TaskError(f"{path}: field {key!r} missing")
    if manifest["format"] != MANIFEST_FORMAT:
        raise TaskError(f"{path}, field 'format': expected {MANIFEST_FORMAT!r}, found {quoted(manifest['format'])}")
    _hash_field(path, "sha256", manifest["sha256"])
    splits = manifest["splits"]
    if not isinstance(splits, dict) or not splits:
        raise TaskError(f"{path}, field 'splits': expected an object with one entry per split")
    for name, entry in splits.items():
        _hash_field(path, f"splits.{name}.sha256", entry.get("sha256") if isinstance(entry, dict) else None)
    if dataset_sha256({name: entry["sha256"] for name, entry in splits.items()}) != manifest["sha256"]:
        raise TaskError(f"{path}, field 'sha256': not the hash of the split hashes listed under 'splits'")
    return manifest


def find_task_dir(path: str | Path, task: str | None = None) -> Path:
    """A built task folder: `path` itself, or `path/<task>`."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    if task and (path / task / MANIFEST).is_file():
        return path / task
    where = f"{path}/{task}" if task else str(path)
    raise TaskError(f"{where}: no built task there (missing {MANIFEST}); build it with `memalpha tasks build`")


def dataset_dir(directory: Path) -> Path:
    """Where a built task keeps its `DatasetDict`: the task folder itself, or `data/` in older builds."""
    legacy = directory / LEGACY_DATA_DIR
    if not (directory / "dataset_dict.json").is_file() and (legacy / "dataset_dict.json").is_file():
        return legacy
    return directory


def verify_rows(data: Any, manifest: Mapping[str, Any], where: str | Path) -> None:
    """Recompute every split's hash from its rows; raise `TaskHashError` naming the task and split that
    differ from the manifest (rows changed after the build, or a manifest from another build)."""
    task = manifest["task"]
    if set(data) != set(manifest["splits"]):
        raise TaskHashError(
            f"task {task} ({where}): splits {sorted(data)} differ from the manifest's {sorted(manifest['splits'])}"
        )
    for name in sorted(data):
        actual = stream_split_sha256(data[name])
        recorded = manifest["splits"][name]["sha256"]
        if actual != recorded:
            raise TaskHashError(
                f"task {task} ({where}), split {name}: the rows hash to {actual}, but {MANIFEST} says "
                f"{recorded}; the data changed after it was built. Rebuild it (`memalpha tasks build {task}`) "
                "or restore the original files."
            )


def load_built(path: str | Path, task: str | None = None, *, verify: bool = True):
    """Load a built task as (DatasetDict, manifest), its rows verified against the manifest's hashes
    (`verify=False` skips that, for tools that report mismatches themselves)."""
    from datasets import load_from_disk

    directory = find_task_dir(path, task)
    manifest = read_manifest(directory)
    try:
        data = load_from_disk(str(dataset_dir(directory)))
    except FileNotFoundError as exc:
        raise TaskError(f"{directory}: dataset files missing ({exc})") from exc
    if verify:
        verify_rows(data, manifest, directory)
    return data, manifest
