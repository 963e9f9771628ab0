"""Mem-alpha's processed releases: `YuWangX/Memalpha` and `YuWangX/Memalpha-Memoryagentbench`.

Both are parquet files with one row per instance: `chunks` (a JSON list of already wrapped chunks)
and `questions_and_answers` (a JSON list of {"question", "answer": str | list[str]}) are JSON strings;
`data_source` names the source. The chunks are used exactly as released.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..build import BuildContext
from ..errors import RawFormatError
from ..schema import Instance, Question
from .common import unique, unreadable

# Our task name -> the release's `data_source` value.
DATA_SOURCES = {
    "squad": "squad",
    "hotpotqa": "hotpotqa",
    "perltqa": "perltqa",
    "lme_train": "lme_train",
    "booksum": "booksum",
    "pubmed_rct": "pubmed-rct",
    "ttl_trec_coarse": "icl_trec_coarse_6600shot_balance",
    "ttl_nlu": "icl_nlu_8296shot_balance",
}
# Our split -> the release file holding it (the release's test file is Mem-alpha's validation data).
RELEASE_FILES = {"train": "train.parquet", "validation": "test.parquet", "test": "test.parquet"}
COLUMNS = ("instance_id", "chunks", "questions_and_answers", "data_source")
# Keyword golds the release stores as one string: PerLTQA's are ';'-separated, the others ','.
KEYWORD_SEPARATORS = {"perltqa": ";"}


def build_memalpha_release(ctx: BuildContext) -> dict[str, list[Instance]]:
    """A Mem-alpha source from `YuWangX/Memalpha`: train.parquet -> train, test.parquet -> validation."""
    return _build(ctx, DATA_SOURCES[ctx.spec.name])


def build_mab_release(ctx: BuildContext) -> dict[str, list[Instance]]:
    """A MemoryAgentBench set from `YuWangX/Memalpha-Memoryagentbench` (test.parquet -> test)."""
    return _build(ctx, ctx.params["mab_source"])


def _build(ctx: BuildContext, data_source: str) -> dict[str, list[Instance]]:
    ctx.enforce_chunk_limit = False
    ctx.notes.append(
        f"chunks used as released ({ctx.source.id}, data_source {data_source!r}): they were chunked with "
        "another tokenizer, so the chunk-size limit is not enforced on them"
    )
    if ctx.spec.name.startswith("ttl_"):
        ctx.notes.append(
            f"contamination: the release's {data_source!r} rows ask MemoryAgentBench's own test questions "
            "(the original drew them from that test set); do not score MemoryAgentBench ICL sets with a "
            "model trained on them"
        )
    out: dict[str, list[Instance]] = {}
    for split in ctx.spec.splits:
        path = ctx.hub_file(RELEASE_FILES[split])
        out[split] = [
            _instance(ctx, path, index, row, data_source)
            for index, row in ctx.progress(_rows(path, data_source), f"{split} rows")
        ]
    return out


def _rows(path: Path, data_source: str) -> list[tuple[int, dict[str, Any]]]:
    """(row index in the file, row) for the rows of one data source."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged or foreign file
        raise RawFormatError(path, None, f"not a readable parquet file ({exc})") from exc
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise RawFormatError(path, None, f"missing column(s) {', '.join(missing)}")
    indices = [i for i, v in enumerate(table.column("data_source").to_pylist()) if v == data_source]
    return list(zip(indices, table.take(pa.array(indices, type=pa.int64())).to_pylist(), strict=True))


def _json_cell(path: Path, index: int, row: dict[str, Any], column: str, kind: type) -> Any:
    value = row.get(column)
    if not isinstance(value, str):
        raise RawFormatError(
            path, f"row {index}", f"expected a JSON string, found {type(value).__name__}", field=column
        )
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise RawFormatError(path, f"row {index}", f"not valid JSON ({exc.msg})", field=column) from exc
    except (RecursionError, ValueError) as exc:
        raise RawFormatError(path, f"row {index}", f"not readable JSON ({unreadable(exc)})", field=column) from None
    if not isinstance(parsed, kind):
        message = f"expected a JSON {kind.__name__}, found {type(parsed).__name__}"
        raise RawFormatError(path, f"row {index}", message, field=column)
    return parsed


def parse_answer(answer: Any, separator: str | None) -> list[str]:
    """The gold list: a list as is; a string whole, or split at `separator` (keyword golds)."""
    if isinstance(answer, list):
        return unique([str(a) for a in answer if isinstance(a, (str, int, float))])
    if isinstance(answer, (int, float)):
        return [str(answer)]
    if isinstance(answer, str):
        return unique(answer.split(separator)) if separator else unique([answer])
    return []


def _instance(ctx: BuildContext, path: Path, index: int, row: dict[str, Any], data_source: str) -> Instance:
    where = f"row {index}"
    chunks = _json_cell(path, index, row, "chunks", list)
    if not chunks:
        raise RawFormatError(path, where, "empty list", field="chunks")
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, str) or not chunk.strip():
            raise RawFormatError(path, where, f"chunk {i} is not a non-empty string", field="chunks")
    qas = _json_cell(path, index, row, "questions_and_answers", list)
    release_meta = _json_cell(path, index, row, "metadata", dict) if row.get("metadata") else {}
    original_id = row["instance_id"]
    first_chunk = hashlib.sha256(chunks[0].encode()).hexdigest()[:16]
    instance_id = ctx.instance_id(data_source, original_id, first_chunk)
    keyword_tasks = ctx.spec.metric == "keyword_recall"
    separator = KEYWORD_SEPARATORS.get(data_source, ",") if keyword_tasks else None
    questions = []
    for j, qa in enumerate(qas):
        qwhere = f"questions_and_answers[{j}]"
        question = qa.get("question") if isinstance(qa, dict) else None
        if not isinstance(question, str) or not question.strip():
            raise RawFormatError(path, where, "missing or empty question", field=f"{qwhere}.question")
        answers = parse_answer(qa.get("answer"), separator)
        if not answers:
            raise RawFormatError(path, where, f"no usable answer in {qa.get('answer')!r}", field=f"{qwhere}.answer")
        questions.append(Question(f"{instance_id}-q{j}", question.strip(), answers))
    metadata: dict[str, Any] = {
        "source": data_source,
        "release": ctx.source.id,
        "release_file": path.name,
        "release_instance_id": original_id,
        "release_metadata": release_meta,
    }
    if ctx.spec.name.startswith("ttl_"):
        metadata["questions_from"] = "MemoryAgentBench test set"
    return Instance(instance_id, chunks, questions, metadata)
