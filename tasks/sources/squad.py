"""SQuAD v1.1: paragraphs packed into random-size dialogue chunks, 10 chunks per instance.

Origins: the hub (`rajpurkar/squad`, train), the release JSON files (`DIR/squad/*.json`), and
Mem-alpha's processed release. From raw files, the task reads the training files (`train*.json`) only:
the dev files hold the questions of the length-scaling suite. A folder without a training file (the
shared samples are dev articles) is read whole, and the manifest says so.

Paragraphs are packed whole, as the original packed them: a chunk closes before the paragraph that would
pass its random target, and a paragraph is cut (by sentences) only when it alone exceeds the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..build import BuildContext
from ..errors import RawFormatError
from ..schema import Instance
from ..splits import train_validation
from .common import field as get_field
from .common import read_json, unique
from .qa import QA, dialogue_chunks, select_questions


@dataclass
class Paragraph:
    title: str
    context: str
    qas: list[QA] = field(default_factory=list)


def read_squad_file(path: Path) -> list[Paragraph]:
    """Paragraphs of one SQuAD v1.1 JSON file (`{"data": [{"title", "paragraphs": [...]}]}`)."""
    data = get_field(read_json(path), "data", list, path, "top level")
    paragraphs = []
    for a, article in enumerate(data):
        where = f"record data[{a}]"
        title = get_field(article, "title", str, path, where)
        for p, para in enumerate(get_field(article, "paragraphs", list, path, where)):
            pwhere = f"{where}.paragraphs[{p}]"
            paragraph = Paragraph(title, get_field(para, "context", str, path, pwhere))
            for q, qa in enumerate(get_field(para, "qas", list, path, pwhere)):
                qwhere = f"{pwhere}.qas[{q}]"
                answers = get_field(qa, "answers", list, path, qwhere)
                texts = unique(
                    [get_field(ans, "text", str, path, f"{qwhere}.answers[{i}]") for i, ans in enumerate(answers)]
                )
                if not texts:
                    raise RawFormatError(path, qwhere, "no non-empty answer text", field="answers")
                paragraph.qas.append(
                    QA(
                        get_field(qa, "id", str, path, qwhere),
                        get_field(qa, "question", str, path, qwhere).strip(),
                        texts,
                    )
                )
            paragraphs.append(paragraph)
    return paragraphs


def read_squad_hub(ctx: BuildContext, split: str) -> list[Paragraph]:
    """Paragraphs of the hub dataset (one row per question), grouped by context in row order."""
    by_context: dict[str, Paragraph] = {}
    for row in ctx.progress(ctx.hub_dataset(split), "reading"):
        para = by_context.setdefault(row["context"], Paragraph(row["title"], row["context"]))
        para.qas.append(QA(row["id"], row["question"].strip(), unique(row["answers"]["text"])))
    return list(by_context.values())


def is_train_file(path: Path) -> bool:
    """SQuAD's release names its files `train-v1.1.json` and `dev-v1.1.json`."""
    return path.name.startswith("train")


def training_files(ctx: BuildContext) -> list[Path]:
    """The raw training files; every file of the folder (with a note) when it has none."""
    if any(is_train_file(p) for p in ctx.raw_dir.glob("*.json")):
        return ctx.raw_files("train*.json")
    files = ctx.raw_files()
    ctx.notes.append(
        f"no train*.json in {ctx.raw_dir}: built from {', '.join(p.name for p in files)}, which are not "
        "SQuAD's training files; the length-scaling tasks ask questions from the dev files"
    )
    return files


def load_paragraphs(ctx: BuildContext, hub_split: str, raw_files: list[Path] | None = None) -> list[Paragraph]:
    """Distinct paragraphs of the hub split, or of the raw files (default: all of the source's files)."""
    if ctx.origin == "raw":
        paths = ctx.raw_files() if raw_files is None else raw_files
        paragraphs = [p for path in paths for p in read_squad_file(path)]
    else:
        paragraphs = read_squad_hub(ctx, hub_split)
    merged: dict[str, Paragraph] = {}
    for p in paragraphs:  # the same paragraph text can appear twice; keep one, with all its questions
        if p.context in merged:
            merged[p.context].qas.extend(p.qas)
        else:
            merged[p.context] = p
    return list(merged.values())


def build(ctx: BuildContext) -> dict[str, list[Instance]]:
    if ctx.origin == "release":
        from .memalpha_release import build_memalpha_release

        return build_memalpha_release(ctx)
    params = ctx.params
    per_instance = params["chunks_per_instance"]
    paragraphs = load_paragraphs(ctx, "train", training_files(ctx) if ctx.origin == "raw" else None)
    chunks = dialogue_chunks(
        ctx,
        [p.context for p in paragraphs],
        salt="squad",
        min_tokens=params["min_chunk_tokens"],
        date_index=lambda i: i % per_instance,
        whole=True,
    )
    instances = []
    for start in ctx.progress(range(0, len(chunks), per_instance), "instances"):
        group = chunks[start : start + per_instance]
        if len(group) < per_instance or len(group) > params["max_chunks"]:
            continue
        prev_units = set(chunks[start - 1].units) if start else set()
        next_units = set(chunks[start + per_instance].units) if start + per_instance < len(chunks) else set()
        inside = dict.fromkeys(u for c in group for u in c.units)
        # a paragraph cut at the instance boundary is only partly here: its questions are left out
        whole = [u for u in inside if u not in prev_units and u not in next_units]
        qas = [qa for u in whole for qa in paragraphs[u].qas]
        if len(qas) < params["min_questions_before"]:
            continue
        texts = [c.text for c in group]
        instance_id = ctx.instance_id(qas[0].question_id)
        questions = select_questions(
            ctx,
            instance_id,
            qas,
            texts,
            max_answer_tokens=params["max_answer_tokens"],
            cap=params["max_questions"],
        )
        if len(questions) < params["min_questions"]:
            continue
        instances.append(
            Instance(
                instance_id,
                texts,
                questions,
                {
                    "source": "squad",
                    "titles": unique([paragraphs[u].title for u in inside]),
                    "paragraphs": len(inside),
                },
            )
        )
    return train_validation(instances, seed=ctx.seed)
