"""Labelled-sentence classification: Mem-alpha TTL training sets and MemoryAgentBench ICL sets (raw files).

Sources (release formats): TREC `train_5500.label` (+ optional `TREC_10.label`; hub `CogComp/trec`),
Banking77 `train.csv` (+ optional `test.csv`) with `categories.json`, CLINC150 `data_full.json`, and the
NLU (HWU64) semicolon CSVs (`**/*.csv`; files under a `testset` folder are test data).

Pools. One source's training examples are partitioned by a stable hash of the normalised sentence
(`tasks.splits.partition_by_key`, salted with the source family: `trec` for both TREC label spaces), so
duplicate sentences always share a pool:

    icl-context               50%   context examples of the icl_* task (TREC and NLU)
    icl-questions              5%   icl_* questions when the source has no test file
    ttl-train-context         25%   ttl_* train chunks
    ttl-train-questions        6%   ttl_* train questions
    ttl-validation-context     9%   ttl_* validation chunks
    ttl-validation-questions   5%   ttl_* validation questions

So ICL and TTL built from one file share no sentence, and neither do TTL train and validation.
Banking77 and CLINC150 have no TTL task: their ICL context is the whole training data (less the
icl-questions pool when the questions come from it).

TTL (Mem-alpha `ttl_train`) differs from the original on purpose: the original asked MemoryAgentBench's
own test questions in every training instance (contaminating the evaluation); here the questions come
from the source's own training data. The split is the original's: its 400 instance slots (200
TREC-coarse, then 200 NLU) are split 90/10 and the train side capped at 100 together
(`splits.merged_train_validation`), so `ttl_trec_coarse` and `ttl_nlu` have 51 and 49 training
instances (seed 42; the paper's Table 7) whichever is built, and 20 validation instances each.
Each instance: its split's context pool cycled and shuffled, packed whole into `chunks_per_instance`
chunks of about `chunk_tokens` tokens, one example of every label still absent appended to chunk 0
(as the original), and `questions` sentences of the split's question pool.

Texts are kept on one line (runs of whitespace become one space) so an example's "Label:" line stays
its own. A question's id is a hash of its normalised sentence; a sentence listed twice with different
labels is asked once, with every label it carries as a gold answer.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .. import wrappers
from ..build import BuildContext
from ..chunking import Wrap, chunk_text
from ..errors import BuildError, RawFormatError
from ..schema import Instance, Question
from ..splits import merged_train_validation, partition_by_key
from .common import field as get_field
from .common import pack_whole, read_csv, read_json

TREC_COARSE = ("ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM")
TREC_FINE = (
    "ABBR:abb",
    "ABBR:exp",
    "ENTY:animal",
    "ENTY:body",
    "ENTY:color",
    "ENTY:cremat",
    "ENTY:currency",
    "ENTY:dismed",
    "ENTY:event",
    "ENTY:food",
    "ENTY:instru",
    "ENTY:lang",
    "ENTY:letter",
    "ENTY:other",
    "ENTY:plant",
    "ENTY:product",
    "ENTY:religion",
    "ENTY:sport",
    "ENTY:substance",
    "ENTY:symbol",
    "ENTY:techmeth",
    "ENTY:termeq",
    "ENTY:veh",
    "ENTY:word",
    "DESC:def",
    "DESC:desc",
    "DESC:manner",
    "DESC:reason",
    "HUM:gr",
    "HUM:ind",
    "HUM:title",
    "HUM:desc",
    "LOC:city",
    "LOC:country",
    "LOC:mount",
    "LOC:other",
    "LOC:state",
    "NUM:code",
    "NUM:count",
    "NUM:date",
    "NUM:dist",
    "NUM:money",
    "NUM:ord",
    "NUM:other",
    "NUM:period",
    "NUM:perc",
    "NUM:speed",
    "NUM:temp",
    "NUM:volsize",
    "NUM:weight",
)
POOL_FRACTIONS = {
    "icl-context": 0.50,
    "icl-questions": 0.05,
    "ttl-train-context": 0.25,
    "ttl-train-questions": 0.06,
    "ttl-validation-context": 0.09,
    "ttl-validation-questions": 0.05,
}
# The partition salt of each dataset: both TREC label spaces share one partition of train_5500.label.
FAMILY = {
    "trec_coarse": "trec",
    "trec_fine": "trec",
    "nlu": "nlu",
    "banking77": "banking77",
    "clinic150": "clinc150",
}
TTL_FAMILIES = frozenset({"trec", "nlu"})
NLU_COLUMNS = ("answerid", "scenario", "intent", "answer_from_anno")
EXAMPLE_SEP = "\n\n"  # between the labelled examples of a chunk
Item = tuple[str, str, list[int]]  # a question: sentence key, sentence, gold label ids
_WORDS = re.compile(r"\w+")


def one_line(text: str) -> str:
    """The text with every run of whitespace as one space: a labelled example must not break its lines."""
    return " ".join(text.split())


def sentence_key(text: str) -> str:
    """The sentence as compared across pools: case-folded words only (punctuation and spacing ignored)."""
    return " ".join(_WORDS.findall(text.casefold()))


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    source_id: str | None = None  # the example's id in the source, where it has one

    @cached_property
    def key(self) -> str:
        return sentence_key(self.text)

    @cached_property
    def line(self) -> str:
        return wrappers.labelled(self.text, str(self.label))


@dataclass
class LabelledData:
    """One source in one label space: label names (index = id), training and (optional) test examples."""

    labels: list[str]
    train: list[Example]
    train_file: str
    test: list[Example] | None = None
    test_file: str | None = None

    def label_map(self) -> dict[str, str]:
        return {str(i): name for i, name in enumerate(self.labels)}


# ---------------------------------------------------------------------------------------------- readers


def read_trec_file(path: Path, *, fine: bool) -> list[Example]:
    """Lines `COARSE:fine question ?` (latin-1). The one 0xF0 byte of train_5500 becomes a space, as in the
    hub copy, so raw and hub builds read the same text."""
    examples = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.replace(b"\xf0", b" ").decode("latin-1").strip()
            if not line:
                continue
            label, _, text = line.partition(" ")
            coarse, colon, _ = label.partition(":")
            if not colon or coarse not in TREC_COARSE or label not in TREC_FINE:
                raise RawFormatError(
                    path, f"line {lineno}", f"expected a COARSE:fine label, found {label!r}", field="label"
                )
            if not text.strip():
                raise RawFormatError(path, f"line {lineno}", "no question text after the label", field="question")
            label_id = TREC_FINE.index(label) if fine else TREC_COARSE.index(coarse)
            examples.append(Example(one_line(text), label_id))
    return examples


def read_trec_hub(ctx: BuildContext, *, fine: bool) -> list[Example]:
    """The hub copy's train split: `text`, `coarse_label`, `fine_label` (ClassLabel ids in our orders)."""
    ds = ctx.hub_dataset("train")
    column, names = ("fine_label", TREC_FINE) if fine else ("coarse_label", TREC_COARSE)
    where = f"{ctx.source.id} (hub, train)"
    examples = []
    for i, (text, label) in enumerate(zip(ds["text"], ds[column], strict=True)):
        if not isinstance(label, int) or not 0 <= label < len(names):
            raise RawFormatError(where, f"row {i}", f"label id {label!r} outside 0..{len(names) - 1}", field=column)
        if not isinstance(text, str) or not text.strip():
            raise RawFormatError(where, f"row {i}", "empty text", field="text")
        examples.append(Example(one_line(text), label))
    return examples


