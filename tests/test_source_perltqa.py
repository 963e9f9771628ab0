"""PerLTQA builder on a small synthetic pair of release files (Dataset/en layout of the PerLTQA repo).

perltmem_en.json is a list of characters: `profile` (with `Protagonist`), `social_relationship`,
`events` {id: {content, summary, Creation Time, ...}} and `dialogues` {id: {events, contents: {stamp:
["Speaker: text", ...]}}}. perltqa_en.json is a list of {name: {profile: [qa], social_relationship /
events / dialogues: [{memory id: [qa]}]}} with qa = {Question, Answer, Reference Memory, Memory Anchors}.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from datasets import load_from_disk

from tasks.build import build_task
from tasks.errors import RawFormatError
from tasks.llm import FULL_CONTEXT_SYSTEM, SHORTEN_SYSTEM
from tasks.tokenization import get_counter

PLACES = ("Hangzhou", "Lhasa", "Kunming", "Harbin", "Xiamen")


@dataclass
class Spec:
    cid: int
    name: str
    events: int
    qas_per_event: int
    hard: int = 0  # questions the full-context model gets wrong
    long_event: bool = False
    orphan: bool = False  # a dialogue whose event is missing
    broken_qas: bool = False  # one QA without answer, one on an unknown memory
    replies: dict[str, str] = field(default_factory=dict)


SPECS = (
    Spec(1, "Wang Fang", events=4, qas_per_event=6, hard=3, orphan=True, broken_qas=True),
    Spec(2, "Li Na", events=5, qas_per_event=4, hard=3),
    Spec(3, "Chen Jie", events=3, qas_per_event=40, hard=5, long_event=True),
    Spec(4, "Zhou Min", events=31, qas_per_event=1),  # 31 chunks: over max_chunks
    Spec(5, "Sun Hao", events=2, qas_per_event=5),  # 10 questions: under min_questions
)
EXPECTED = {"Wang Fang": 25, "Li Na": 20, "Chen Jie": 100}  # events x per-event (+ orphan), capped at 100


def shortened(answer: str) -> list[str]:
    """What the stand-in LLM makes of a long answer: its first and last word."""
    words = answer.rstrip(".").split()
    return [words[0], words[-1]]


def answer_for(spec: Spec, e: int, k: int) -> str:
    place = PLACES[(e + k) % len(PLACES)]
    return (place, f"tea; {place}", f"{place} was where {spec.name} went with a sister in spring.")[k % 3]


def character(spec: Spec) -> tuple[dict, dict]:
    events, dialogues, event_qas, dialogue_qas = {}, {}, [], []
    n = 0
    for e in range(spec.events):
        eid = f"{spec.cid}_0_{e}"
        content = f"{spec.name} visited {PLACES[e % 5]} on trip {e}. The weather was calm."
        if spec.long_event and e == 0:
            days = range(220)
            content = " ".join(f"On day {d} {spec.name} walked by the lake and wrote note {d}." for d in days)
        events[eid] = {
            "content": content,
            "summary": f"Trip {e}",
            "Characters": [f"{spec.cid}_0"],
            "Creation Time": f"May {e + 1}, 2022",
            "Last Accessed Time": "",
            "Theme": "travel",
        }
        did = f"{eid}#{e}"
        lines = [
            f"{spec.name}: I remember trip {e}: it was lovely.",
            f"AI assistant: Tell me more about trip {e}.",
        ]
        dialogues[did] = {"events": eid, "contents": {f"2022-05-{e + 1:02d} 10:00": lines}}
        qas = []
        for k in range(spec.qas_per_event):
            question = f"Question {k} about trip {e} of {spec.name}?"
            answer = answer_for(spec, e, k)
            parts = shortened(answer) if k % 3 == 2 else [p.strip() for p in answer.split(";")]
            spec.replies[question] = "Not in the notes." if n < spec.hard else f"I believe it was {parts[0]}."
            n += 1
            qas.append(
                {
                    "Question": question,
                    "Answer": answer,
                    "Reference Memory": f"['{eid}']",
                    "Memory Anchors": [{parts[0]: [-1, -1]}],
                }
            )
        # about a third of them are asked on the dialogue rather than the event
        cut = len(qas) * 2 // 3
        event_qas.append({eid: qas[:cut]})
        dialogue_qas.append({did: qas[cut:]})
    if spec.orphan:
        dialogues[f"{spec.cid}_5_0#9"] = {
            "events": f"{spec.cid}_5_0",
            "contents": {"2022-07-01 09:00": [f"{spec.name}: My cat is called Mochi.", "AI assistant: A lovely name."]},
        }
        question = f"What is the name of the cat of {spec.name}?"
        spec.replies[question] = "Mochi"
        dialogue_qas.append({f"{spec.cid}_5_0#9": [{"Question": question, "Answer": "Mochi"}]})
    if spec.broken_qas:
        event_qas.append({f"{spec.cid}_9_9": [{"Question": "On a memory that is not there?", "Answer": "x"}]})
        event_qas.append({f"{spec.cid}_0_0": [{"Question": "Never answered?", "Answer": None}]})
    memory = {
        "profile": {"Protagonist": spec.name, "Gender": "female", "Age": 30},
        "profile_description": f"{spec.name} is thirty.",
        "social_relationship": {
            f"{spec.cid}_0": {
                "Supporting Characters": "Xu Lan",
                "Description": "a friend",
                "Relationship": "friend",
            }
        },
        "events": events,
        "dialogues": dialogues,
    }
    qa = {
        spec.name: {
            "profile": [{"Question": f"How old is {spec.name}?", "Answer": "30", "Reference Memory": "Age"}],
            "social_relationship": [{f"{spec.cid}_0": [{"Question": "Who is Xu Lan?", "Answer": "A friend."}]}],
            "events": event_qas,
            "dialogues": dialogue_qas,
        }
    }
    return memory, qa


def write_fixture(root: Path, specs: Sequence[Spec] = SPECS) -> Path:
    folder = root / "perltqa"
    folder.mkdir(parents=True)
    pairs = [character(spec) for spec in specs]
    ghost = {"Ghost Writer": {"events": [{"9_0_0": [{"Question": "Who?", "Answer": "Nobody"}]}]}}
    (folder / "perltmem_en.json").write_text(json.dumps([m for m, _ in pairs], indent=2), encoding="utf-8")
    (folder / "perltqa_en.json").write_text(json.dumps([q for _, q in pairs] + [ghost], indent=2), encoding="utf-8")
    return root


class StandInLLM:
    """Shortens long answers to their first and last word, and answers full-context questions from a table."""

    def __init__(self, replies: dict[str, str]):
        self.replies = replies

    def describe(self) -> dict[str, object]:
        return {"model": "stand-in"}

    def generate(self, conversations: Sequence[list[dict[str, str]]], *, max_tokens: int) -> list[str]:
        out = []
        for system, user in (conv[:2] for conv in conversations):
            if system["content"] == SHORTEN_SYSTEM:
                answer = user["content"].split("\nAnswer: ", 1)[1]
                assert len(answer.split()) > 3
                out.append("; ".join(shortened(answer)))
            else:
                assert system["content"] == FULL_CONTEXT_SYSTEM and "[A memory of " in user["content"]
                out.append(self.replies[user["content"].rsplit("\n\nQuestion: ", 1)[1]])
        return out


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def built(raw_root, tmp_path_factory):
    result = build_task(
        "perltqa",
        tmp_path_factory.mktemp("out"),
        origin="raw",
        raw_dir=raw_root,
        tokenizer="simple",
        show_progress=False,
    )
    return result, load_from_disk(str(result.path))


def by_character(ds) -> dict[str, dict]:
    return {json.loads(r["metadata"])["character"]: r for s in ("train", "validation") for r in ds[s]}


def test_instances_and_question_counts(built):
    result, ds = built
    rows = by_character(ds)
    assert {name: len(r["questions"]) for name, r in rows.items()} == EXPECTED
    notes = " ".join(result.manifest["notes"])
    assert "left out 1 characters without memories, 1 with more than 30 chunks, 1 with fewer than 20" in notes
    assert "1 questions without an answer, 1 whose memory id is not in perltmem_en.json" in notes
    assert "left out 10 profile and social-relationship questions" in notes


def test_questions_keep_source_ids_types_and_answer_parts(built):
    _, ds = built
    spec = SPECS[0]
    row = by_character(ds)[spec.name]
    questions = {q["question_id"]: q for q in row["questions"]}
    assert questions["1_0_0-q0"]["answers"] == [answer_for(spec, 0, 0)]
    assert questions["1_0_0-q1"]["answers"] == ["tea", answer_for(spec, 0, 1).split("; ")[1]]
    assert questions["1_0_0-q2"]["answers"] == [answer_for(spec, 0, 2)]  # long: kept whole without an LLM
    assert questions["1_0_0#0-q0"]["question_type"] == "dialogues"
    assert questions["1_5_0#9-q0"]["answers"] == ["Mochi"]
    assert {q["question_type"] for q in row["questions"]} == {"events", "dialogues"}


def test_one_chunk_per_event_with_its_dialogues(built):
    _, ds = built
    counter = get_counter("simple")
    rows = by_character(ds)
    for name, row in rows.items():
        assert max(counter.count_many(row["chunks"])) <= 2048
        assert all(c.startswith(f"[A memory of {name}") for c in row["chunks"])
    wang = rows["Wang Fang"]["chunks"]
    assert len(wang) == 4 + 1  # four events and the dialogue whose event is missing
    assert wang[1].startswith("[A memory of Wang Fang, May 2, 2022]\nEvent: Trip 1\nWang Fang visited")
    assert "[Dialogue on 2022-05-02 10:00]\n<Wang Fang> I remember trip 1: it was lovely." in wang[1]
    assert "<AI assistant> Tell me more about trip 1." in wang[1]
    assert wang[4] == (
        "[A memory of Wang Fang]\n[Dialogue on 2022-07-01 09:00]\n"
        "<Wang Fang> My cat is called Mochi.\n<AI assistant> A lovely name."
    )


def test_long_event_is_split_and_nothing_is_lost(built, raw_root):
    _, ds = built
    chunks = by_character(ds)["Chen Jie"]["chunks"]
    assert len(chunks) > 3
    assert ", continued]" in chunks[1]
    memory = json.loads((raw_root / "perltqa" / "perltmem_en.json").read_text(encoding="utf-8"))[2]
    long_content = memory["events"]["3_0_0"]["content"]
    text = " ".join(c.split("\n", 1)[1] for c in chunks)
    assert long_content.split() == text.split()[3 : 3 + len(long_content.split())]  # after "Event: Trip 0"


def test_splits_are_disjoint_and_rebuild_is_stable(built, raw_root, tmp_path):
    result, ds = built
    assert len(ds["train"]) == 2 and len(ds["validation"]) == 1
    assert not set(ds["train"]["instance_id"]) & set(ds["validation"]["instance_id"])
    again = build_task("perltqa", tmp_path, origin="raw", raw_dir=raw_root, tokenizer="simple", show_progress=False)
    assert again.manifest["sha256"] == result.manifest["sha256"]
    assert result.manifest["llm_steps"]["answer_shortening"]["status"] == "skipped"
    assert result.manifest["llm_steps"]["full_context_filter"]["status"] == "skipped"


def test_llm_steps_shorten_answers_and_filter_questions(raw_root, tmp_path):
    replies = {q: r for spec in SPECS for q, r in spec.replies.items()}
    result = build_task(
        "perltqa",
        tmp_path,
        origin="raw",
        raw_dir=raw_root,
        tokenizer="simple",
        show_progress=False,
        llm=StandInLLM(replies),
    )
    steps = result.manifest["llm_steps"]
    assert steps["answer_shortening"]["status"] == steps["full_context_filter"]["status"] == "applied"
    rows = by_character(load_from_disk(str(result.path)))
    # Li Na falls to 17 answerable questions, under min_questions; Chen Jie keeps 115, capped at 100
    assert {name: len(r["questions"]) for name, r in rows.items()} == {"Wang Fang": 22, "Chen Jie": 100}
    for row in rows.values():
        for q in row["questions"]:
            assert replies[q["question"]] != "Not in the notes."
            assert q["answers"] == [replies[q["question"]].removeprefix("I believe it was ").rstrip(".")]
    wang = {q["question_id"]: q for q in rows["Wang Fang"]["questions"]}
    assert wang["1_0_1-q2"]["answers"] == [answer_for(SPECS[0], 1, 2).split()[0]]  # shortened, then matched


@pytest.mark.parametrize(
    ("file", "breaks", "where", "field_name"),
    [
        (
            "perltqa_en.json",
            lambda data: data[1]["Li Na"]["events"][2]["2_0_2"][0].pop("Question"),
            "record 1['Li Na'].events[2]['2_0_2'][0]",
            "Question",
        ),
        (
            "perltmem_en.json",
            lambda data: data[0]["events"]["1_0_3"].pop("content"),
            "record 0.events['1_0_3']",
            "content",
        ),
    ],
)
def test_malformed_input_names_file_record_and_field(tmp_path, file, breaks, where, field_name):
    root = write_fixture(tmp_path)
    path = root / "perltqa" / file
    data = json.loads(path.read_text(encoding="utf-8"))
    breaks(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RawFormatError) as err:
        build_task("perltqa", tmp_path / "out", origin="raw", raw_dir=root, tokenizer="simple", show_progress=False)
    assert str(path) in str(err.value) and where in str(err.value)
    assert err.value.field == field_name
