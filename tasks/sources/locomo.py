"""LoCoMo: ten very long two-person conversations, one instance each, with the questions on them.

Origin: the release file `DIR/locomo/locomo10.json` (snap-research/LoCoMo). Sessions are rendered in
numeric order with their date and the speakers' names (a shared photo as its caption), then packed
whole into chunks; a session longer than a chunk is split between turns (a turn longer than a chunk by
sentences), each part keeping the session's header. Category 5 (adversarial, no answer) is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import wrappers
from ..build import BuildContext
from ..errors import RawFormatError
from ..schema import Instance, Question
from .common import field as get_field
from .common import pack_whole, read_json, split_to_fit

# The numbering of `category` in locomo10.json, as LoCoMo's own evaluation code uses it
# (task_eval/evaluation.py); it does not follow the order the paper lists the types in.
CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
ADVERSARIAL = 5
_SESSION_KEY = re.compile(r"session_(\d+)")
# room kept free for the token-count drift of a wrapped text against its parts under BPE
_MARGIN = 8


@dataclass
class Session:
    number: int
    stamp: str
    turns: list[str]  # rendered `<Speaker> text` lines


@dataclass
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    sessions: list[Session]
    questions: list[Question] = field(default_factory=list)
    evidence: dict[str, list[str]] = field(default_factory=dict)
    adversarial: int = 0
    unanswered: int = 0


def read_turn(turn: Any, path: Path, where: str) -> str:
    speaker = get_field(turn, "speaker", str, path, where)
    text = get_field(turn, "text", str, path, where).strip()
    get_field(turn, "dia_id", str, path, where)
    caption = turn.get("blip_caption")
    if caption is not None and not isinstance(caption, str):
        found = type(caption).__name__
        raise RawFormatError(path, where, f"expected str, found {found}", field="blip_caption")
    if caption and caption.strip():
        text = f"{text} {wrappers.shared_photo(caption.strip())}".strip()
    return wrappers.chat_turn(speaker, text)


def read_sessions(conversation: dict[str, Any], path: Path, where: str) -> list[Session]:
    """The non-empty sessions in numeric order; each must have its `session_N_date_time`."""
    numbers = sorted(int(m.group(1)) for key in conversation if (m := _SESSION_KEY.fullmatch(key)))
    sessions = []
    for n in numbers:
        turns = get_field(conversation, f"session_{n}", list, path, where)
        if not turns:
            continue
        stamp = get_field(conversation, f"session_{n}_date_time", str, path, where)
        lines = [read_turn(t, path, f"{where}.session_{n}[{i}]") for i, t in enumerate(turns)]
        sessions.append(Session(n, stamp.strip(), lines))
    return sessions


def read_answer(qa: dict[str, Any], path: Path, where: str) -> str:
    answer = qa["answer"]
    if isinstance(answer, bool) or not isinstance(answer, str | int | float) or not str(answer).strip():
        raise RawFormatError(path, where, "expected a non-empty string or number", field="answer")
    return str(answer).strip()


def add_questions(conv: Conversation, qas: list[Any], path: Path, where: str) -> None:
    """Questions of categories 1-4 that have an `answer`; adversarial and unanswered ones are counted."""
    for j, qa in enumerate(qas):
        qwhere = f"{where}.qa[{j}]"
        question = get_field(qa, "question", str, path, qwhere).strip()
        category = get_field(qa, "category", int, path, qwhere)
        if category == ADVERSARIAL:
            conv.adversarial += 1
            continue
        if category not in CATEGORY_NAMES:
            raise RawFormatError(path, qwhere, f"unknown category {category} (expected 1-5)", field="category")
        if "answer" not in qa:
            conv.unanswered += 1
            continue
        qid = f"{conv.sample_id}-q{j}"
        answers = [read_answer(qa, path, qwhere)]
        conv.questions.append(Question(qid, question, answers, CATEGORY_NAMES[category]))
        evidence = qa.get("evidence") or []
        conv.evidence[qid] = [str(e) for e in evidence] if isinstance(evidence, list) else [str(evidence)]


def read_locomo(path: Path) -> list[Conversation]:
    data = read_json(path)
    if not isinstance(data, list):
        raise RawFormatError(path, "top level", f"expected a JSON array, found {type(data).__name__}")
    conversations = []
    for i, record in enumerate(data):
        where = f"record {i}"
        sample_id = get_field(record, "sample_id", str, path, where)
        where = f"record {i} ({sample_id})"
        conversation = get_field(record, "conversation", dict, path, where)
        cwhere = f"{where}.conversation"
        speakers = (
            get_field(conversation, "speaker_a", str, path, cwhere),
            get_field(conversation, "speaker_b", str, path, cwhere),
        )
        conv = Conversation(sample_id, speakers, read_sessions(conversation, path, cwhere))
        add_questions(conv, get_field(record, "qa", list, path, where), path, where)
        conversations.append(conv)
    return conversations


def conversation_chunks(ctx: BuildContext, conv: Conversation) -> list[str]:
    """Sessions packed whole into chunks; an over-long session goes in parts, each with its header."""
    blocks: list[str] = []
    for session in conv.sessions:

        def wrap(i: int, body: str, s: Session = session) -> str:
            return wrappers.conversation_session(conv.speakers, s.number, s.stamp, body, continued=i > 0)

        room = ctx.chunk_size - ctx.counter.count(wrap(1, "")) - _MARGIN
        pieces = [p for turn in session.turns for p in split_to_fit(turn, ctx.counter, room)]
        blocks.extend(pack_whole(pieces, ctx.counter, ctx.chunk_size, wrap=wrap, sep="\n"))
    return pack_whole(blocks, ctx.counter, ctx.chunk_size, sep="\n\n")


def build(ctx: BuildContext) -> dict[str, list[Instance]]:
    (path,) = ctx.raw_files()
    conversations = read_locomo(path)
    instances = []
    for conv in ctx.progress(conversations, "conversations"):
        if not conv.sessions or not conv.questions:
            ctx.notes.append(f"{conv.sample_id}: left out (no sessions or no answerable questions)")
            continue
        metadata = {
            "source": "locomo",
            "sample_id": conv.sample_id,
            "speakers": list(conv.speakers),
            "sessions": len(conv.sessions),
            "adversarial_left_out": conv.adversarial,
            "evidence": conv.evidence,
        }
        chunks = conversation_chunks(ctx, conv)
        instances.append(Instance(ctx.instance_id(conv.sample_id), chunks, conv.questions, metadata))
    adversarial = sum(c.adversarial for c in conversations)
    ctx.notes.append(f"left out {adversarial} adversarial questions (category 5: the answer is not there)")
    unanswered = sum(c.unanswered for c in conversations)
    if unanswered:
        ctx.notes.append(f"left out {unanswered} questions of categories 1-4 without an `answer` field")
    return {"test": instances}
