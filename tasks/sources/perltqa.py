"""PerLTQA: one instance per character; each chunk is one life event with the dialogues about it.

Origins: the release files `DIR/perltqa/perltmem_en.json` (the memories: a list of characters, or an
object keyed by name as in `en_v2`) and `perltqa_en.json` (the questions, grouped by character, memory
type and memory id), from github.com/Elvin-Yiming-Du/PerLTQA `Dataset/en/`; and Mem-alpha's processed
release. Questions come from the `events` and `dialogues` memory types. The gold is a list of short
keywords: the answer's own `;` parts, or (with an LLM) the key phrases of a long answer; with an LLM,
a question is kept only when the model answers it with the whole context in front of it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import wrappers
from ..build import BuildContext
from ..errors import RawFormatError
from ..llm import BuilderLLM, full_context_matches, shorten_answers
from ..schema import Instance, Question
from ..splits import train_validation
from .common import field as get_field
from .common import pack_whole, read_json, split_to_fit

QA_SECTIONS = ("events", "dialogues")
OTHER_SECTIONS = ("profile", "social_relationship")
MAX_KEYWORD_WORDS = 3  # the original's shortened answers: key phrases of at most three words
_MARGIN = 8  # room kept for the token-count drift of a wrapped text against its parts under BPE


@dataclass
class Dialogue:
    memory_id: str
    event_id: str
    text: str  # `dated_dialogue` blocks, one per time stamp


@dataclass
class Event:
    memory_id: str
    when: str
    account: str
    dialogues: list[Dialogue] = field(default_factory=list)


@dataclass
class Character:
    name: str
    events: list[Event]
    orphans: list[Dialogue]  # dialogues whose event is not in the file: kept, in chunks of their own

    @property
    def memory_ids(self) -> set[str]:
        ids = {e.memory_id for e in self.events} | {d.memory_id for d in self.orphans}
        return ids | {d.memory_id for e in self.events for d in e.dialogues}


@dataclass
class QA:
    question_id: str
    question: str
    answer: str
    memory_id: str
    section: str
    gold: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- memories


def dialogue_lines(messages: Any, path: Path, where: str) -> list[str]:
    """`Speaker: text` strings (nested one level deep at most) as `<Speaker> text` lines; others as is."""
    if not isinstance(messages, list):
        raise RawFormatError(path, where, f"expected a list of lines, found {type(messages).__name__}")
    lines = []
    for message in messages:
        for line in message if isinstance(message, list) else [message]:
            if not isinstance(line, str):
                raise RawFormatError(path, where, f"expected a dialogue line, found {type(line).__name__}")
            speaker, colon, said = line.partition(": ")
            if colon and speaker.strip() and said.strip():
                lines.append(wrappers.chat_turn(speaker.strip(), said.strip()))
            elif line.strip():
                lines.append(line.strip())
    return lines


def read_dialogue(memory_id: str, record: Any, path: Path, where: str) -> Dialogue:
    contents = get_field(record, "contents", dict, path, where)
    blocks = [
        wrappers.dated_dialogue(stamp, dialogue_lines(messages, path, f"{where}.contents[{stamp!r}]"))
        for stamp, messages in contents.items()
    ]
    event = record.get("events")
    if isinstance(event, list):
        event = event[0] if event else None
    event_id = event if isinstance(event, str) and event else memory_id.partition("#")[0]
    return Dialogue(memory_id, event_id, "\n\n".join(blocks))


def read_event(memory_id: str, record: Any, path: Path, where: str) -> Event:
    content = get_field(record, "content", str, path, where).strip()
    summary = record.get("summary") or ""
    when = record.get("Creation Time") or ""
    for key, value in (("summary", summary), ("Creation Time", when)):
        if not isinstance(value, str):
            raise RawFormatError(path, where, f"expected str, found {type(value).__name__}", field=key)
    return Event(memory_id, when.strip(), wrappers.event_account(summary.strip(), content))


def read_character(name: str, record: Any, path: Path, where: str) -> Character:
    events_raw = get_field(record, "events", dict, path, where)
    dialogues_raw = get_field(record, "dialogues", dict, path, where)
    events = {eid: read_event(eid, ev, path, f"{where}.events[{eid!r}]") for eid, ev in events_raw.items()}
    orphans = []
    for did, dia in dialogues_raw.items():
        dialogue = read_dialogue(did, dia, path, f"{where}.dialogues[{did!r}]")
        if dialogue.event_id in events:
            events[dialogue.event_id].dialogues.append(dialogue)
        else:
            orphans.append(dialogue)
    return Character(name, list(events.values()), orphans)


def read_memories(path: Path) -> dict[str, Character]:
    """Characters of perltmem: a list of character objects (named by `profile.Protagonist`) or an
    object keyed by name."""
    data = read_json(path)
    if isinstance(data, dict):
        records: Iterator[tuple[str, str | None, Any]] = ((f"record {k!r}", k, v) for k, v in data.items())
    elif isinstance(data, list):
        records = ((f"record {i}", None, v) for i, v in enumerate(data))
    else:
        raise RawFormatError(path, "top level", f"expected a list or an object, found {type(data).__name__}")
    characters = {}
    for where, name, record in records:
        if name is None:
            profile = get_field(record, "profile", dict, path, where)
            name = get_field(profile, "Protagonist", str, path, f"{where}.profile")
        characters[name.strip()] = read_character(name.strip(), record, path, where)
    return characters


# ---------------------------------------------------------------------------------------- questions


def read_qas(path: Path) -> tuple[dict[str, list[QA]], int]:
    """Event and dialogue questions per character, and how many profile/relationship ones were skipped."""
    data = read_json(path)
    groups = [data] if isinstance(data, dict) else data
    if not isinstance(groups, list):
        raise RawFormatError(path, "top level", f"expected a list, found {type(data).__name__}")
    out: dict[str, list[QA]] = {}
    positions: dict[str, dict[str, int]] = {}
    other = 0
    for i, group in enumerate(groups):
        if not isinstance(group, dict):
            raise RawFormatError(path, f"record {i}", f"expected an object, found {type(group).__name__}")
        for name, sections in group.items():
            where = f"record {i}[{name!r}]"
            if not isinstance(sections, dict):
                raise RawFormatError(path, where, f"expected an object, found {type(sections).__name__}")
            other += sum(count_qas(sections.get(s)) for s in OTHER_SECTIONS)
            qas = out.setdefault(name.strip(), [])
            seen = positions.setdefault(name.strip(), {})
            for section in QA_SECTIONS:
                items = sections.get(section) or []
                qas.extend(section_qas(items, section, seen, path, f"{where}.{section}"))
    return out, other


def count_qas(section: Any) -> int:
    """Questions in a skipped section: `profile` lists them, `social_relationship` groups them by id."""
    if not isinstance(section, list):
        return 0
    total = 0
    for item in section:
        grouped = isinstance(item, dict) and "Question" not in item
        total += sum(len(v) for v in item.values() if isinstance(v, list)) if grouped else 1
    return total


def section_qas(items: Any, section: str, seen: dict[str, int], path: Path, where: str) -> Iterator[QA]:
    """`[{memory_id: [{Question, Answer, ...}]}]`; a question's id is its memory id and its position
    among that memory's questions (`seen` counts them per character)."""
    if not isinstance(items, list):
        raise RawFormatError(path, where, f"expected a list, found {type(items).__name__}")
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            raise RawFormatError(path, f"{where}[{k}]", f"expected an object, found {type(item).__name__}")
        for memory_id, qa_list in item.items():
            mwhere = f"{where}[{k}][{memory_id!r}]"
            if not isinstance(qa_list, list):
                raise RawFormatError(path, mwhere, f"expected a list, found {type(qa_list).__name__}")
            for qa in qa_list:
                j = seen[memory_id] = seen.get(memory_id, -1) + 1
                qwhere = f"{mwhere}[{j}]"
                question = get_field(qa, "Question", str, path, qwhere).strip()
                answer = qa.get("Answer") if isinstance(qa, dict) else None
                if answer is not None and not isinstance(answer, str):
                    raise RawFormatError(path, qwhere, f"expected str, found {type(answer).__name__}", field="Answer")
                yield QA(f"{memory_id}-q{j}", question, (answer or "").strip(), memory_id, section)


