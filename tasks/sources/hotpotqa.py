"""HotpotQA: the supporting articles of consecutive questions, packed into random-size dialogue chunks.

Origins: the hub (`hotpotqa/hotpot_qa`, config fullwiki, train), release files under `DIR/hotpotqa/`
(the original record layout as a JSON array or JSON lines, or Hugging Face-style rows as a JSON array),
and Mem-alpha's processed release.

Each article is `Title: {title}` plus its sentences, taken from the question's own context paragraphs.
Questions are read in order and their supporting articles accumulate until an instance holds
`instance_tokens / mean article tokens` articles. An article belongs to one instance only: a later
question that needs an article an earlier instance already holds is dropped, which keeps train and
validation passage-disjoint. Articles are packed whole, as the original packed them (it cut an article
over its chunk's target to fit; here one is cut by sentences, and only when it alone exceeds the chunk
size), and an article's title line always stays with its text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..build import BuildContext
from ..errors import RawFormatError
from ..schema import Instance
from ..splits import train_validation
from .common import field as get_field
from .common import read_json_records
from .qa import QA, dialogue_chunks, select_questions

# Answers that are kept although they never occur in the text (comparison questions).
YES_NO = frozenset({"yes", "no"})


@dataclass
class Record:
    qa: QA
    supporting: list[str]  # titles of the supporting facts, in first-mention order
    articles: dict[str, str]  # supporting title -> article text, from the record's own context


@dataclass
class Group:
    articles: dict[str, str] = field(default_factory=dict)
    qas: list[QA] = field(default_factory=list)


def derived_question_id(question: str) -> str:
    """The id of a record that has none (HF-style copies without `id`): a hash of the question text."""
    return "q-" + hashlib.sha256(question.strip().encode()).hexdigest()[:24]


def article(title: str, sentences: list[str]) -> str:
    """One article as the agent reads it; the sentences keep their own leading spaces."""
    return f"Title: {title}\n{''.join(sentences).strip()}"


def _text(record: Mapping[str, Any], key: str, path: Path | str, where: str) -> str:
    value = get_field(record, key, str, path, where).strip()
    if not value:
        raise RawFormatError(path, where, "empty", field=key)
    return value


def _sentences(value: Any, path: Path | str, where: str, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise RawFormatError(path, where, "expected a list of sentence strings", field=name)
    return value


def _original_layout(
    record: Mapping[str, Any], path: Path | str, where: str
) -> tuple[str, list[str], list[tuple[str, list[str]]]]:
    """`_id`, `supporting_facts: [[title, sent_idx]]`, `context: [[title, [sentences]]]`."""
    qid = _text(record, "_id", path, where)
    titles = []
    for i, fact in enumerate(get_field(record, "supporting_facts", list, path, where)):
        if not (isinstance(fact, list) and len(fact) == 2 and isinstance(fact[0], str)):
            raise RawFormatError(path, where, "expected [title, sentence index]", field=f"supporting_facts[{i}]")
        titles.append(fact[0])
    paragraphs = []
    for i, para in enumerate(get_field(record, "context", list, path, where)):
        if not (isinstance(para, list) and len(para) == 2 and isinstance(para[0], str)):
            raise RawFormatError(path, where, "expected [title, [sentences]]", field=f"context[{i}]")
        paragraphs.append((para[0], _sentences(para[1], path, where, f"context[{i}][1]")))
    return qid, titles, paragraphs


def _hf_layout(
    record: Mapping[str, Any], path: Path | str, where: str
) -> tuple[str, list[str], list[tuple[str, list[str]]]]:
    """`id` (optional), `supporting_facts: {title, sent_id}`, `context: {title, sentences}` (lists)."""
    qid = (
        _text(record, "id", path, where)
        if record.get("id") is not None
        else derived_question_id(_text(record, "question", path, where))
    )
    facts = get_field(record, "supporting_facts", dict, path, where)
    titles = get_field(facts, "title", list, path, f"{where}, supporting_facts")
    context = get_field(record, "context", dict, path, where)
    ctx_titles = get_field(context, "title", list, path, f"{where}, context")
    sentences = get_field(context, "sentences", list, path, f"{where}, context")
    if not all(isinstance(t, str) for t in titles + ctx_titles):
        raise RawFormatError(path, where, "titles must be strings", field="supporting_facts.title / context.title")
    if len(ctx_titles) != len(sentences):
        raise RawFormatError(
            path, where, f"{len(ctx_titles)} titles but {len(sentences)} sentence lists", field="context"
        )
    paragraphs = [
        (t, _sentences(s, path, where, f"context.sentences[{i}]"))
        for i, (t, s) in enumerate(zip(ctx_titles, sentences, strict=True))
    ]
    return qid, titles, paragraphs


def parse_record(record: Any, path: Path | str, where: str) -> Record:
    """One question in either layout; the layout is told by the type of `context`."""
    if not isinstance(record, Mapping):
        raise RawFormatError(path, where, f"expected a JSON object, found {type(record).__name__}")
    layout = _hf_layout if isinstance(record.get("context"), Mapping) else _original_layout
    qid, titles, paragraphs = layout(record, path, where)
    supporting = list(dict.fromkeys(titles))
    articles: dict[str, str] = {}
    for title, sentences in paragraphs:  # only the supporting ones are kept: the rest is never read
        if title in supporting and title not in articles:
            articles[title] = article(title, sentences)
    kind = record.get("type")
    qa = QA(
        qid,
        _text(record, "question", path, where),
        [_text(record, "answer", path, where)],
        kind if isinstance(kind, str) else None,
    )
    return Record(qa, supporting, articles)


def read_records(ctx: BuildContext) -> Iterator[Record]:
    if ctx.origin == "raw":
        for path in ctx.raw_files():
            for where, record in read_json_records(path):
                yield parse_record(record, path, where)
    else:
        label = f"{ctx.source.id} ({ctx.source.config}, train)"
        for i, row in enumerate(ctx.progress(ctx.hub_dataset("train"), "reading")):
            yield parse_record(row, label, f"row {i}")


def usable_records(ctx: BuildContext, records: Iterator[Record]) -> list[Record]:
    """Records whose supporting articles are all in their own context, each question once."""
    usable: list[Record] = []
    seen: set[str] = set()
    total = missing = repeated = 0
    for rec in records:
        total += 1
        if not rec.supporting or any(t not in rec.articles for t in rec.supporting):
            missing += 1
            continue
        keys = (f"id:{rec.qa.question_id}", "text:" + " ".join(rec.qa.question.split()))
        if any(k in seen for k in keys):
            repeated += 1
            continue
        seen.update(keys)
        usable.append(rec)
    ctx.notes.append(
        f"{missing} of {total} questions skipped: a supporting article is missing from the "
        "question's own context (common in fullwiki)"
    )
    if repeated:
        ctx.notes.append(f"{repeated} repeated questions skipped (same id or same question text)")
    return usable


def group_records(records: list[Record], per_instance: int) -> tuple[list[Group], int]:
    """Consecutive questions whose articles fill instances of `per_instance` articles; also the number
    of questions dropped because an earlier instance owns one of their articles."""
    groups: list[Group] = [Group()]
    owner: dict[str, int] = {}
    dropped = 0
    for rec in records:
        current = len(groups) - 1
        if any(owner.get(t, current) != current for t in rec.supporting):
            dropped += 1
            continue
        group = groups[-1]
        for title in rec.supporting:
            if title not in group.articles:
                group.articles[title] = rec.articles[title]
                owner[title] = current
        group.qas.append(rec.qa)
        if len(group.articles) >= per_instance:
            groups.append(Group())
    return [g for g in groups if g.qas], dropped


def articles_per_instance(ctx: BuildContext, records: list[Record]) -> int:
    """k = instance_tokens / mean tokens of the distinct supporting articles (the original's rule)."""
    texts: dict[str, str] = {}
    for rec in records:
        for title in rec.supporting:
            texts.setdefault(title, rec.articles[title])
    counts = ctx.count_many(list(texts.values()))
    mean = sum(counts) / max(1, len(counts))
    k = max(1, int(ctx.params["instance_tokens"] / mean)) if counts else 1
    ctx.notes.append(
        f"{k} articles per instance ({ctx.params['instance_tokens']} tokens / {mean:.1f} "
        f"tokens per article over {len(counts)} articles)"
    )
    return k


def build(ctx: BuildContext) -> dict[str, list[Instance]]:
    if ctx.origin == "release":
        from .memalpha_release import build_memalpha_release

        return build_memalpha_release(ctx)
    params = ctx.params
    records = usable_records(ctx, read_records(ctx))
    groups, dropped = group_records(records, articles_per_instance(ctx, records))
    if dropped:
        ctx.notes.append(f"{dropped} questions dropped: a supporting article already belongs to an earlier instance")
    instances = []
    for group in ctx.progress(groups, "instances"):
        if len(group.qas) < params["min_questions_before"]:
            continue
        instance_id = ctx.instance_id(group.qas[0].question_id)
        chunks = dialogue_chunks(
            ctx,
            list(group.articles.values()),
            salt=instance_id,
            min_tokens=params["min_chunk_tokens"],
            whole=True,
            keep_first_line=True,
        )
        if len(chunks) > params["max_chunks"]:
            continue
        texts = [c.text for c in chunks]
        questions = select_questions(
            ctx,
            instance_id,
            group.qas,
            texts,
            max_answer_tokens=params["max_answer_tokens"],
            cap=params["question_cap"],
            non_extractive=YES_NO,
        )
        if not params["min_questions"] <= len(questions) <= params["max_questions"]:
            continue
        instances.append(
            Instance(
                instance_id,
                texts,
                questions,
                {
                    "source": "hotpotqa",
                    "titles": list(group.articles),
                    "articles": len(group.articles),
                    "questions_before_selection": len(group.qas),
                },
            )
        )
    return train_validation(instances, seed=ctx.seed)
