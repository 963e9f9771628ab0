"""`memalpha tasks validate`: check a built task against its manifest and the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import TaskError
from .manifest import MANIFEST, dataset_sha256, load_built, split_sha256, split_stats
from .schema import features, row_problems
from .tokenization import get_counter


def task_dirs(path: str | Path) -> list[Path]:
    """`path` if it is a built task, else the built tasks directly inside it."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / MANIFEST).is_file()) if path.is_dir() else []
    if not found:
        raise TaskError(f"{path}: no built task here or in its sub-folders (no {MANIFEST} found)")
    return found


def validate_task(path: Path, *, check_chunk_limit: bool = True) -> list[str]:
    """Every problem of one built task, as readable lines; empty when it is valid."""
    try:
        data, manifest = load_built(path, verify=False)  # mismatches are reported below, line by line
    except TaskError as exc:
        return [str(exc)]
    problems: list[str] = []
    if set(data) != set(manifest["splits"]):
        problems.append(f"{path}: splits {sorted(data)} differ from the manifest's {sorted(manifest['splits'])}")
    counter = None
    if check_chunk_limit and manifest.get("chunk_limit_enforced", True):
        tok = (manifest.get("tokenizer") or {}).get("spec")
        try:
            counter = get_counter(tok) if tok else None
        except TaskError as exc:
            problems.append(f"{path}: chunk limits not checked: {exc}")
    seen: set[str] = set()
    hashes: dict[str, str] = {}
    for split, ds in data.items():
        if ds.features != features():
            problems.append(f"{path}/{split}: columns differ from the task schema: {ds.features}")
            continue
        rows: list[dict[str, Any]] = ds.to_list()
        for i, row in enumerate(rows):
            where = f"{path}/{split}, row {i} ({row.get('instance_id')})"
            problems.extend(f"{where}, field {f!r}: {m}" for f, m in row_problems(row))
            if row.get("task") != manifest["task"]:
                problems.append(
                    f"{where}, field 'task': {row.get('task')!r} but the manifest says {manifest['task']!r}"
                )
            if row.get("instance_id") in seen:
                problems.append(f"{where}, field 'instance_id': duplicate")
            seen.add(row.get("instance_id"))
            if counter is not None and any(n > manifest["chunk_size"] for n in counter.count_many(row["chunks"])):
                problems.append(f"{where}, field 'chunks': a chunk exceeds {manifest['chunk_size']} tokens")
        hashes[split] = split_sha256(rows)
        recorded = manifest["splits"].get(split, {})
        if recorded.get("sha256") != hashes[split]:
            problems.append(
                f"{path}/{split}: sha256 {hashes[split]} differs from the manifest's {recorded.get('sha256')}"
            )
        stats = split_stats(rows)
        for key in ("instances", "questions", "chunks"):
            if recorded.get(key) != stats[key]:
                problems.append(f"{path}/{split}: {key} = {stats[key]}, the manifest says {recorded.get(key)}")
    if hashes and dataset_sha256(hashes) != manifest["sha256"]:
        problems.append(f"{path}: task sha256 differs from the manifest ({manifest['sha256']})")
    return problems
