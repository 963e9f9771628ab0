"""Mem-alpha's processed releases (`YuWangX/Memalpha`, `YuWangX/Memalpha-Memoryagentbench`), from a local
mirror in the hub layout written by the test."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.build import UnpinnedSourceWarning, build_task
from tasks.errors import RawFormatError
from tasks.manifest import load_built
from tasks.registry import get_task
from tasks.tokenization import get_counter

LONG_CHUNK = " ".join(f"word{k}" for k in range(3000))  # over 2048 tokens: released chunks are not re-checked


def release_row(instance_id: int, source: str, chunks: list[str], qas: list[dict], **meta) -> dict:
    return {
        "instance_id": instance_id,
        "prompt": "Memorise the conversation.",
        "chunks": json.dumps(chunks),
        "questions_and_answers": json.dumps(qas),
        "data_source": source,
        "metadata": json.dumps(meta),
        "num_chunks": len(chunks),
        "num_questions": len(qas),
    }


def write_parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def squad_row(i: int) -> dict:
    chunks = [f"[Dialogue on day {k}] <User> Paragraph {i}.{k} mentions the river Avon." for k in range(3)]
    if i == 0:
        chunks.append(LONG_CHUNK)
    return release_row(
        i,
        "squad",
        chunks,
        [
            {"question": f"Which river, {i}?", "answer": "Avon"},
            {"question": f"Which paragraph, {i}?", "answer": f"{i}.1"},
        ],
    )


MEMALPHA_TRAIN = [
    squad_row(0),
    squad_row(1),
    release_row(
        2,
        "booksum",
        ["[Event] <User> The knight rode north."],
        [{"question": "Summarize the book.", "answer": "knight, north, castle siege"}],
    ),
    release_row(
        3,
        "perltqa",
        ["Event about Ann.", "Dialogue with Ann."],
        [{"question": "Where did Ann study?", "answer": "Oxford; history"}],
    ),
    release_row(
        4,
        "lme_train",
        ["[Dialogue at timestamp 2023/05/01] <User> I adopted a cat."],
        [{"question": "What pet did I adopt?", "answer": "a cat"}],
    ),
    release_row(
        5,
        "icl_trec_coarse_6600shot_balance",
        ["Sentence: who is he ?\nLabel: 3"],
        [
            {"question": "Sentence: what is it ?\nWhat are the labels?", "answer": ["1"]},
            {"question": "Sentence: where is it ?\nWhat are the labels?", "answer": 4},
        ],
    ),
]
MEMALPHA_TEST = [
    squad_row(7),
    release_row(8, "perltqa", ["Event about Bo."], [{"question": "What does Bo play?", "answer": "chess ; go"}]),
    release_row(
        9,
        "booksum",
        ["[Event] <User> The sailor came home."],
        [{"question": "Summarize the book.", "answer": ["sailor", "home"]}],
    ),
    release_row(
        10,
        "icl_trec_coarse_6600shot_balance",
        ["Sentence: when was it ?\nLabel: 5"],
        [{"question": "Sentence: who was it ?\nWhat are the labels?", "answer": "3"}],
    ),
]
MAB_TEST = [
    release_row(
        0,
        "ruler_qa1_197K",
        ["[Dialogue] <User> Document 1: Paris is in France."],
        [{"question": "Which country?", "answer": ["France", "France", "the French Republic"]}],
        sub_source="ruler_qa1_197K",
    ),
    release_row(
        1,
        "infbench_sum_eng_shots2",
        ["[Event] <User> Chapter one."],
        [
            {
                "question": "Summarize the content of the book I read from a to b.",
                "answer": "whale, captain Ahab, the sea",
            }
        ],
        sub_source="infbench_sum_eng_shots2",
    ),
    release_row(
        2,
        "infbench_sum_eng_shots2",
        ["[Event] <User> Chapter two."],
        [{"question": "Summarize the book I read from c to d.", "answer": "sea, ship"}],
    ),
    release_row(3, "ruler_qa2_421K", ["[Dialogue] <User> Document 2."], [{"question": "Who?", "answer": ["nobody"]}]),
]


# The paper's Table 8 ICL sets, one row each in the release's layout: chunks of labelled examples packed
# by sentence up to the release's own sizes (Clinic150's ~3,440 tokens per chunk among them), questions
# with list golds. The test holds the built chunks to these strings, byte for byte.
ICL_RELEASE = {
    "icl_banking77": "icl_banking77_5900shot_balance",
    "icl_clinic150": "icl_clinic150_7050shot_balance",
    "icl_nlu": "icl_nlu_8296shot_balance",
    "icl_trec_coarse": "icl_trec_coarse_6600shot_balance",
    "icl_trec_fine": "icl_trec_fine_6400shot_balance",
}


def icl_row(index: int, source: str) -> dict:
    examples = [f"Sentence: how do I reset card {k} for {source}\nLabel: {k % 7}" for k in range(400)]
    header = "[Dialogue between User and Assistant on 2024-01-0{day} 00:00]\n<User>Learn these labelled examples."
    chunks = [
        header.format(day=c + 1) + "\n\n" + "\n\n".join(examples[c * 200 : (c + 1) * 200]) + "\n<Assistant>Learned."
        for c in range(2)
    ]
    chunks.append("[Dialogue]\n<User>Sentence: trailing  spaces  kept \nLabel: 3\n<Assistant>Ok.")
    qas = [{"question": f"Sentence: which card {q}?\nWhat are the labels?", "answer": [str(q % 7)]} for q in range(5)]
    return release_row(index, source, chunks, qas, sub_source=source)


MAB_TEST += [icl_row(10 + i, source) for i, source in enumerate(ICL_RELEASE.values())]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    write_parquet(root / "YuWangX/Memalpha/train.parquet", MEMALPHA_TRAIN)
    write_parquet(root / "YuWangX/Memalpha/test.parquet", MEMALPHA_TEST)
    write_parquet(root / "YuWangX/Memalpha-Memoryagentbench/test.parquet", MAB_TEST)
    return root


def build(name: str, mirror: Path, out: Path):
    with pytest.warns(UnpinnedSourceWarning, match=f"UNPINNED SOURCE: {name} "):  # no release has a pinned commit
        result = release_build(name, mirror, out)
    return load_built(result.path)


def release_build(name: str, mirror: Path, out: Path):
    return build_task(name, out, origin="release", hub_mirror=mirror, tokenizer="simple", show_progress=False)


def test_memalpha_squad_release(mirror, tmp_path):
    data, manifest = build("squad", mirror, tmp_path)
    assert len(data["train"]) == 2 and len(data["validation"]) == 1
    assert data["train"][0]["chunks"] == json.loads(MEMALPHA_TRAIN[0]["chunks"])  # used as released
    assert data["validation"][0]["chunks"] == json.loads(MEMALPHA_TEST[0]["chunks"])
    assert [q["answers"] for q in data["train"][0]["questions"]] == [["Avon"], ["0.1"]]
    assert manifest["chunk_limit_enforced"] is False
    assert any("used as released" in note for note in manifest["notes"])
    assert {i["file"] for i in manifest["inputs"]} == {"train.parquet", "test.parquet"}
    meta = json.loads(data["train"][0]["metadata"])
    assert meta["release_instance_id"] == 0 and meta["release_file"] == "train.parquet"
    ids = list(data["train"]["instance_id"]) + list(data["validation"]["instance_id"])
    assert len(set(ids)) == 3
    _, manifest2 = build("squad", mirror, tmp_path / "again")
    assert manifest2["sha256"] == manifest["sha256"]


def test_keyword_answers_are_split(mirror, tmp_path):
    data, _ = build("booksum", mirror, tmp_path / "booksum")
    assert data["train"][0]["questions"][0]["answers"] == ["knight", "north", "castle siege"]
    assert data["validation"][0]["questions"][0]["answers"] == ["sailor", "home"]  # a list stays a list
    data, _ = build("perltqa", mirror, tmp_path / "perltqa")
    assert data["train"][0]["questions"][0]["answers"] == ["Oxford", "history"]
    assert data["validation"][0]["questions"][0]["answers"] == ["chess", "go"]


def test_lme_train_and_ttl_release(mirror, tmp_path):
    data, _ = build("lme_train", mirror, tmp_path / "lme")
    assert list(data) == ["train"] and len(data["train"]) == 1
    assert data["train"][0]["questions"][0]["answers"] == ["a cat"]
    data, manifest = build("ttl_trec_coarse", mirror, tmp_path / "ttl")
    assert [q["answers"] for q in data["train"][0]["questions"]] == [["1"], ["4"]]
    assert any("contamination" in note and "MemoryAgentBench" in note for note in manifest["notes"])
    assert json.loads(data["train"][0]["metadata"])["questions_from"] == "MemoryAgentBench test set"


def test_mab_release(mirror, tmp_path):
    data, manifest = build("ruler_qa1_197k", mirror, tmp_path / "ruler")
    (row,) = data["test"]  # the ruler_qa2 row is not picked up
    assert row["questions"][0]["answers"] == ["France", "the French Republic"]
    assert json.loads(row["metadata"])["release_metadata"] == {"sub_source": "ruler_qa1_197K"}
    assert manifest["inputs"][0]["hub"] == "YuWangX/Memalpha-Memoryagentbench"
    data, _ = build("infbench_sum", mirror, tmp_path / "sum")
    assert [r["questions"][0]["answers"] for r in data["test"]] == [
        ["whale", "captain Ahab", "the sea"],
        ["sea", "ship"],
    ]


@pytest.mark.parametrize("name", list(ICL_RELEASE))
def test_icl_sets_from_the_release_are_the_papers_chunks(mirror, tmp_path, name):
    data, manifest = build(name, mirror, tmp_path / name)
    (row,) = data["test"]
    released = next(r for r in MAB_TEST if r["data_source"] == ICL_RELEASE[name])
    assert row["chunks"] == json.loads(released["chunks"])  # every chunk, in order, byte for byte
    counts = get_counter("simple").count_many(row["chunks"])
    assert max(counts) > get_task(name).chunk_size  # released chunk sizes are kept, not re-cut
    qas = json.loads(released["questions_and_answers"])
    assert [q["question"] for q in row["questions"]] == [qa["question"] for qa in qas]
    assert [q["answers"] for q in row["questions"]] == [qa["answer"] for qa in qas]
    assert manifest["origin"] == "release" and manifest["chunk_limit_enforced"] is False
    assert manifest["source"]["id"] == "YuWangX/Memalpha-Memoryagentbench"


def test_malformed_release_cells(mirror, tmp_path):
    bad = tmp_path / "bad"
    broken = dict(MAB_TEST[0], chunks='["unterminated')
    write_parquet(bad / "YuWangX/Memalpha-Memoryagentbench/test.parquet", [MAB_TEST[1], broken])
    with pytest.raises(RawFormatError) as err:
        release_build("ruler_qa1_197k", bad, tmp_path / "out")
    message = str(err.value)
    assert "test.parquet" in message and "row 1" in message and "'chunks'" in message
    no_answer = dict(MAB_TEST[0], questions_and_answers=json.dumps([{"question": "Q?", "answer": None}]))
    write_parquet(bad / "YuWangX/Memalpha-Memoryagentbench/test.parquet", [no_answer])
    with pytest.raises(RawFormatError, match=r"row 0, field 'questions_and_answers\[0\]\.answer'"):
        release_build("ruler_qa1_197k", bad, tmp_path / "out")
    write_parquet(
        bad / "YuWangX/Memalpha-Memoryagentbench/test.parquet",
        [{k: v for k, v in MAB_TEST[0].items() if k != "data_source"}],
    )
    with pytest.raises(RawFormatError, match=r"missing column.*data_source"):
        release_build("ruler_qa1_197k", bad, tmp_path / "out")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[" * 100_000 + "]" * 100_000, "not readable JSON (nested too deep)"),
        ('{"n": ' + "7" * 5000 + "}", "not readable JSON (Exceeds the limit (4300 digits) for integer string"),
    ],
    ids=["nested 100,000 levels", "an integer of 5,000 digits"],
)
def test_raw_json_that_json_gives_up_on_is_a_format_error(text, why, tmp_path):
    """RecursionError and ValueError from json: a RawFormatError naming the file and line, not a traceback."""
    from tasks.sources.common import read_json, read_jsonl

    (tmp_path / "whole.json").write_text(text)
    with pytest.raises(RawFormatError, match=re.escape(f"{tmp_path / 'whole.json'}: {why}")):
        read_json(tmp_path / "whole.json")
    (tmp_path / "lines.jsonl").write_text('{"n": 1}\n' + text + "\n")
    with pytest.raises(RawFormatError, match=re.escape(f"{tmp_path / 'lines.jsonl'}, line 2: {why}")):
        list(read_jsonl(tmp_path / "lines.jsonl"))
