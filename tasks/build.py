"""Building a task: resolve the source, run its builder, check the rows, save them with a manifest."""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from .card import dataset_info, write_task_card
from .errors import BuildError, MissingRawFilesError, SourceUnavailableError, TaskError
from .llm import BuilderLLM
from .manifest import MANIFEST_FORMAT, dataset_sha256, split_sha256, split_stats, write_manifest
from .registry import Origin, Source, TaskSpec, get_task
from .schema import Instance, features, row_problems
from .tokenization import TokenCounter, get_counter

T = TypeVar("T")
HUB_MIRROR_ENV = "MEMALPHA_HUB_MIRROR"


class UnpinnedSourceWarning(UserWarning):
    """A build read a hub source at no pinned revision: rebuilding later may give other data."""


def resolve_commit(repo_id: str, revision: str | None, *, endpoint: str | None = None) -> str:
    """The commit the hub serves for a dataset repo at `revision` (its head when None). A full commit SHA
    is its own answer, so pinned sources need no request (and build offline from the cache)."""
    if revision is not None and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    from huggingface_hub import HfApi

    try:
        return HfApi(endpoint=endpoint).dataset_info(repo_id, revision=revision).sha
    except Exception as exc:  # offline, 404, gated: the user needs the same hint for each
        raise SourceUnavailableError(
            f"cannot resolve {repo_id}@{revision or 'main'} to a commit on the hub ({exc}). Without hub "
            f"access, build --from raw, or point --hub-mirror (or ${HUB_MIRROR_ENV}) at a local copy."
        ) from exc


