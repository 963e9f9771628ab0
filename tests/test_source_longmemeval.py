"""lme_train from a LongMemEval oracle file written by the test (official format), raw and hub layouts."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from tasks.build import build_task
from tasks.errors import RawFormatError
from tasks.manifest import load_built
from tasks.sources.longmemeval import history, read_oracle
from tasks.tokenization import get_counter

COUNTER = get_counter("simple")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LONG_TURN = " ".join(f"Paragraph {k} of my essay says bridge {k} needs {k + 7} bolts." for k in range(200))


def stamp(day: int) -> str:
    when = datetime(2023, 3, 1, 9 + day % 12, 15 + day % 40)
    when = when.replace(day=1 + day % 28, month=3 + day // 28)
    return f"{when:%Y/%m/%d} ({DAYS[when.weekday()]}) {when:%H:%M}"


def turn_text(q: int, s: int, t: int) -> str:
    return f"Q{q} session {s} turn {t}: I keep lamp number {q * 1000 + s * 100 + t} in the hall by the door."


def session(q: int, s: int, turns: int) -> list[dict]:
    out = [{"role": ("user", "assistant")[t % 2], "content": turn_text(q, s, t)} for t in range(turns)]
    out[1]["has_answer"] = True
    return out


def record(q: int, *, turns: tuple[int, ...] = (90, 40, 14, 6), abstention: bool = False) -> dict:
    """A question with sessions of the given numbers of turns (about 21 tokens a turn)."""
    sessions = len(turns)
    ids = [f"sess_{q}_{s}" for s in range(sessions)]
    days = [(q * 5 + (sessions - s) * 3) % 90 for s in range(sessions)]  # not in date order in the file
    haystack = [session(q, s, n) for s, n in enumerate(turns)]
    if q == 2:
        haystack[0].append({"role": "assistant", "content": LONG_TURN})
    return {
        "question_id": f"q{q:03d}" + ("_abs" if abstention else ""),
        "question_type": "multi-session" if q % 2 else "single-session-user",
        "question": f"Where do I keep lamp number {q * 1000 + 101}?",
        "answer": q if q == 5 else f"in the hall ({q})",
        "question_date": stamp(95),
        "haystack_session_ids": ids,
        "haystack_dates": [stamp(d) for d in days],
        "haystack_sessions": haystack,
        "answer_session_ids": ids[:1],
    }


def oracle() -> list[dict]:
    records = [record(q) for q in range(12)]
    records[7] = record(7, turns=(500, 500, 500, 500))  # ~42k tokens: its group goes over max_tokens
    records[4]["haystack_session_ids"][2] = "sess_shared"  # one session shared by two questions
    records[9]["haystack_session_ids"][0] = "sess_shared"
    records[9]["haystack_sessions"][0] = records[4]["haystack_sessions"][2]
    records[9]["haystack_dates"][0] = records[4]["haystack_dates"][2]
    return [*records, record(20, abstention=True), record(21, abstention=True)]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lme")
    text = json.dumps(oracle(), indent=1)
    (root / "raw" / "longmemeval").mkdir(parents=True)
    (root / "raw" / "longmemeval" / "longmemeval_oracle.json").write_text(text)
    (root / "hub" / "xiaowu0162" / "longmemeval-cleaned").mkdir(parents=True)
    (root / "hub" / "xiaowu0162" / "longmemeval-cleaned" / "longmemeval_oracle.json").write_text(text)
    return root / "raw", root / "hub"


@pytest.fixture(scope="module")
def built(dirs, tmp_path_factory):
    result = build_task(
        "lme_train",
        tmp_path_factory.mktemp("out"),
        origin="raw",
        raw_dir=dirs[0],
        tokenizer="simple",
        show_progress=False,
    )
    return load_built(result.path)


def norm(text: str) -> str:
    return " ".join(text.split())


def test_instances(built):
    data, manifest = built
    assert list(data) == ["train"]
    rows = data["train"]
    assert len(rows) == 2  # 12 answerable questions -> 3 groups of 4; the one holding q007 is too long
    records = {r["question_id"]: r for r in oracle()}
    seen = set()
    for row in rows:
        counts = COUNTER.count_many(row["chunks"])
        assert max(counts) <= 2048 and sum(counts) == row["context_tokens"]
        assert 10000 <= row["context_tokens"] <= 30000
        assert len(row["questions"]) == 4
        joined = norm(" ".join(row["chunks"]))
        headers = [
            datetime.strptime(re.sub(r" \(\w+\)", "", h), "%Y/%m/%d %H:%M")
            for c in row["chunks"]
            for h in re.findall(r"^\[Chat session, (.*)\]$", c, re.M)
        ]
        assert headers == sorted(headers)  # sessions in date order
        assert any(c.count("[Chat session, ") > 1 for c in row["chunks"])  # small sessions share a chunk
        for chunk, n, after in zip(row["chunks"], counts, row["chunks"][1:], strict=False):
            # a chunk closes once it reaches the flush size, or when the next session segment would not fit
            following = after.split("\n\n[Chat session")[0]
            assert n >= 1800 or COUNTER.count(f"{chunk}\n\n{following}") > 2048
        for q in row["questions"]:
            rec = records[q["question_id"]]
            assert "_abs" not in q["question_id"] and q["question_id"] != "q007"
            assert q["answers"] == [str(rec["answer"])] and q["question"] == rec["question"]
            assert q["question_type"] == rec["question_type"] and q["question_date"] == rec["question_date"]
            for date, turns in zip(rec["haystack_dates"], rec["haystack_sessions"], strict=True):
                assert f"[Chat session, {date}]" in row["chunks"][0] or f"[Chat session, {date}]" in joined
                for turn in turns:
                    if turn["content"] != LONG_TURN:
                        tag = "<User>" if turn["role"] == "user" else "<Assistant>"
                        assert f"{tag} {turn['content']}" in joined
            seen.add(q["question_id"])
        if "q002" in {q["question_id"] for q in row["questions"]}:  # the oversized turn: split, all kept
            assert all(norm(s) in joined for s in re.findall(r"Paragraph \d+ [^.]*\.", LONG_TURN))
    assert len(seen) == 8
    assert any("2 abstention questions skipped" in n and "1 over 30000" in n for n in manifest["notes"])


def test_hub_layout_gives_the_same_build(dirs, built, tmp_path):
    result = build_task(
        "lme_train", tmp_path, origin="hub", hub_mirror=dirs[1], tokenizer="simple", show_progress=False
    )
    assert result.manifest["sha256"] == built[1]["sha256"]
    assert result.manifest["inputs"][0]["file"] == "longmemeval_oracle.json"
    assert result.manifest["inputs"][0]["sha256"] == built[1]["inputs"][0]["sha256"]


def test_history_dedupes_and_orders(dirs):
    records = {r.question_id: r for r in read_oracle(dirs[0] / "longmemeval" / "longmemeval_oracle.json")}
    union = history([records["q004"], records["q009"]])
    ids = [sid for sid, _, _ in union]
    assert len(ids) == 7 and ids.count("sess_shared") == 1
    assert [when for _, when, _ in union] == sorted(when for _, when, _ in union)


def test_malformed_oracle(tmp_path):
    folder = tmp_path / "longmemeval"
    folder.mkdir()
    path = folder / "longmemeval_oracle.json"
    records = oracle()[:3]
    records[1]["haystack_dates"][2] = "sometime in spring"
    path.write_text(json.dumps(records))
    with pytest.raises(RawFormatError) as err:
        build_task(
            "lme_train",
            tmp_path / "out",
            origin="raw",
            raw_dir=tmp_path,
            tokenizer="simple",
            show_progress=False,
        )
    message = str(err.value)
    assert str(path) in message and "record 1" in message and "'haystack_dates[2]'" in message
    del records[1]["haystack_dates"]
    path.write_text(json.dumps(records))
    with pytest.raises(RawFormatError, match=r"record 1, field 'haystack_dates': missing"):
        read_oracle(path)
    records = oracle()[:1]
    records[0]["haystack_sessions"][0][3] = {"role": "user"}
    path.write_text(json.dumps(records))
    with pytest.raises(RawFormatError, match=r"record 0\.haystack_sessions\[0\]\[3\], field 'content'"):
        read_oracle(path)
