"""MemoryAgentBench (`ai-hyz/MemoryAgentBench`): one instance per row of a sub-dataset.

Each row's whole context is chunked (no truncation), as Mem-alpha processed the benchmark, with the
wrapper the task names in its `wrapper` param: "documents" (RULER), "sessions" (LongMemEval-S*),
"examples" (ICL), "book" (InfBench-Sum, EventQA, DetectiveQA), "dialogues" (Redial), "facts"
(FactConsolidation). Other origins: the ICL sets from their own raw files (`classification.py`), and
Mem-alpha's processed release (`memalpha_release.py`).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .. import wrappers
from ..build import BuildContext
from ..chunking import chunk_text
from ..errors import BuildError, RawFormatError
from ..llm import extract_keywords
from ..schema import Instance, Question
from .common import pack_whole, read_json, unique
from .longmemeval import FLUSH_SHARE, Session, read_turns, session_chunks
from .memalpha_release import build_mab_release
from .qa import dialogue_chunks

# Our competency -> the hub split holding its sub-datasets.
HUB_SPLITS = {
    "AR": "Accurate_Retrieval",
    "TTL": "Test_Time_Learning",
    "LRU": "Long_Range_Understanding",
    "CR": "Conflict_Resolution",
}
COLUMNS = ("context", "questions", "answers", "metadata")
SUMMARY_QUESTION = "Summarize the content of the book I read from {first} to {last}."
_LABEL_LINE = re.compile(r"^\s*label\s*:\s*(\S(?:.*\S)?)\s*$", re.IGNORECASE)


@dataclass
class Row:
    location: str  # the hub file, for error messages
    index: int  # row number in the split
    context: str
    questions: list[str]
    answers: list[list[str]]
    metadata: dict[str, Any]

    @property
    def where(self) -> str:
        return f"row {self.index}"


def build(ctx: BuildContext) -> dict[str, list[Instance]]:
    if ctx.origin == "release":
        return build_mab_release(ctx)
    if ctx.origin == "raw":  # the ICL sets, from the classification datasets' own files
        from .classification import build_icl_raw

        return build_icl_raw(ctx)
    split, rows = read_rows(ctx)
    instances = [row_instance(ctx, split, row) for row in ctx.progress(rows, "instances")]
    if is_summary(ctx):
        keyword_golds(ctx, instances)
    if str(ctx.params["mab_source"]).startswith("recsys"):
        recsys_titles(ctx, instances)
    return {"test": instances}


def is_summary(ctx: BuildContext) -> bool:
    return str(ctx.params["mab_source"]).startswith("infbench_sum")


# ---------------------------------------------------------------------- reading


def flatten(value: Any) -> list[str]:
    """Every gold string in a (possibly nested) answer list, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in flatten(v)]
    return []


def read_rows(ctx: BuildContext) -> tuple[str, list[Row]]:
    """The hub split of the task's competency, and its rows whose `metadata.source` is the task's."""
    split = HUB_SPLITS[ctx.spec.competency]
    location = f"{ctx.source.id}/data/{split}-00000-of-00001.parquet"
    ds = ctx.hub_dataset(split, data_files={split: f"data/{split}-*.parquet"})
    missing = [c for c in COLUMNS if c not in ds.column_names]
    if missing:
        raise RawFormatError(location, None, f"missing column(s) {', '.join(missing)}")
    wanted = ctx.params["mab_source"]
    rows: list[Row] = []
    found: set[str] = set()
    for index, raw in enumerate(ctx.progress(ds, "reading", total=ds.num_rows)):
        metadata = raw["metadata"]
        if not isinstance(metadata, dict):
            raise RawFormatError(location, f"row {index}", "expected a struct", field="metadata")
        found.add(str(metadata.get("source")))
        if metadata.get("source") != wanted:
            continue
        rows.append(parse_row(location, index, raw))
        if ctx.limit and len(rows) >= ctx.limit:
            break
    if not rows:
        raise BuildError(f"{location}: no row has metadata.source == {wanted!r} (found: {sorted(found)})")
    return split, rows


def parse_row(location: str, index: int, raw: dict[str, Any]) -> Row:
    where = f"row {index}"
    context = raw["context"]
    if not isinstance(context, str) or not context.strip():
        raise RawFormatError(location, where, "must be a non-empty string", field="context")
    questions = raw["questions"]
    if not isinstance(questions, list) or not questions:
        raise RawFormatError(location, where, "must be a non-empty list", field="questions")
    for i, q in enumerate(questions):
        if not isinstance(q, str) or not q.strip():
            raise RawFormatError(location, where, "must be a non-empty string", field=f"questions[{i}]")
    answers = raw["answers"]
    if not isinstance(answers, list) or len(answers) != len(questions):
        size = len(answers) if isinstance(answers, list) else type(answers).__name__
        raise RawFormatError(
            location,
            where,
            f"expected one gold list per question ({len(questions)}), found {size}",
            field="answers",
        )
    golds = [unique(flatten(a)) for a in answers]
    for i, gold in enumerate(golds):
        if not gold:
            raise RawFormatError(location, where, "no non-empty gold answer", field=f"answers[{i}]")
    return Row(location, index, context, [q.strip() for q in questions], golds, raw["metadata"])


