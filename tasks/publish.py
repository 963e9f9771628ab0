"""`memalpha tasks publish`: built tasks as one Hugging Face dataset repository (one config per task).

The repository holds `<task>/<split>-00000-of-00001.parquet` and `<task>/manifest.json` per task, and a
dataset card whose `configs:` name one config per task, so `datasets.load_dataset(repo, "<task>")` loads
a task. Rows are verified against their manifests before anything is written, and written back out
unchanged: the published rows hash to the manifest's `sha256`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .atomic import replace_file
from .card import CARD, render_card
from .errors import TaskError
from .manifest import load_built, write_manifest
from .validate import task_dirs

PARQUET = "{split}-00000-of-00001.parquet"


def write_repository(
    data_dir: str | Path, out: str | Path, repo_id: str, *, progress: Callable[[str], None] = lambda _m: None
) -> list[dict[str, Any]]:
    """Write the hub layout of every built task under `data_dir` into `out`; returns their manifests."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise TaskError(f"{out}: not empty; publish into a new folder")
    manifests: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    for directory in task_dirs(data_dir):
        data, manifest = load_built(directory)
        task = manifest["task"]
        progress(f"{task}: {', '.join(f'{s} {len(data[s])}' for s in data)} rows")
        (out / task).mkdir(parents=True)
        for split in data:
            data[split].to_parquet(str(out / task / PARQUET.format(split=split)))
        write_manifest(out / task, manifest)
        manifests.append(manifest)
        configs.append(
            {"config_name": task, "data_files": [{"split": s, "path": f"{task}/{s}-*.parquet"} for s in data]}
        )
    names = [m["task"] for m in manifests]
    if len(set(names)) != len(names):
        raise TaskError(f"{data_dir}: the same task built twice ({', '.join(names)})")
    text = render_card(
        manifests,
        configs,
        title=f"memalpha-bench tasks ({repo_id})",
        loading=[
            "from datasets import load_dataset",
            *(f'{m["task"]} = load_dataset("{repo_id}", "{m["task"]}")' for m in manifests[:3]),
        ],
    )
    replace_file(out / CARD, text)
    return manifests


def push(folder: Path, repo_id: str, *, private: bool, message: str) -> str:
    """Upload a written repository folder to the hub as a dataset repo; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset", commit_message=message)
    return str(info.commit_url)


def publish(
    data_dir: str | Path,
    repo_id: str,
    *,
    out: str | Path | None = None,
    private: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> tuple[Sequence[dict[str, Any]], str]:
    """Write the repository into `out` (a local "push"), or, without `out`, into a temporary folder that
    is uploaded to the hub. Returns the manifests and where the repository went."""
    if out is not None:
        return write_repository(data_dir, out, repo_id, progress=progress), str(out)
    staging = Path(tempfile.mkdtemp(prefix="memalpha-publish-"))
    try:
        manifests = write_repository(data_dir, staging / "repo", repo_id, progress=progress)
        tasks = ", ".join(f"{m['task']} ({m['sha256'][:12]})" for m in manifests)
        return manifests, push(staging / "repo", repo_id, private=private, message=f"memalpha-bench tasks: {tasks}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
