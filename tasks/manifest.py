"""Built task folders: canonical hashing, the manifest, loading and validation.

A built task is `DIR/<task>/` holding the `DatasetDict` (`save_to_disk`) and `manifest.json`. The
manifest's `sha256` is taken over a canonical serialisation of the rows (JSON, sorted keys, splits
in name order), so equal data gives an equal hash whatever machine or library wrote it.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import TaskError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "memalpha-bench/task-manifest@1"


def canonical_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def split_sha256(rows: Iterable[Mapping[str, Any]]) -> str:
    h = hashlib.sha256()
    for row in rows:
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
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise TaskError(f"{path}: no manifest; is {directory} a task built by `memalpha tasks build`?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    for key in ("format", "task", "sha256", "splits"):
        if key not in manifest:
            raise TaskError(f"{path}: field {key!r} missing")
    if manifest["format"] != MANIFEST_FORMAT:
        raise TaskError(f"{path}, field 'format': expected {MANIFEST_FORMAT!r}, found {manifest['format']!r}")
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


def load_built(path: str | Path, task: str | None = None):
    """Load a built task as (DatasetDict, manifest)."""
    from datasets import load_from_disk

    directory = find_task_dir(path, task)
    manifest = read_manifest(directory)
    try:
        data = load_from_disk(str(directory / "data"))
    except FileNotFoundError as exc:
        raise TaskError(f"{directory}/data: dataset files missing ({exc})") from exc
    return data, manifest