# ---------------------------------------------------------------------------------------- building


def event_chunks(ctx: BuildContext, character: Character) -> list[str]:
    """One chunk per event (its account, then its dialogues); an event over the chunk size is split
    between dialogues, and by sentences where one part alone is too long, each part keeping the header."""
    groups = [(e.when or None, [e.account, *(d.text for d in e.dialogues)]) for e in character.events]
    groups += [(None, [d.text]) for d in character.orphans]
    chunks: list[str] = []
    for when, parts in groups:

        def wrap(i: int, body: str, when: str | None = when) -> str:
            return wrappers.life_event(character.name, when, body, continued=i > 0)

        room = ctx.chunk_size - ctx.counter.count(wrap(1, "")) - _MARGIN
        pieces = [p for part in parts for p in split_to_fit(part, ctx.counter, room)]
        chunks.extend(pack_whole(pieces, ctx.counter, ctx.chunk_size, wrap=wrap, sep="\n\n"))
    return chunks


def keyword_parts(answer: str) -> list[str]:
    return [p.strip() for p in answer.split(";") if p.strip()]


def is_long(parts: list[str]) -> bool:
    return any(len(p.split()) > MAX_KEYWORD_WORDS for p in parts)


def set_golds(ctx: BuildContext, qas: list[QA]) -> None:
    """Each answer's `;` parts; with an LLM, long answers are rewritten as short key phrases first."""
    for qa in qas:
        qa.gold = keyword_parts(qa.answer)
    llm = ctx.llm_step("answer_shortening", "rewrite long answers as short ';'-separated key phrases")
    long = [qa for qa in qas if is_long(qa.gold)]
    if llm is None or not long:
        return
    shortened = shorten_answers(llm, [qa.question for qa in long], [qa.answer for qa in long])
    for qa, parts in zip(long, shortened, strict=True):
        qa.gold = parts or qa.gold