def load_trec(ctx: BuildContext, *, fine: bool) -> LabelledData:
    labels = list(TREC_FINE if fine else TREC_COARSE)
    if ctx.origin == "hub":
        return LabelledData(labels, read_trec_hub(ctx, fine=fine), f"{ctx.source.id} train split")
    data = LabelledData(labels, [], "train_5500.label")
    for path in ctx.raw_files("train_5500.label"):
        data.train.extend(read_trec_file(path, fine=fine))
    if (ctx.raw_dir / "TREC_10.label").is_file():
        data.test = [ex for path in ctx.raw_files("TREC_10.label") for ex in read_trec_file(path, fine=fine)]
        data.test_file = "TREC_10.label"
    return data


def _read_banking_csv(path: Path, labels: list[str]) -> list[Example]:
    ids = {name: i for i, name in enumerate(labels)}
    examples = []
    for lineno, row in read_csv(path, ("text", "category")):
        if row["category"] not in ids:
            raise RawFormatError(
                path,
                f"line {lineno}",
                f"category {row['category']!r} is not in categories.json",
                field="category",
            )
        if not row["text"].strip():
            raise RawFormatError(path, f"line {lineno}", "empty text", field="text")
        examples.append(Example(one_line(row["text"]), ids[row["category"]]))
    return examples


