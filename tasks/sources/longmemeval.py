"""LongMemEval: chat histories of dated sessions, and the `lme_train` task built from the oracle file.

`lme_train` (Mem-alpha App. A.1): non-abstention questions of `longmemeval_oracle.json`, a few per
instance; an instance's history is the union of its questions' evidence sessions, in date order, and
is kept when it holds `min_tokens`..`max_tokens` tokens. Origins: the hub
(`xiaowu0162/longmemeval-cleaned`), the raw file (`DIR/longmemeval/longmemeval_oracle.json`), and
Mem-alpha's processed release.

The session chunking here is shared with MemoryAgentBench's `longmemeval_s*` (`mab.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .. import wrappers
from ..build import BuildContext
from ..errors import RawFormatError
from ..schema import Instance, Question
from ..splits import train_validation
from ..tokenization import TokenCounter
from .common import field as get_field
from .common import pack_whole, read_json, split_to_fit
from .memalpha_release import build_memalpha_release

ORACLE_FILE = "longmemeval_oracle.json"
# The original closes a chunk once it holds 1800 of its 2048 tokens; sources without a
# `flush_tokens` param use the same share of their chunk size.
FLUSH_SHARE = 1800 / 2048
# Every Mem-alpha source's train split is sampled down to 100 instances, as the original does.
TRAIN_CAP = 100
# A few tokens of slack for turns placed under a session header (BPE merges at the join).
_HEADER_SLACK = 4
_DATE = re.compile(r"^\s*(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:\s*\(\w+\))?(?:\s+(\d{1,2}):(\d{2}))?")


@dataclass(frozen=True)
class Session:
    """One chat session: its date stamp (as the source writes it, or None) and its (role, text) turns."""

    date: str | None
    turns: tuple[tuple[str, str], ...]


def session_segments(session: Session, counter: TokenCounter, limit: int) -> list[str]:
    """A session rendered with speaker tags under a dated header, cut into segments of <= `limit`
    tokens between turns; a turn too long for one segment is split by sentences, keeping its tag."""
    header = wrappers.chat_session([], session.date)
    room = limit - counter.count(header) - _HEADER_SLACK
    lines = [
        line
        for role, text in session.turns
        for line in split_to_fit(text.strip(), counter, room, prefix=wrappers.chat_turn(role, ""))
    ]
    if not lines:
        return [header]
    return pack_whole(lines, counter, limit, wrap=lambda _i, body: f"{header}\n{body}", sep="\n")


def session_chunks(sessions: Sequence[Session], counter: TokenCounter, limit: int, flush: int) -> list[str]:
    """Sessions -> segments -> chunks of <= `limit` tokens; a chunk closes once it reaches `flush` tokens."""
    segments = [s for session in sessions for s in session_segments(session, counter, limit)]
    return pack_whole(segments, counter, limit, sep="\n\n", flush=flush)


# ---------------------------------------------------------------------- the oracle file


@dataclass
class Record:
    question_id: str
    question_type: str
    question: str
    answer: str
    question_date: str
    sessions: list[tuple[str, datetime, Session]] = field(default_factory=list)  # (id, when, session)


def parse_date(value: str) -> datetime | None:
    """A LongMemEval stamp such as `2023/05/20 (Sat) 02:21`, or None when it is not one."""
    match = _DATE.match(value)
    if not match:
        return None
    year, month, day, hour, minute = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute)
    except ValueError:
        return None


def read_turns(path: Path | str, where: str, raw: object) -> tuple[tuple[str, str], ...]:
    """The (role, content) turns of one session: a list of {"role", "content", ...} objects."""
    if not isinstance(raw, list):
        raise RawFormatError(path, where, f"expected a list of turns, found {type(raw).__name__}")
    return tuple(
        (
            get_field(turn, "role", str, path, f"{where}[{t}]"),
            get_field(turn, "content", str, path, f"{where}[{t}]"),
        )
        for t, turn in enumerate(raw)
    )


def read_oracle(path: Path) -> list[Record]:
    """Questions of a LongMemEval file (a JSON list of questions, each with its haystack sessions)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise RawFormatError(path, "top level", f"expected a list of questions, found {type(data).__name__}")
    records = []
    for i, raw in enumerate(data):
        where = f"record {i}"
        answer = get_field(raw, "answer", (str, int, float), path, where)
        record = Record(
            question_id=get_field(raw, "question_id", str, path, where),
            question_type=get_field(raw, "question_type", str, path, where),
            question=get_field(raw, "question", str, path, where).strip(),
            answer=str(answer).strip(),
            question_date=get_field(raw, "question_date", str, path, where),
        )
        if not record.answer:
            raise RawFormatError(path, where, "empty answer", field="answer")
        ids = get_field(raw, "haystack_session_ids", list, path, where)
        dates = get_field(raw, "haystack_dates", list, path, where)
        sessions = get_field(raw, "haystack_sessions", list, path, where)
        if not len(ids) == len(dates) == len(sessions):
            raise RawFormatError(
                path,
                where,
                f"haystack_session_ids, haystack_dates and haystack_sessions differ in length "
                f"({len(ids)}, {len(dates)}, {len(sessions)})",
            )
        for k, (session_id, date, turns) in enumerate(zip(ids, dates, sessions, strict=True)):
            when = parse_date(date) if isinstance(date, str) else None
            if when is None:
                raise RawFormatError(path, where, f"not a date: {date!r}", field=f"haystack_dates[{k}]")
            turns = read_turns(path, f"{where}.haystack_sessions[{k}]", turns)
            record.sessions.append((str(session_id), when, Session(date, turns)))
        records.append(record)
    return records


