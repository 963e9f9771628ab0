"""Dataset cards and `DatasetInfo` for built tasks: the hub's metadata (SPDX licenses, language, task
categories, configs), the citations as BibTeX, and the provenance the manifest records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .atomic import replace_file
from .licenses import HUB_LICENSE, spdx_ids
from .registry import TaskSpec, get_task

CARD = "README.md"
TEMPLATE = Path(__file__).with_name("templates") / "card.md.jinja"
# What the hub calls the kind of task each metric scores.
TASK_CATEGORIES = {
    "substring_em": "question-answering",
    "exact_match": "question-answering",
    "token_f1": "question-answering",
    "llm_judge": "question-answering",
    "boxed_label_accuracy": "text-classification",
    "keyword_recall": "summarization",
    "rouge_l": "summarization",
    "recall_at_5": "text-generation",
}
LICENSE_NOTES = {
    "NOASSERTION": "no license declared by the publisher (TREC: free for research from UIUC CogComp; "
    "PubMed-RCT: PubMed abstracts, some under copyright; Mem-alpha's processed releases: none stated)",
}


def dataset_info(spec: TaskSpec, origin: str):
    """The `datasets.DatasetInfo` every split of a built task carries (`ds.info.license` and so on)."""
    from datasets import DatasetInfo

    from .schema import features

    return DatasetInfo(
        description=f"memalpha-bench task {spec.name} ({spec.competency}, metric {spec.metric}): {spec.description}",
        citation=spec.bibtex(),
        homepage="https://github.com/memalpha-bench/memalpha-bench",
        license=spec.license(origin),  # type: ignore[arg-type]
        features=features(),
    )


def _size_category(instances: int) -> str:
    return "n<1K" if instances < 1000 else "1K<n<10K" if instances < 10_000 else "10K<n<100K"


def _source_line(manifest: Mapping[str, Any]) -> str:
    source = manifest.get("source") or {}
    at = source.get("commit") or source.get("revision") or ("local files" if manifest.get("origin") == "raw" else "?")
    return f"`{source.get('id', '?')}` @ `{str(at)[:12]}`"


def _task_row(manifest: Mapping[str, Any]) -> dict[str, str]:
    spec = get_task(manifest["task"])
    splits = ", ".join(f"{s} ({v['instances']})" for s, v in manifest["splits"].items())
    return {
        "name": spec.name,
        "competency": spec.competency,
        "metric": spec.metric,
        "splits": splits,
        "origin": manifest.get("origin", "?"),
        "source": _source_line(manifest),
        "license": manifest.get("license") or spec.license(manifest["origin"]),
        "sha256": manifest["sha256"],
    }


def render_card(
    manifests: Sequence[Mapping[str, Any]],
    configs: Sequence[dict[str, Any]],
    *,
    title: str,
    loading: Sequence[str],
) -> str:
    """A dataset card for one or more built tasks; `configs` are the hub's `configs:` entries."""
    from huggingface_hub import DatasetCard, DatasetCardData

    rows = [_task_row(m) for m in manifests]
    specs = [get_task(m["task"]) for m in manifests]
    ids = list(dict.fromkeys(i for row in rows for i in spdx_ids(row["license"])))
    keys = list(dict.fromkeys(k for spec in specs for k in spec.citations))
    instances = sum(v["instances"] for m in manifests for v in m["splits"].values())
    data = DatasetCardData(
        language=["en"],
        license=list(dict.fromkeys(HUB_LICENSE[i] for i in ids)),
        task_categories=sorted({TASK_CATEGORIES[s.metric] for s in specs}),
        size_categories=[_size_category(instances)],
        pretty_name=title,
        tags=["memory", "long-context", "agents", "memalpha-bench"],
        configs=list(configs),
        memalpha_bench={
            "tasks": {
                m["task"]: {
                    "sha256": m["sha256"],
                    "splits": {s: v["sha256"] for s, v in m["splits"].items()},
                    "origin": m.get("origin"),
                    "source": m.get("source"),
                    "license": row["license"],
                    "tokenizer": (m.get("tokenizer") or {}).get("spec"),
                    "task_version": m.get("task_version"),
                    "built_with": m.get("built_with"),
                }
                for m, row in zip(manifests, rows, strict=True)
            }
        },
    )
    licenses = [f"`{i}`" + (f": {LICENSE_NOTES[i]}" if i in LICENSE_NOTES else "") for i in ids]
    licenses += [f"`{row['name']}`: `{row['license']}`" for row in rows]
    from .citations import bibtex

    card = DatasetCard.from_template(
        data,
        template_path=str(TEMPLATE),
        title=title,
        summary=specs[0].description if len(specs) == 1 else f"{len(specs)} tasks of memalpha-bench.",
        built_with=manifests[0].get("built_with", "memalpha-bench"),
        loading=list(loading),
        tasks=rows,
        licenses=licenses,
        bibtex=bibtex(tuple(keys)),
    )
    return str(card)


def write_task_card(directory: Path, manifest: Mapping[str, Any]) -> Path:
    """The card of one built task folder (the `save_to_disk` layout: its Arrow files as the default config,
    so `load_dataset(folder)` reads it as well as `load_from_disk(folder)`)."""
    configs = [
        {
            "config_name": "default",
            "data_files": [{"split": s, "path": f"{s}/data-*.arrow"} for s in manifest["splits"]],
        }
    ]
    text = render_card(
        [manifest],
        configs,
        title=f"memalpha-bench: {manifest['task']}",
        loading=[
            "from datasets import load_from_disk",
            f'task = load_from_disk("{directory.name}")  # the folder `memalpha tasks build` wrote',
            "# or: datasets.load_dataset(<that folder>); memalpha-bench's own loader also verifies the hashes:",
            "# from tasks.manifest import load_built; data, manifest = load_built(<that folder>)",
        ],
    )
    return replace_file(directory / CARD, text)