def load_banking77(ctx: BuildContext) -> LabelledData:
    """Banking77: `train.csv` / `test.csv` (text,category); label ids in the order of `categories.json`."""
    (categories_path,) = ctx.raw_files("categories.json")
    categories = read_json(categories_path)
    if not isinstance(categories, list) or not all(isinstance(c, str) and c for c in categories):
        raise RawFormatError(categories_path, "top level", "expected a JSON array of category names")
    (train_path,) = ctx.raw_files("train.csv")
    data = LabelledData(categories, _read_banking_csv(train_path, categories), "train.csv")
    if (ctx.raw_dir / "test.csv").is_file():
        (test_path,) = ctx.raw_files("test.csv")
        data.test, data.test_file = _read_banking_csv(test_path, categories), "test.csv"
    return data


def load_clinc150(ctx: BuildContext) -> LabelledData:
    """CLINC150 `data_full.json`: the 150 intents sorted, then `oos`.

    Train is train + oos_train, test is test + oos_test (the val splits are not used).
    """
    (path,) = ctx.raw_files("data_full.json")
    doc = read_json(path)
    pairs: dict[str, list[tuple[str, str]]] = {}
    for split in ("train", "oos_train", "test", "oos_test"):
        items = get_field(doc, split, list, path, "top level")
        pairs[split] = []
        for i, item in enumerate(items):
            if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) and x.strip() for x in item)):
                raise RawFormatError(path, f"record {split}[{i}]", "expected [text, intent] (two non-empty strings)")
            pairs[split].append((one_line(item[0]), item[1].strip()))
    intents = sorted({intent for items in pairs.values() for _, intent in items} - {"oos"})
    labels = [*intents, "oos"]
    ids = {name: i for i, name in enumerate(labels)}

    def examples(*splits: str) -> list[Example]:
        return [Example(text, ids[intent]) for s in splits for text, intent in pairs[s]]

    return LabelledData(
        labels,
        examples("train", "oos_train"),
        "data_full.json train+oos_train",
        examples("test", "oos_test"),
        "data_full.json test+oos_test",
    )


def _read_nlu_csv(path: Path) -> list[tuple[str, str, str]]:
    """(text, label, answerid) of one NLU CSV; label = scenario_intent, text = answer_from_anno."""
    rows = []
    for lineno, row in read_csv(path, NLU_COLUMNS, delimiter=";"):
        for column in NLU_COLUMNS:
            if not row[column].strip():
                raise RawFormatError(path, f"line {lineno}", "empty value", field=column)
        label = f"{row['scenario'].strip()}_{row['intent'].strip()}"
        rows.append((one_line(row["answer_from_anno"]), label, row["answerid"].strip()))
    return rows


def load_nlu(ctx: BuildContext) -> LabelledData:
    """NLU CSVs anywhere under the folder; those under a `testset` folder are test data."""
    train_rows, test_rows = [], []
    for path in ctx.raw_files("**/*.csv"):
        target = test_rows if "testset" in path.relative_to(ctx.raw_dir).parts else train_rows
        target.extend(_read_nlu_csv(path))
    labels = sorted({label for _, label, _ in train_rows + test_rows})
    ids = {name: i for i, name in enumerate(labels)}
    data = LabelledData(labels, [Example(t, ids[lab], aid) for t, lab, aid in train_rows], "trainset CSVs")
    if test_rows:
        data.test = [Example(t, ids[lab], aid) for t, lab, aid in test_rows]
        data.test_file = "testset CSVs"
    return data