def _aligned(row: Row, key: str) -> list[Any] | None:
    """A per-question metadata list (ids, types, dates), when the row has one of the right length."""
    values = row.metadata.get(key)
    if isinstance(values, list) and len(values) == len(row.questions):
        return values
    return None


def question_ids(row: Row, instance_id: str) -> list[str]:
    """Source ids (`qa_pair_ids`, else LongMemEval's `question_ids`), made unique within the row."""
    for key in ("qa_pair_ids", "question_ids"):
        ids = _aligned(row, key)
        if ids is not None and all(isinstance(i, str) and i for i in ids):
            seen: Counter[str] = Counter()
            out = []
            for qid in ids:
                seen[qid] += 1
                out.append(qid if seen[qid] == 1 else f"{qid}#{seen[qid]}")
            return out
    return [f"{instance_id}-q{i}" for i in range(len(row.questions))]


# ---------------------------------------------------------------------- chunking, one way per wrapper


def parse_examples(context: str) -> tuple[list[tuple[str, str]], str]:
    """(sentence, label) pairs of an ICL context (text lines closed by a `label: N` line), and any
    text after the last label, so that nothing is lost."""
    pairs: list[tuple[str, str]] = []
    pending: list[str] = []
    for line in context.splitlines():
        match = _LABEL_LINE.match(line)
        if match and any(p.strip() for p in pending):
            pairs.append((" ".join(p.strip() for p in pending if p.strip()), match.group(1)))
            pending = []
        else:
            pending.append(line)
    return pairs, "\n".join(pending).strip()


def example_chunks(ctx: BuildContext, row: Row, salt: str) -> list[str]:
    pairs, rest = parse_examples(row.context)
    if not pairs:
        raise RawFormatError(row.location, row.where, "no 'label: N' lines", field="context")
    units = [wrappers.labelled(sentence, label) for sentence, label in pairs] + ([rest] if rest else [])

    def wrap(i: int, body: str) -> str:
        return wrappers.examples(body, wrappers.date_for(i), ctx.rng(salt, "wrap", i))

    return pack_whole(units, ctx.counter, ctx.chunk_size, wrap=wrap)


def fact_chunks(ctx: BuildContext, row: Row, salt: str) -> list[str]:
    """FactConsolidation: one numbered fact per line, packed whole (a sentence packer could part a fact
    from its serial number, which says which of two conflicting facts is newer)."""
    lines = [line.strip() for line in row.context.splitlines() if line.strip()]

    def wrap(i: int, body: str) -> str:
        return wrappers.dialogue(body, wrappers.date_for(i), ctx.rng(salt, "wrap", i))

    return pack_whole(lines, ctx.counter, ctx.chunk_size, wrap=wrap, sep="\n")


def reading_chunks(ctx: BuildContext, text: str, salt: str) -> tuple[list[str], list[str]]:
    """A book as dated reading events, 1-3 random days apart (as Mem-alpha's BookSum); the chunks and
    their dates."""
    stream = wrappers.date_stream(ctx.rng(salt, "dates"), min_days=1, max_days=3)
    stamps: list[str] = []

    def wrap(i: int, body: str) -> str:
        while len(stamps) <= i:
            stamps.append(next(stream))
        return wrappers.reading(body, stamps[i])

    chunks = chunk_text(text, ctx.counter, ctx.chunk_size, wrap=wrap)
    return [c.text for c in chunks], stamps[: len(chunks)]


def history_chunks(ctx: BuildContext, row: Row) -> list[str]:
    """LongMemEval-S*: the row's haystack sessions, chunked as lme_train's; the context text when the
    row has no sessions."""
    raw_sessions = row.metadata.get("haystack_sessions")
    if not raw_sessions:
        ctx.notes.append(
            f"{row.location}, {row.where}: no metadata.haystack_sessions; the context text is "
            "chunked as one chat transcript"
        )
        header = wrappers.chat_session([], None)
        return [
            c.text
            for c in chunk_text(row.context, ctx.counter, ctx.chunk_size, wrap=lambda _i, body: f"{header}\n{body}")
        ]
    dates = row.metadata.get("haystack_dates")
    if not isinstance(dates, list) or len(dates) != len(raw_sessions):
        dates = [None] * len(raw_sessions)
    sessions = [
        Session(
            date if isinstance(date, str) else None,
            read_turns(row.location, f"{row.where}, metadata.haystack_sessions[{k}]", turns),
        )
        for k, (date, turns) in enumerate(zip(dates, raw_sessions, strict=True))
    ]
    flush = ctx.params.get("flush_tokens", round(ctx.chunk_size * FLUSH_SHARE))
    return session_chunks(sessions, ctx.counter, ctx.chunk_size, flush)