def package_version() -> str:
    try:
        return version("memalpha-bench")
    except PackageNotFoundError:
        return "0+unknown"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class BuildContext:
    """Everything a builder needs, and the record of what it read."""

    spec: TaskSpec
    origin: Origin
    source: Source
    counter: TokenCounter
    seed: int = 42
    limit: int | None = None
    raw_root: Path | None = None
    hub_mirror: Path | None = None
    llm: BuilderLLM | None = None
    show_progress: bool = True
    enforce_chunk_limit: bool = True
    commit: str | None = None  # the hub commit read, once resolved
    inputs: list[dict[str, Any]] = field(default_factory=list)
    llm_steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    @property
    def chunk_size(self) -> int:
        return self.spec.chunk_size

    # ------------------------------------------------------------------ raw files

    @property
    def raw_dir(self) -> Path:
        source_dir = (self.raw_root or Path("<--raw-dir not given>")) / self.source.id
        if self.raw_root is None or not source_dir.is_dir():
            raise MissingRawFilesError(self.source.id, source_dir, self.source.files or ["(the source's files)"])
        return source_dir

    def raw_files(self, *patterns: str) -> list[Path]:
        """Files under the source's raw folder matching any pattern, sorted; records their hashes."""
        patterns = patterns or self.source.files
        directory = self.raw_dir
        found = sorted({p for pat in patterns for p in directory.glob(pat) if p.is_file()})
        if not found:
            raise MissingRawFilesError(self.source.id, directory, patterns)
        for path in found:
            self.inputs.append(
                {
                    "file": str(path.relative_to(directory.parent)),
                    "bytes": path.stat().st_size,
                    "sha256": file_sha256(path),
                }
            )
        return found

    # ------------------------------------------------------------------ hub and releases

    @property
    def mirror(self) -> Path | None:
        return self.hub_mirror or (Path(os.environ[HUB_MIRROR_ENV]) if os.environ.get(HUB_MIRROR_ENV) else None)

    def _hub_location(self) -> tuple[str, str | None]:
        """Where to read the source, and the revision: for the hub, the commit its pin (or its head, when it
        has none) resolves to, so every file of the build comes from that one commit."""
        mirror = self.mirror
        if mirror is not None:
            local = mirror / self.source.id
            if not local.is_dir():
                raise SourceUnavailableError(
                    f"hub mirror {mirror} has no copy of {self.source.id} (expected the folder {local})"
                )
            return str(local), None
        if self.commit is None:
            self.commit = resolve_commit(self.source.id, self.source.revision)
        return self.source.id, self.commit

    def hub_dataset(self, split: str, *, config: str | None = None, data_files: Any = None):
        """One split of the source's hub dataset (or its local copy in the hub layout)."""
        from datasets import load_dataset

        path, revision = self._hub_location()
        config = config if config is not None else self.source.config
        try:
            # A local mirror is re-read every time: `datasets` caches local folders by name, not content.
            mode = "force_redownload" if revision is None and Path(path).is_dir() else None
            ds = load_dataset(
                path, name=config, split=split, revision=revision, data_files=data_files, download_mode=mode
            )
        except (FileNotFoundError, ConnectionError, OSError, ValueError) as exc:
            raise SourceUnavailableError(
                f"cannot load {self.source.id} (config {config}, split {split}, revision {revision}) from "
                f"{path}: {exc}. Without hub access, build --from raw, or point --hub-mirror (or "
                f"${HUB_MIRROR_ENV}) at a folder holding {self.source.id} in the hub layout."
            ) from exc
        self.inputs.append(
            {
                "hub": self.source.id,
                "revision": self.source.revision,
                "commit": revision,
                "config": config,
                "split": split,
                "location": path,
                "fingerprint": ds._fingerprint,
                "rows": ds.num_rows,
            }
        )
        return ds

    def hub_file(self, filename: str) -> Path:
        """One file of the source's hub repo (a JSON release file, say)."""
        path, revision = self._hub_location()
        if revision is None and Path(path).is_dir():
            local = Path(path) / filename
            if not local.is_file():
                raise MissingRawFilesError(self.source.id, Path(path), [filename])
        else:
            from huggingface_hub import hf_hub_download

            try:
                local = Path(hf_hub_download(path, filename, repo_type="dataset", revision=revision))
            except Exception as exc:  # offline, 404, gated: the user needs the same hint for each
                raise SourceUnavailableError(
                    f"cannot fetch {filename} from {path}@{revision}: {exc}. Use --from raw or --hub-mirror."
                ) from exc
        self.inputs.append(
            {
                "hub": self.source.id,
                "revision": self.source.revision,
                "commit": revision,
                "file": filename,
                "sha256": file_sha256(local),
            }
        )
        return local

    # ------------------------------------------------------------------ helpers for builders

    def rng(self, *salt: object) -> random.Random:
        """A random generator determined by the seed, the task and `salt`."""
        return random.Random(":".join(map(str, (self.seed, self.spec.name, *salt))))

    def instance_id(self, *keys: object) -> str:
        """A stable id from source keys (ids, titles), not from positions."""
        digest = hashlib.sha256("\x1f".join(map(str, keys)).encode()).hexdigest()[:12]
        return f"{self.spec.name}-{digest}"

    def progress(self, items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        if not self.show_progress:
            return items
        from tqdm.auto import tqdm

        return tqdm(items, desc=f"{self.spec.name}: {desc}", total=total, unit="it", leave=False)

    def llm_step(self, step: str, purpose: str) -> BuilderLLM | None:
        """The LLM for a step, or None; either way the manifest records what happened."""
        if self.llm is None:
            self.llm_steps[step] = {
                "status": "skipped",
                "purpose": purpose,
                "reason": "no LLM configured for this build",
            }
            return None
        self.llm_steps[step] = {"status": "applied", "purpose": purpose, "llm": self.llm.describe()}
        return self.llm

    def count_many(self, texts: Sequence[str]) -> list[int]:
        return self.counter.count_many(texts)


@dataclass
class BuildResult:
    task: str
    path: Path
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _unpinned_warning(ctx: BuildContext) -> str | None:
    """What to tell the user loudly when the build read a hub source that has no pinned revision."""
    if ctx.origin == "raw" or ctx.source.revision is not None:
        return None
    where = f"a local mirror ({ctx.mirror / ctx.source.id})" if ctx.mirror else f"the hub head, commit {ctx.commit}"
    return (
        f"UNPINNED SOURCE: {ctx.spec.name} was built from {ctx.source.id} at {where}; that repo has no pinned "
        "revision in tasks/catalog.py (REVISIONS), so a later build may read other data. The manifest records "
        "what was read; compare task hashes before comparing scores."
    )


def _exclude_questions(
    ctx: BuildContext, splits: dict[str, list[Instance]], others: Sequence[str | Path]
) -> dict[str, list[Instance]]:
    """Drop the questions (same normalised text) that the built tasks `others` ask."""
    from .manifest import load_built
    from .overlap import normalise

    banned: set[str] = set()
    for other in others:
        data, manifest = load_built(other)
        banned |= {normalise(q["question"]) for split in data.values() for row in split for q in row["questions"]}
        ctx.inputs.append({"excluded_questions_of": manifest["task"], "sha256": manifest["sha256"]})
    dropped_questions = dropped_instances = 0
    kept: dict[str, list[Instance]] = {}
    for split, instances in splits.items():
        kept[split] = []
        for instance in instances:
            questions = [q for q in instance.questions if normalise(q.question) not in banned]
            dropped_questions += len(instance.questions) - len(questions)
            if questions:
                instance.questions = questions
                kept[split].append(instance)
            else:
                dropped_instances += 1
    ctx.notes.append(
        f"excluded {dropped_questions} question(s) asked by {len(others)} other task(s); "
        f"{dropped_instances} instance(s) left without a question were dropped"
    )
    return kept


@contextmanager
def _datasets_progress(enabled: bool) -> Iterator[None]:
    """`datasets` draws its own bars; silence them for quiet builds."""
    import datasets

    was_enabled = not datasets.are_progress_bars_disabled()
    if not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            datasets.enable_progress_bars()


def default_origin(spec: TaskSpec) -> Origin:
    return "hub" if "hub" in spec.origins else spec.origins[0]


def _rows(ctx: BuildContext, split: str, instances: list[Instance]) -> list[dict[str, Any]]:
    spec, rows = ctx.spec, []
    for instance in instances:
        counts = ctx.counter.count_many(instance.chunks)
        if ctx.enforce_chunk_limit:
            for i, n in enumerate(counts):
                if n > spec.chunk_size:
                    raise BuildError(
                        f"{spec.name}/{split}, instance {instance.instance_id}, chunks[{i}]: {n} tokens, "
                        f"over the {spec.chunk_size}-token limit (builder bug)"
                    )
        row = instance.to_row(spec.name, spec.competency, sum(counts))
        problems = row_problems(row)
        if problems:
            listed = "; ".join(f"field {f!r}: {m}" for f, m in problems)
            raise BuildError(f"{spec.name}/{split}, instance {instance.instance_id}: {listed}")
        rows.append(row)
    return rows


def build_task(
    name: str,
    out_dir: str | Path,
    *,
    origin: Origin | None = None,
    raw_dir: str | Path | None = None,
    hub_mirror: str | Path | None = None,
    tokenizer: str | None = None,
    limit: int | None = None,
    seed: int = 42,
    llm: BuilderLLM | None = None,
    exclude_from: Sequence[str | Path] = (),
    show_progress: bool = True,
) -> BuildResult:
    """Build one task into `out_dir/<name>/` (replacing an older build only once the new one is complete).

    `exclude_from` names built tasks whose questions this one must not ask (e.g. the evaluation sets a
    training task must stay clear of): matching questions are dropped, and instances left without a
    question with them; the manifest records what was dropped.
    """
    from datasets import Dataset, DatasetDict

    spec = get_task(name)
    origin = origin or default_origin(spec)
    if origin not in spec.origins:
        raise TaskError(f"task {name!r} cannot be built --from {origin}; it has: {', '.join(spec.origins)}")
    if limit is not None and limit < 1:
        raise TaskError(f"--limit must be at least 1, got {limit}")
    if not 0 <= seed < 2**32:  # numpy's RandomState draws the train cap
        raise TaskError(f"--seed must be between 0 and 2**32 - 1, got {seed}")
    ctx = BuildContext(
        spec=spec,
        origin=origin,
        source=spec.source(origin),
        counter=get_counter(tokenizer or spec.tokenizer),
        seed=seed,
        limit=limit,
        raw_root=Path(raw_dir) if raw_dir else None,
        hub_mirror=Path(hub_mirror) if hub_mirror else None,
        llm=llm,
        show_progress=show_progress,
    )
    splits = spec.load_builder()(ctx)
    if set(splits) != set(spec.splits):
        raise BuildError(f"{name}: builder returned splits {sorted(splits)}, the registry says {list(spec.splits)}")
    if exclude_from:
        splits = _exclude_questions(ctx, splits, exclude_from)

    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    seen: dict[str, str] = {}
    for split in spec.splits:
        instances = splits[split][:limit] if limit else splits[split]
        for inst in instances:
            if inst.instance_id in seen:
                raise BuildError(
                    f"{name}: instance id {inst.instance_id!r} in both {seen[inst.instance_id]} and {split}"
                )
            seen[inst.instance_id] = split
        rows_by_split[split] = _rows(ctx, split, instances)
    if not any(rows_by_split.values()):
        raise BuildError(f"{name}: the build produced no instances (inputs too small for the task's filters?)")

    unpinned = _unpinned_warning(ctx)
    if unpinned:
        ctx.notes.append(unpinned)
        warnings.warn(unpinned, UnpinnedSourceWarning, stacklevel=2)
    split_hashes = {s: split_sha256(rows) for s, rows in rows_by_split.items()}
    manifest = {
        "format": MANIFEST_FORMAT,
        "task": spec.name,
        "task_version": spec.version,
        "competency": spec.competency,
        "metric": spec.metric,
        "chunk_size": spec.chunk_size,
        "chunk_limit_enforced": ctx.enforce_chunk_limit,
        "builder": spec.builder,
        "origin": origin,
        "source": {
            "id": ctx.source.id,
            "revision": ctx.source.revision,
            "commit": ctx.commit,
            "mirror": str(ctx.mirror / ctx.source.id) if ctx.mirror and origin != "raw" else None,
            "config": ctx.source.config,
            "pinned": origin == "raw" or ctx.source.revision is not None,
        },
        "license": spec.license(origin),
        "inputs": ctx.inputs,
        "tokenizer": ctx.counter.describe(),
        "seed": seed,
        "limit": limit,
        "params": spec.params,
        "llm_steps": ctx.llm_steps,
        "notes": ctx.notes,
        "splits": {s: {**split_stats(rows), "sha256": split_hashes[s]} for s, rows in rows_by_split.items()},
        "sha256": dataset_sha256(split_hashes),
        "built_with": f"memalpha-bench {package_version()}",
    }

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / spec.name
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=out_dir))
    info = dataset_info(spec, origin)
    try:
        dataset = DatasetDict(
            {
                s: Dataset.from_list(rows, features=features(), info=info.copy())
                if rows
                else Dataset.from_dict({column: [] for column in features()}, features=features(), info=info.copy())
                for s, rows in rows_by_split.items()
            }
        )
        with _datasets_progress(show_progress):
            dataset.save_to_disk(str(staging))
        write_manifest(staging, manifest)
        write_task_card(staging, manifest)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return BuildResult(spec.name, final, manifest, [unpinned] if unpinned else [])