def load_labelled(ctx: BuildContext, dataset: str) -> LabelledData:
    if dataset in ("trec_coarse", "trec_fine"):
        return load_trec(ctx, fine=dataset == "trec_fine")
    if dataset == "banking77":
        return load_banking77(ctx)
    if dataset == "clinic150":
        return load_clinc150(ctx)
    if dataset == "nlu":
        return load_nlu(ctx)
    raise BuildError(f"{ctx.spec.name}: unknown classification dataset {dataset!r} (params['dataset'])")


# ---------------------------------------------------------------------------------------------- shared steps


def partition_pools(examples: Sequence[Example], family: str) -> dict[str, list[Example]]:
    parts = partition_by_key([ex.key for ex in examples], POOL_FRACTIONS, salt=family)
    return {name: [examples[i] for i in indices] for name, indices in parts.items()}


def note_pools(ctx: BuildContext, family: str, pools: dict[str, list[Example]]) -> None:
    sizes = ", ".join(f"{name} {len(pool)} ({len({ex.key for ex in pool})} distinct)" for name, pool in pools.items())
    ctx.notes.append(f"{family} training examples by pool (examples, distinct sentences): {sizes}")


def example_wrap(ctx: BuildContext, *salt: object) -> Wrap:
    """The dated examples wrapper, one day apart per chunk index; its wording is drawn per chunk."""
    return lambda i, body: wrappers.examples(body, wrappers.date_for(i), ctx.rng(*salt, "wrap", i))


def _at(wrap: Wrap, index: int) -> Wrap:
    return lambda _i, body: wrap(index, body)


@dataclass
class ExampleChunk:
    text: str
    examples: list[Example]


def pack_examples(
    ctx: BuildContext,
    examples: Sequence[Example],
    budget: Callable[[int], int],
    wrap: Wrap,
    *,
    start: int = 0,
    max_chunks: int | None = None,
    known: dict[str, int] | None = None,
) -> tuple[list[ExampleChunk], int]:
    """Whole labelled examples from `start` on into wrapped chunks of at most `budget(i)` tokens each.

    Returns the chunks and the index after the last example used. As in `common.pack_whole`, an example
    never straddles two chunks and each chunk's count is verified on its final text; here chunks may
    differ in size, packing stops after `max_chunks`, and the caller learns which examples each chunk
    holds. A lone example over its chunk's budget gets a chunk of its own (cut by sentences only when
    it exceeds even the task's chunk size). `known` holds token counts by line, filled as lines are
    counted (in batches, as the packing reaches them); pass one dict to calls that reuse examples.
    """
    known = {} if known is None else known

    def tokens(i: int) -> int:
        line = examples[i].line
        if line not in known:
            batch = [ex.line for ex in examples[i : i + 256] if ex.line not in known]
            known.update(zip(batch, ctx.count_many(batch), strict=True))
        return known[line]

    sep_tokens = ctx.counter.count(EXAMPLE_SEP)
    chunks: list[ExampleChunk] = []
    pos = start
    while pos < len(examples) and (max_chunks is None or len(chunks) < max_chunks):
        index = len(chunks)
        limit = budget(index)
        end, used = pos, ctx.counter.count(wrap(index, ""))
        while end < len(examples) and (end == pos or used + sep_tokens + tokens(end) <= limit):
            used += sep_tokens + tokens(end)
            end += 1
        text = wrap(index, EXAMPLE_SEP.join(ex.line for ex in examples[pos:end]))
        while end - pos > 1 and ctx.counter.count(text) > limit:  # counts are not exactly additive
            end -= 1
            text = wrap(index, EXAMPLE_SEP.join(ex.line for ex in examples[pos:end]))
        if end - pos == 1 and ctx.counter.count(text) > max(limit, ctx.chunk_size):
            pieces = chunk_text(examples[pos].line, ctx.counter, ctx.chunk_size, wrap=_at(wrap, index))
            chunks.extend(ExampleChunk(c.text, [examples[pos]]) for c in pieces)
        else:
            chunks.append(ExampleChunk(text, list(examples[pos:end])))
        pos = end
    return chunks, pos


