"""MemoryAgentBench from the hub layout: a small `ai-hyz/MemoryAgentBench` mirror written by the test."""

from __future__ import annotations

import json

import pytest
from hublayout import write_hub_repo

from tasks.build import build_task
from tasks.errors import BuildError, RawFormatError
from tasks.manifest import load_built
from tasks.sources.mab import parse_examples
from tasks.tokenization import get_counter

REPO = "ai-hyz/MemoryAgentBench"
COUNTER = get_counter("simple")
PLACES = ("Avalon", "Brindle", "Corvey", "Dunmore", "Elsworth", "Farrow", "Glenholm", "Harwick")


def norm(text: str) -> str:
    return " ".join(text.split())


def fact(k: int) -> str:
    return f"The old mill number {k} near {PLACES[k % len(PLACES)]} was rebuilt in the year {1500 + k}."


def metadata(source: str, **fields) -> dict:
    """The hub's metadata struct: every field present, null where it does not apply."""
    base = dict.fromkeys(
        (
            "qa_pair_ids",
            "question_ids",
            "question_types",
            "question_dates",
            "previous_events",
            "keypoints",
            "demo",
            "haystack_sessions",
        )
    )
    return {"source": source, **base, **fields}


def ruler_row(source: str, first: int, n: int) -> dict:
    docs = [
        f"Document {d}:\n" + " ".join(fact(k) for k in range(first + d * 25, first + (d + 1) * 25))
        for d in range(n // 25)
    ]
    return {
        "context": "\n\n".join(docs),
        "questions": [f"When was the old mill number {first + 3} rebuilt?", f"Where is mill {first + 9}?"],
        "answers": [[str(1503 + first)] * 4, [PLACES[(first + 9) % 8]] * 2],
        "metadata": metadata(source, qa_pair_ids=[f"{source}-a", f"{source}-b"]),
    }


STEPS = [f"In step {k} of the recipe you stir the sauce for {k + 2} minutes." for k in range(220)]
LONG_TURN = " ".join(STEPS)


def sessions() -> list[list[dict]]:
    out = []
    for s in range(12):
        turns = []
        for t in range(10):
            said = f"Session {s} turn {t}: my cousin visited {PLACES[t % 8]} and bought {s * 10 + t} apples."
            reply = f"That sounds lovely, {s * 10 + t} apples is plenty for a party in {PLACES[(t + s) % 8]}."
            turns.append({"role": "user", "content": said, "has_answer": t == 3})
            turns.append({"role": "assistant", "content": reply, "has_answer": False})
        out.append(turns)
    out[5].append({"role": "assistant", "content": LONG_TURN, "has_answer": False})
    return out


def lme_row() -> dict:
    history = sessions()
    return {
        "context": "\n\n".join("\n".join(f"{t['role']}: {t['content']}" for t in s) for s in history),
        "questions": ["How many apples did my cousin buy in session 4?", "What did I tell you about pears?"],
        "answers": [["41"], ["You never mentioned pears."]],
        "metadata": metadata(
            "longmemeval_s*",
            question_ids=["e47becba", "0a99_abs"],
            question_types=["single-session-user", "single-session-user"],
            question_dates=["2023/05/30 (Tue) 23:40", "2023/05/31 (Wed) 10:00"],
            haystack_sessions=history,
        ),
    }


EXAMPLES = [(f"what is the height of tower {k} in {PLACES[k % 8]} ?", str(k % 6)) for k in range(260)]


def icl_row() -> dict:
    context = "\n\n".join(f"{s}\nlabel: {lab}" for s, lab in EXAMPLES) + "\n"
    return {
        "context": context,
        "questions": ["who built the bridge at Avalon ?", "how long is the Farrow canal ?"],
        "answers": [["3"], ["5"]],
        "metadata": metadata("icl_trec_coarse_6600shot_balance", qa_pair_ids=["icl-0", "icl-1"]),
    }


def summary(seed: int) -> str:
    return f"The heroine {seed} walks across eight towns and finally settles in Harwick."


def book_row(source: str, seed: int) -> dict:
    book = "\n\n".join(
        " ".join(f"Chapter {c}: heroine {seed} went to {PLACES[(c + k) % 8]} on day {k}." for k in range(60))
        for c in range(8)
    )
    return {
        "context": book,
        "questions": ["Summarize the book."],
        "answers": [[summary(seed)]],
        "metadata": metadata(source, qa_pair_ids=[f"sum-{seed}"], keypoints=["heroine", "Harwick"]),
    }


def facts_row(source: str) -> dict:
    lines = [f"{k}. The capital of the realm {k} is the city of {PLACES[k % 8]}{k}." for k in range(150)]
    return {
        "context": "Here are the facts:\n" + "\n".join(lines),
        "questions": ["What is the capital of the realm 7?", "What is the capital of the realm 12?"],
        "answers": [["Harwick7"], ["Elsworth12"]],
        "metadata": metadata(source, qa_pair_ids=["fc-7", "fc-12"]),
    }


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    write_hub_repo(
        root,
        REPO,
        {
            None: {
                "Accurate_Retrieval": [
                    ruler_row("ruler_qa1_197K", 0, 500),
                    ruler_row("ruler_qa2_421K", 1000, 100),
                    lme_row(),
                ],
                "Test_Time_Learning": [icl_row()],
                "Long_Range_Understanding": [
                    book_row("infbench_sum_eng_shots2", 1),
                    book_row("detective_qa", 2),
                    book_row("infbench_sum_eng_shots2", 3),
                ],
                "Conflict_Resolution": [
                    facts_row("factconsolidation_sh_262k"),
                    facts_row("factconsolidation_mh_262k"),
                ],
            }
        },
    )
    return root


def build(name, mirror, out, **kw):
    result = build_task(name, out, origin="hub", hub_mirror=mirror, tokenizer="simple", show_progress=False, **kw)
    data, manifest = load_built(result.path)
    return data["test"], manifest


def check_chunks(rows, limit):
    for row in rows:
        counts = COUNTER.count_many(row["chunks"])
        assert max(counts) <= limit and sum(counts) == row["context_tokens"]


def test_ruler_documents(mirror, tmp_path):
    rows, manifest = build("ruler_qa1_197k", mirror, tmp_path)
    assert len(rows) == 1  # the ruler_qa2 and LongMemEval rows of the same split are not picked up
    row = rows[0]
    check_chunks(rows, 2048)
    assert len(row["chunks"]) >= 3 and row["chunks"][0].startswith("[Conversation between the user")
    assert "2024-01-01 00:00" in row["chunks"][0] and "2024-01-02 00:00" in row["chunks"][1]
    joined = norm(" ".join(row["chunks"]))
    assert all(norm(fact(k)) in joined for k in range(500))
    assert [q["question_id"] for q in row["questions"]] == ["ruler_qa1_197K-a", "ruler_qa1_197K-b"]
    assert [q["answers"] for q in row["questions"]] == [["1503"], ["Brindle"]]  # nested, repeats dropped
    assert manifest["inputs"][0]["hub"] == REPO and manifest["inputs"][0]["split"] == "Accurate_Retrieval"
    _, manifest2 = build("ruler_qa1_197k", mirror, tmp_path / "again")
    assert manifest2["sha256"] == manifest["sha256"]


def test_longmemeval_sessions(mirror, tmp_path):
    rows, _ = build("longmemeval_s", mirror, tmp_path)
    assert len(rows) == 1
    row = rows[0]
    check_chunks(rows, 2048)
    joined = norm(" ".join(row["chunks"]))
    history = sessions()
    for turns in history:
        for turn in turns:
            if turn["content"] != LONG_TURN:
                tag = "<User>" if turn["role"] == "user" else "<Assistant>"
                assert f"{tag} {norm(turn['content'])}" in joined
    assert all(s in joined for s in STEPS)  # the oversized turn is split by sentences, nothing lost
    assert sum(c.count("<Assistant> In step") for c in row["chunks"]) >= 2  # each piece keeps its speaker tag
    assert all(c.startswith("[Chat session]") for c in row["chunks"])  # no session dates in this row
    assert len(row["chunks"]) > 1
    questions = row["questions"]
    assert [q["question_id"] for q in questions] == ["e47becba", "0a99_abs"]
    assert questions[0]["question_type"] == "single-session-user"
    assert questions[1]["question_date"] == "2023/05/31 (Wed) 10:00"
    assert questions[0]["answers"] == ["41"]


def test_icl_examples(mirror, tmp_path):
    rows, _ = build("icl_trec_coarse", mirror, tmp_path)
    row = rows[0]
    check_chunks(rows, 1024)
    assert len(row["chunks"]) > 1
    for sentence, label in EXAMPLES:  # every example whole, with its label, in exactly one chunk
        assert sum(f"Sentence: {sentence}\nLabel: {label}" in c for c in row["chunks"]) == 1
    assert sum(c.count("Sentence: ") for c in row["chunks"]) == len(EXAMPLES)
    assert "label: " not in " ".join(row["chunks"])
    assert [q["answers"] for q in row["questions"]] == [["3"], ["5"]]
    assert row["questions"][0]["question"].startswith("Sentence: who built the bridge at Avalon ?")
    assert "\\boxed" in row["questions"][0]["question"]
    assert [q["question_id"] for q in row["questions"]] == ["icl-0", "icl-1"]


def test_parse_examples_keeps_trailing_text():
    pairs, rest = parse_examples("a b\nlabel: 1\n\nmulti\nline\nLabel : 2\ntrailing words")
    assert pairs == [("a b", "1"), ("multi line", "2")] and rest == "trailing words"


def test_infbench_summary_without_llm(mirror, tmp_path):
    rows, manifest = build("infbench_sum", mirror, tmp_path)
    assert len(rows) == 2 and len({r["instance_id"] for r in rows}) == 2  # detective_qa row left out
    check_chunks(rows, 2048)
    for row, seed in zip(rows, (1, 3), strict=True):
        (q,) = row["questions"]
        assert q["question_id"] == f"sum-{seed}"
        assert q["answers"] == [summary(seed)]
        first = row["chunks"][0].split(",", 1)[1][1:11]
        last = row["chunks"][-1].split(",", 1)[1][1:11]
        assert first == "2024-01-01"
        assert q["question"] == f"Summarize the content of the book I read from {first} to {last}."
        assert all("the user is reading a book" in c for c in row["chunks"])
        assert json.loads(row["metadata"])["keypoints"] == ["heroine", "Harwick"]
    assert manifest["llm_steps"]["keyword_extraction"]["status"] == "skipped"
    assert any("reference summary" in n for n in manifest["notes"])


class KeywordLLM:
    def describe(self):
        return {"name": "fake-keywords"}

    def generate(self, conversations, *, max_tokens):
        return ["<think>x</think>heroine, eight towns, Harwick." for _ in conversations]


def test_infbench_keywords_with_llm(mirror, tmp_path):
    rows, manifest = build("infbench_sum", mirror, tmp_path, llm=KeywordLLM())
    assert [q["answers"] for r in rows for q in r["questions"]] == [["heroine", "eight towns", "Harwick"]] * 2
    assert manifest["llm_steps"]["keyword_extraction"]["status"] == "applied"


def test_factconsolidation_facts(mirror, tmp_path):
    rows, _ = build("factconsolidation_sh", mirror, tmp_path)
    assert len(rows) == 1
    check_chunks(rows, 512)
    chunks = rows[0]["chunks"]
    assert len(chunks) > 2
    for k in range(150):  # each numbered fact whole in one chunk
        line = f"{k}. The capital of the realm {k} is the city of {PLACES[k % 8]}{k}."
        assert sum(line in c for c in chunks) == 1
    assert [q["answers"] for q in rows[0]["questions"]] == [["Harwick7"], ["Elsworth12"]]


def test_missing_source_and_malformed_rows(mirror, tmp_path):
    with pytest.raises(BuildError, match=r"eventqa_full.*found.*ruler_qa1_197K"):
        build("eventqa", mirror, tmp_path)
    bad = ruler_row("ruler_qa1_197K", 0, 25)
    bad["answers"] = bad["answers"][:1]
    write_hub_repo(tmp_path / "bad", REPO, {None: {"Accurate_Retrieval": [facts_row("x"), bad]}})
    with pytest.raises(RawFormatError) as err:
        build("ruler_qa1_197k", tmp_path / "bad", tmp_path / "out")
    message = str(err.value)
    assert "Accurate_Retrieval-00000-of-00001.parquet" in message
    assert "row 1" in message and "'answers'" in message


def test_sessions_fall_back_to_the_context(tmp_path):
    row = lme_row()
    row["metadata"]["haystack_sessions"] = None
    write_hub_repo(tmp_path / "hub", REPO, {None: {"Accurate_Retrieval": [row]}})
    rows, manifest = build("longmemeval_s", tmp_path / "hub", tmp_path / "out")
    check_chunks(rows, 2048)
    joined = norm(" ".join(rows[0]["chunks"]))
    assert all(c.startswith("[Chat session]\n") for c in rows[0]["chunks"])
    assert all(norm(line) in joined for line in row["context"].splitlines() if LONG_TURN not in line)
    assert all(step in joined for step in STEPS)
    assert any("no metadata.haystack_sessions" in n for n in manifest["notes"])


def test_recsys_gold_ids_become_titles_through_entity2id(tmp_path):
    dialogue = "User: I loved Heat and want another heist movie. Recommender: Try Ronin, it is tense. " * 20
    row = {
        "context": dialogue,
        "questions": ["User: something like Heat please"],
        "answers": [["101", "202", "999"]],
        "metadata": metadata("recsys_redial_full", qa_pair_ids=["r-0"]),
    }
    repo = write_hub_repo(tmp_path / "hub", REPO, {None: {"Test_Time_Learning": [row]}})
    entities = {
        "<http://dbpedia.org/resource/Ronin_(film)>": 101,
        "<http://dbpedia.org/resource/The_Town_(2010_film)>": 202,
    }
    (repo / "entity2id.json").write_text(json.dumps(entities))
    rows, manifest = build("recsys_redial", tmp_path / "hub", tmp_path / "out")
    (question,) = rows[0]["questions"]
    assert question["answers"] == ["Ronin (film)", "The Town (2010 film)", "999"]
    assert any("1 gold ids not in entity2id.json" in n for n in manifest["notes"])
    assert any(i.get("file") == "entity2id.json" for i in manifest["inputs"])