def answerable(llm: BuilderLLM | None, chunks: list[str], qas: list[QA]) -> list[QA]:
    """With an LLM: the questions it answers from the whole context, each with the gold parts it found."""
    if llm is None or not qas:
        return qas
    context = "\n\n".join(chunks)
    matched = full_context_matches(llm, context, [qa.question for qa in qas], [qa.gold for qa in qas])
    kept = []
    for qa, parts in zip(qas, matched, strict=True):
        if parts:
            qa.gold = parts
            kept.append(qa)
    return kept


def capped(rng: random.Random, qas: list[QA], cap: int) -> list[QA]:
    if len(qas) <= cap:
        return qas
    chosen = set(rng.sample(range(len(qas)), cap))
    return [qa for i, qa in enumerate(qas) if i in chosen]


def build(ctx: BuildContext) -> dict[str, list[Instance]]:
    if ctx.origin == "release":
        from .memalpha_release import build_memalpha_release

        return build_memalpha_release(ctx)
    params = ctx.params
    (mem_path,) = ctx.raw_files("perltmem_en.json")
    (qa_path,) = ctx.raw_files("perltqa_en.json")
    characters = read_memories(mem_path)
    qas_by_name, other = read_qas(qa_path)
    ctx.notes.append(f"left out {other} profile and social-relationship questions (kept: events, dialogues)")

    candidates = []
    reasons = ("no_memories", "no_answer", "unknown_memory", "too_many_chunks", "too_few_questions")
    counts = dict.fromkeys(reasons, 0)
    for name, qas in qas_by_name.items():
        character = characters.get(name)
        if character is None:
            counts["no_memories"] += 1
            continue
        chunks = event_chunks(ctx, character)
        if len(chunks) > params["max_chunks"]:
            counts["too_many_chunks"] += 1
            continue
        ids = character.memory_ids
        answered = [qa for qa in qas if keyword_parts(qa.answer)]
        counts["no_answer"] += len(qas) - len(answered)
        counts["unknown_memory"] += sum(1 for qa in answered if qa.memory_id not in ids)
        candidates.append((character, chunks, [qa for qa in answered if qa.memory_id in ids]))
    set_golds(ctx, [qa for _, _, qas in candidates for qa in qas])

    llm = ctx.llm_step("full_context_filter", "keep questions a model answers with the whole context at hand")
    instances = []
    for character, chunks, qas in ctx.progress(candidates, "characters"):
        kept = answerable(llm, chunks, qas)
        if len(kept) < params["min_questions"]:
            counts["too_few_questions"] += 1
            continue
        instance_id = ctx.instance_id(character.name)
        kept = capped(ctx.rng(instance_id, "questions"), kept, params["max_questions"])
        questions = [Question(qa.question_id, qa.question, qa.gold, qa.section) for qa in kept]
        instances.append(
            Instance(
                instance_id,
                chunks,
                questions,
                {
                    "source": "perltqa",
                    "character": character.name,
                    "events": len(character.events),
                    "questions_available": len(qas),
                },
            )
        )
    ctx.notes.append(
        f"left out {counts['no_memories']} characters without memories, {counts['too_many_chunks']} with "
        f"more than {params['max_chunks']} chunks, {counts['too_few_questions']} with fewer than "
        f"{params['min_questions']} questions; {counts['no_answer']} questions without an answer, "
        f"{counts['unknown_memory']} whose memory id is not in {mem_path.name}"
    )
    return train_validation(instances, seed=ctx.seed)