def question_items(examples: Sequence[Example]) -> list[Item]:
    """(key, text, label ids) per distinct sentence, first-seen order; every label of a duplicate is gold."""
    grouped: dict[str, tuple[str, set[int]]] = {}
    for ex in examples:
        grouped.setdefault(ex.key, (ex.text, set()))[1].add(ex.label)
    return [(key, text, sorted(labels)) for key, (text, labels) in grouped.items()]


def question_id(family: str, key: str) -> str:
    """A hash of the normalised sentence: stable across builds, and equal across the tasks of a family."""
    return f"{family}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def make_questions(family: str, items: Sequence[Item]) -> list[Question]:
    return [
        Question(question_id(family, key), wrappers.label_question(text), [str(lab) for lab in labels])
        for key, text, labels in items
    ]


def sample_items(items: Sequence[Item], n: int, rng: random.Random) -> list[Item]:
    return [items[i] for i in rng.sample(range(len(items)), min(n, len(items)))]


# ---------------------------------------------------------------------------------------------- TTL


def _cycled(pool: Sequence[Example], n: int, rng: random.Random) -> list[Example]:
    """`n` examples: the pool shuffled, again and again."""
    out: list[Example] = []
    while len(out) < n:
        order = list(pool)
        rng.shuffle(order)
        out.extend(order)
    return out[:n]


def _add_missing_labels(
    ctx: BuildContext,
    chunks: list[ExampleChunk],
    pool: Sequence[Example],
    n_labels: int,
    rng: random.Random,
    wrap: Wrap,
) -> list[int]:
    """Append one example of each label absent from the chunks to chunk 0, as the original did.

    Returns the labels added. Labels with no example in the pool at all cannot be added.
    """
    present = {ex.label for chunk in chunks for ex in chunk.examples}
    by_label: dict[int, list[Example]] = {}
    for ex in pool:
        by_label.setdefault(ex.label, []).append(ex)
    missing = [label for label in range(n_labels) if label not in present and label in by_label]
    if not missing:
        return []
    first = chunks[0].examples + [rng.choice(by_label[label]) for label in missing]
    text = wrap(0, EXAMPLE_SEP.join(ex.line for ex in first))
    if ctx.counter.count(text) > ctx.chunk_size:
        raise BuildError(
            f"{ctx.spec.name}: chunk 0 with {len(missing)} added examples (labels absent from "
            f"the chunks) exceeds {ctx.chunk_size} tokens; lower params['chunk_tokens']"
        )
    chunks[0] = ExampleChunk(text, first)
    return missing


def ttl_dataset(params: dict) -> str:
    return f"trec_{params['label_space']}" if params["dataset"] == "trec" else params["dataset"]


def build_ttl(ctx: BuildContext) -> dict[str, list[Instance]]:
    """Mem-alpha TTL instances (ttl_trec_coarse, ttl_nlu): chunks of labelled examples, 100 questions each.

    The instance slots are split before building, together with the other TTL task's (params['merged']),
    as the original split its merged `ttl_train`; a split's instances draw from that split's pools only.
    An instance is a sample, so its id comes from (split, slot).
    """
    if ctx.origin == "release":
        from .memalpha_release import build_memalpha_release

        return build_memalpha_release(ctx)
    params = ctx.params
    dataset = ttl_dataset(params)
    family = FAMILY[dataset]
    data = load_labelled(ctx, dataset)
    pools = partition_pools(data.train, family)
    note_pools(ctx, family, pools)
    slots = merged_train_validation(params["merged"], ctx.spec.name, params["instances"], seed=ctx.seed)
    out: dict[str, list[Instance]] = {}
    for split, split_slots in slots.items():
        context = pools[f"ttl-{split}-context"]
        items = question_items(pools[f"ttl-{split}-questions"])
        if not context or not items:
            raise BuildError(f"{ctx.spec.name}/{split}: the {family} data is too small for a {split} pool")
        lines = [ex.line for ex in context]
        known = dict(zip(lines, ctx.count_many(lines), strict=True))
        out[split] = [
            _ttl_instance(ctx, data, family, split, slot, context, items, known)
            for slot in ctx.progress(split_slots[: ctx.limit], split)
        ]
    return out