def row_chunks(ctx: BuildContext, row: Row, salt: str) -> list[str]:
    kind = ctx.params["wrapper"]
    if kind == "sessions":
        return history_chunks(ctx, row)
    if kind == "examples":
        return example_chunks(ctx, row, salt)
    if kind == "book":
        return reading_chunks(ctx, row.context, salt)[0]
    if kind == "facts":
        return fact_chunks(ctx, row, salt)
    if kind in ("documents", "dialogues"):  # text shared by the user in dated conversations
        return [c.text for c in dialogue_chunks(ctx, [row.context], salt=salt)]
    raise BuildError(f"{ctx.spec.name}: unknown wrapper {kind!r} in the task params")


# ---------------------------------------------------------------------- instances


def row_instance(ctx: BuildContext, split: str, row: Row) -> Instance:
    source = ctx.params["mab_source"]
    first = (_aligned(row, "qa_pair_ids") or _aligned(row, "question_ids") or row.questions)[0]
    instance_id = ctx.instance_id(source, hashlib.sha256(row.context.encode()).hexdigest()[:16], first)
    ids = question_ids(row, instance_id)
    types = _aligned(row, "question_types") or [None] * len(ids)
    dates = _aligned(row, "question_dates") or [None] * len(ids)
    texts = list(row.questions)
    metadata: dict[str, Any] = {"source": source, "hub_split": split, "row": row.index}
    if is_summary(ctx):
        chunks, stamps = reading_chunks(ctx, row.context, instance_id)
        texts = [SUMMARY_QUESTION.format(first=stamps[0][:10], last=stamps[-1][:10])] * len(texts)
        metadata["original_questions"] = list(row.questions)
        metadata["reference_summaries"] = dict(zip(ids, row.answers, strict=True))
        if row.metadata.get("keypoints"):
            metadata["keypoints"] = row.metadata["keypoints"]
    else:
        chunks = row_chunks(ctx, row, instance_id)
    if ctx.params["wrapper"] == "examples":
        texts = [wrappers.label_question(t) for t in texts]
    questions = [
        Question(
            qid,
            text,
            list(gold),
            qtype if isinstance(qtype, str) else None,
            qdate if isinstance(qdate, str) else None,
        )
        for qid, text, gold, qtype, qdate in zip(ids, texts, row.answers, types, dates, strict=True)
    ]
    return Instance(instance_id, chunks, questions, metadata)


def keyword_golds(ctx: BuildContext, instances: list[Instance]) -> None:
    """InfBench-Sum: replace each reference summary by its keyword list (the gold of keyword recall)."""
    llm = ctx.llm_step("keyword_extraction", "turn each reference summary into the keywords recall counts")
    if llm is None:
        ctx.notes.append(
            "infbench_sum: no LLM configured, so each gold is the whole reference summary, not "
            "its keyword list; rebuild with an LLM for keyword golds"
        )
        return
    questions = [q for inst in instances for q in inst.questions]
    keywords = extract_keywords(llm, ["\n\n".join(q.answers) for q in questions])
    empty = 0
    for question, words in zip(questions, keywords, strict=True):
        if words:
            question.answers = words
        else:
            empty += 1
    if empty:
        ctx.notes.append(f"infbench_sum: no keywords came back for {empty} summaries; they keep the summary")


def movie_title(entity: str) -> str:
    """A readable title from an entity2id.json key (a DBpedia URI like <http://dbpedia.org/resource/Heat_(1995_film)>
    or a plain name)."""
    name = entity.strip().strip("<>").rsplit("/", 1)[-1]
    return re.sub(r"\s+", " ", unquote(name).replace("_", " ")).strip()


def recsys_titles(ctx: BuildContext, instances: list[Instance]) -> None:
    """Redial golds are movie ids: map them to titles through the repo's entity2id.json, as MemoryAgentBench
    did, so `recall_at_5` compares titles with the reader's recommendations."""
    path = ctx.hub_file("entity2id.json")
    table = read_json(path)
    if not isinstance(table, dict):
        raise RawFormatError(path, "top level", "expected an object mapping entities to ids")
    titles = {str(v): movie_title(k) for k, v in table.items()}
    unknown = 0
    for question in (q for inst in instances for q in inst.questions):
        mapped = [titles.get(a.strip(), a) for a in question.answers]
        unknown += sum(a.strip() not in titles for a in question.answers)
        question.answers = list(dict.fromkeys(mapped))
    if unknown:
        ctx.notes.append(f"recsys: {unknown} gold ids not in entity2id.json were kept as they are")