def history(group: Sequence[Record]) -> list[tuple[str, datetime, Session]]:
    """The union of the group's sessions (first copy of each id), ordered by date, then id."""
    seen: dict[str, tuple[str, datetime, Session]] = {}
    for record in group:
        for entry in record.sessions:
            seen.setdefault(entry[0], entry)
    return sorted(seen.values(), key=lambda e: (e[1], e[0]))


def build_train(ctx: BuildContext) -> dict[str, list[Instance]]:
    if ctx.origin == "release":
        return build_memalpha_release(ctx)
    params = ctx.params
    path = ctx.raw_files()[0] if ctx.origin == "raw" else ctx.hub_file(ORACLE_FILE)
    records = read_oracle(path)
    answerable = sorted((r for r in records if "_abs" not in r.question_id), key=lambda r: r.question_id)
    ctx.rng("order").shuffle(answerable)
    per = params["questions_per_instance"]
    groups = [answerable[i : i + per] for i in range(0, len(answerable) - per + 1, per)]
    flush = params.get("flush_tokens", round(ctx.chunk_size * FLUSH_SHARE))

    instances: list[Instance] = []
    too_short = too_long = 0
    for group in ctx.progress(groups, "instances"):
        sessions = history(group)
        chunks = session_chunks([s for _, _, s in sessions], ctx.counter, ctx.chunk_size, flush)
        tokens = sum(ctx.count_many(chunks))
        if tokens < params["min_tokens"]:
            too_short += 1
            continue
        if tokens > params["max_tokens"]:
            too_long += 1
            continue
        questions = [Question(r.question_id, r.question, [r.answer], r.question_type, r.question_date) for r in group]
        instances.append(
            Instance(
                ctx.instance_id(*(r.question_id for r in group)),
                chunks,
                questions,
                {
                    "source": "longmemeval_oracle",
                    "session_ids": [sid for sid, _, _ in sessions],
                },
            )
        )
    ctx.notes.append(
        f"lme_train: {len(records) - len(answerable)} abstention questions skipped; {len(groups)} groups "
        f"of {per} questions ({len(answerable) - per * len(groups)} questions left over); {too_short} "
        f"groups under {params['min_tokens']} and {too_long} over {params['max_tokens']} tokens dropped"
    )
    if len(instances) > TRAIN_CAP:
        ctx.notes.append(f"lme_train: {len(instances)} instances sampled down to {TRAIN_CAP}")
    return {"train": train_validation(instances, seed=ctx.seed, ratio=1.0, train_cap=TRAIN_CAP)["train"]}