def _ttl_instance(
    ctx: BuildContext,
    data: LabelledData,
    family: str,
    split: str,
    slot: int,
    context: Sequence[Example],
    items: Sequence[Item],
    known: dict[str, int],
) -> Instance:
    params = ctx.params
    n_chunks, target = params["chunks_per_instance"], params["chunk_tokens"]
    rng = ctx.rng(split, slot)
    wrap = example_wrap(ctx, split, slot)
    stream = _cycled(context, math.ceil(n_chunks * target / max(1, min(known.values()))) + 1, rng)
    chunks, _ = pack_examples(ctx, stream, lambda _i: target, wrap, max_chunks=n_chunks, known=known)
    added = _add_missing_labels(ctx, chunks, context, len(data.labels), rng, wrap)
    questions = make_questions(family, sample_items(items, params["questions"], rng))
    instance_id = ctx.instance_id(family, ttl_dataset(params), split, slot)
    return Instance(
        instance_id,
        [c.text for c in chunks],
        questions,
        {
            "source": family,
            "label_space": params["label_space"],
            "labels": data.label_map(),
            "split": split,
            "slot": slot,
            "context_examples": sum(len(c.examples) for c in chunks),
            "labels_added_to_chunk_0": added,
            "question_pool": len(items),
        },
    )


# ---------------------------------------------------------------------------------------------- ICL


def balanced_shots(examples: Sequence[Example], shots: int, rng: random.Random) -> list[Example]:
    """`shots` examples round-robin over the labels (a label with few examples cycles them), shuffled."""
    by_label: dict[int, list[Example]] = {}
    for ex in examples:
        by_label.setdefault(ex.label, []).append(ex)
    for label in sorted(by_label):
        rng.shuffle(by_label[label])
    out: list[Example] = []
    round_ = 0
    while len(out) < shots:
        for label in sorted(by_label):
            if len(out) == shots:
                break
            pool = by_label[label]
            out.append(pool[round_ % len(pool)])
        round_ += 1
    rng.shuffle(out)
    return out


def build_icl_raw(ctx: BuildContext) -> dict[str, list[Instance]]:
    """MemoryAgentBench ICL from the source's release files: `shots` label-balanced examples, 100 questions.

    Examples are packed whole into chunks of at most the chunk size (MemoryAgentBench packs by sentence,
    which can cut an example from its label). Called by `tasks.sources.mab:build` for origin raw.
    """
    params = ctx.params
    dataset = params["dataset"]
    data = load_labelled(ctx, dataset)
    family = FAMILY[dataset]
    pools = partition_pools(data.train, family)
    note_pools(ctx, family, pools)
    if data.test:
        asked_from, question_pool = f"test data ({data.test_file})", data.test
    else:
        asked_from, question_pool = f"icl-questions pool of {data.train_file}", pools["icl-questions"]
    ctx.notes.append(f"{dataset} questions drawn from the {asked_from}")
    asked = sample_items(question_items(question_pool), params["questions"], ctx.rng("questions"))
    if family in TTL_FAMILIES:
        context = pools["icl-context"]
    elif data.test:
        context = data.train
    else:
        context = [ex for name, pool in pools.items() if name != "icl-questions" for ex in pool]
    asked_keys = {key for key, _, _ in asked}  # a test sentence that also occurs in train: not in the context
    context = [ex for ex in context if ex.key not in asked_keys]
    if not context or not asked:
        raise BuildError(f"{ctx.spec.name}: no context examples or no questions left in the {dataset} data")
    shots = balanced_shots(context, params["shots"], ctx.rng("shots"))
    chunks = pack_whole(
        [ex.line for ex in shots], ctx.counter, ctx.chunk_size, wrap=example_wrap(ctx, "icl"), sep=EXAMPLE_SEP
    )
    questions = make_questions(family, asked)
    instance_id = ctx.instance_id(family, dataset, params["shots"])
    instance = Instance(
        instance_id,
        chunks,
        questions,
        {
            "source": ctx.source.id,
            "dataset": dataset,
            "labels": data.label_map(),
            "shots": params["shots"],
            "questions_from": asked_from,
            "context_pool": len(context),
            "labels_in_context": len({ex.label for ex in shots}),
        },
    )
    return {"test": [instance]}
