"""PubMed-RCT sentence classification (Mem-alpha `pubmed-rct`): labelled sentences in random-size chunks.

Origins: the release file `DIR/pubmed_rct/train.txt` (a `###<abstract id>` line, then `LABEL<TAB>sentence`
lines, a blank line between abstracts), the hub copy `pietrolesci/pubmed-200k-rct` (train split, one row
per sentence: `labels`, `text`, `uid` = the abstract id), and Mem-alpha's processed release.

Construction as the original: up to `instances` instances of 10 chunks, chunk i filled with
"Sentence/Label" lines up to a random size in [min_chunk_tokens, chunk_size], and 100 questions per
instance on sentences that are not in its chunks. Two changes keep the splits clean: the abstracts are
split 90/10 into train and validation pools (by a stable hash of the abstract id) before anything is
built, so a validation instance never sees a sentence of a train abstract; and within a split the
instances take consecutive stretches of one shuffled sentence stream, so no sentence is used twice there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import wrappers
from ..build import BuildContext
from ..errors import RawFormatError
from ..schema import Instance, Question
from ..splits import partition_by_key, train_validation
from .classification import Example, example_wrap, one_line, pack_examples

LABELS = ("BACKGROUND", "CONCLUSIONS", "METHODS", "OBJECTIVE", "RESULTS")
SPLIT_FRACTIONS = {"train": 0.9, "validation": 0.1}


@dataclass
class Abstract:
    abstract_id: str
    sentences: list[Example] = field(default_factory=list)

    def add(self, text: str, label: int) -> None:
        """A sentence; its source id is `<abstract id>-<position in the abstract>`."""
        self.sentences.append(Example(text, label, f"{self.abstract_id}-{len(self.sentences)}"))


def read_pubmed_file(path: Path) -> list[Abstract]:
    """Abstracts of a PubMed-RCT `.txt` file (an id seen twice continues the same abstract)."""
    abstracts: dict[str, Abstract] = {}
    current: Abstract | None = None
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            where = f"line {lineno}"
            if line.startswith("###"):
                abstract_id = line[3:].strip()
                if not abstract_id:
                    raise RawFormatError(path, where, "empty abstract id after ###", field="abstract id")
                current = abstracts.setdefault(abstract_id, Abstract(abstract_id))
                continue
            if current is None:
                raise RawFormatError(path, where, "sentence line before the first ###<abstract id> line")
            label, tab, text = line.partition("\t")
            if not tab:
                raise RawFormatError(path, where, "expected LABEL<TAB>sentence (no tab)", field="label")
            if label not in LABELS:
                raise RawFormatError(
                    path, where, f"unknown label {label!r} (known: {', '.join(LABELS)})", field="label"
                )
            if not text.strip():
                raise RawFormatError(path, where, "empty sentence", field="sentence")
            current.add(one_line(text), LABELS.index(label))
    return list(abstracts.values())


def read_pubmed_hub(ctx: BuildContext) -> list[Abstract]:
    """The hub copy's train split, one row per sentence, grouped by `uid` in row order."""
    ds = ctx.hub_dataset("train")
    where = f"{ctx.source.id} (hub, train)"
    abstracts: dict[str, Abstract] = {}
    for i, (uid, text, label) in enumerate(zip(ds["uid"], ds["text"], ds["labels"], strict=True)):
        if not isinstance(label, int) or not 0 <= label < len(LABELS):
            raise RawFormatError(where, f"row {i}", f"label id {label!r} outside 0..{len(LABELS) - 1}", field="labels")
        if not isinstance(text, str) or not text.strip():
            raise RawFormatError(where, f"row {i}", "empty text", field="text")
        abstract_id = str(uid)
        abstracts.setdefault(abstract_id, Abstract(abstract_id)).add(one_line(text), label)
    return list(abstracts.values())


def _questions(sentences: Sequence[Example], start: int, n: int, exclude: set[str]) -> tuple[list[Question], int]:
    """Up to `n` questions on the sentences from `start` on, skipping texts in `exclude` or asked already."""
    questions: list[Question] = []
    seen = set(exclude)
    pos = start
    while pos < len(sentences) and len(questions) < n:
        ex = sentences[pos]
        pos += 1
        if ex.key in seen:
            continue
        seen.add(ex.key)
        question = wrappers.label_question(ex.text)
        questions.append(Question(f"pubmed-{ex.source_id}", question, [str(ex.label)]))
    return questions, pos


def _instances(ctx: BuildContext, split: str, sentences: Sequence[Example], count: int) -> list[Instance]:
    """Up to `count` instances from consecutive stretches of `sentences`; stops when they run out."""
    params = ctx.params
    n_chunks, n_questions = params["chunks_per_instance"], params["questions"]
    labels = {str(i): name for i, name in enumerate(LABELS)}
    out: list[Instance] = []
    pos = 0
    for n in ctx.progress(range(count), split, total=count):
        size_rng = ctx.rng(split, n, "sizes")
        sizes = [size_rng.randint(params["min_chunk_tokens"], ctx.chunk_size) for _ in range(n_chunks)]
        chunks, pos = pack_examples(
            ctx, sentences, sizes.__getitem__, example_wrap(ctx, split, n), start=pos, max_chunks=n_chunks
        )
        used = [ex for chunk in chunks for ex in chunk.examples]
        questions, pos = _questions(sentences, pos, n_questions, {ex.key for ex in used})
        if len(chunks) < n_chunks or len(questions) < n_questions:
            break
        instance_id = ctx.instance_id(split, used[0].source_id, questions[0].question_id)
        out.append(
            Instance(
                instance_id,
                [c.text for c in chunks],
                questions,
                {
                    "source": "pubmed_rct",
                    "labels": labels,
                    "split": split,
                    "chunk_budgets": sizes,
                    "context_examples": len(used),
                    "abstracts": len({(ex.source_id or "").rpartition("-")[0] for ex in used}),
                },
            )
        )
    return out


def build(ctx: BuildContext) -> dict[str, list[Instance]]:
    if ctx.origin == "release":
        from .memalpha_release import build_memalpha_release

        return build_memalpha_release(ctx)
    if ctx.origin == "raw":
        abstracts = [a for path in ctx.raw_files() for a in read_pubmed_file(path)]
    else:
        abstracts = read_pubmed_hub(ctx)
    pools = partition_by_key([a.abstract_id for a in abstracts], SPLIT_FRACTIONS, salt="pubmed_rct")
    slots = train_validation(list(range(ctx.params["instances"])), seed=ctx.seed)
    out: dict[str, list[Instance]] = {}
    for split, split_slots in slots.items():
        sentences = [ex for i in pools[split] for ex in abstracts[i].sentences]
        ctx.rng(split, "order").shuffle(sentences)
        count = len(split_slots) if ctx.limit is None else min(ctx.limit, len(split_slots))
        out[split] = _instances(ctx, split, sentences, count)
        ctx.notes.append(
            f"{split}: {len(pools[split])} abstracts, {len(sentences)} sentences, "
            f"{len(out[split])} of {len(split_slots)} instances built"
        )
    return out
