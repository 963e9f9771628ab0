"""Length-scaling suite on the real SQuAD sample: same questions at every length, nested haystacks."""

from __future__ import annotations

import json

import pytest
from hublayout import write_hub_repo

from benchmark.cli import main
from tasks.build import build_task
from tasks.chunking import split_sentences
from tasks.errors import BuildError
from tasks.manifest import load_built
from tasks.sources.squad import read_squad_file
from tasks.tokenization import get_counter

pytestmark = pytest.mark.realdata


def build(name, raw_dir, out):
    return build_task(name, out, origin="raw", raw_dir=raw_dir, tokenizer="simple", show_progress=False)


@pytest.fixture(scope="module")
def raw_paragraphs(raw_dir):
    return [p for path in sorted((raw_dir / "squad").glob("*.json")) for p in read_squad_file(path)]


@pytest.fixture(scope="module")
def built(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("scaling")
    return {k: load_built(build(f"scaling_squad_{k}k", raw_dir, out).path)[0]["test"][0] for k in (8, 32)}


def haystack_paragraphs(row, paragraphs) -> set[str]:
    """The raw paragraphs whose every sentence occurs in the chunks."""
    text = "\n".join(row["chunks"])
    return {p.context for p in paragraphs if all(s.strip() in text for s in split_sentences(p.context))}


def test_same_questions_at_every_length(built, raw_paragraphs):
    qas = {qa.question_id: (p, qa) for p in raw_paragraphs for qa in p.qas}
    counter = get_counter("simple")
    ids = [[q["question_id"] for q in built[k]["questions"]] for k in (8, 32)]
    assert ids[0] == ids[1] and len(ids[0]) == 100
    golds = {qas[i][0].context for i in ids[0]}
    assert len(golds) == 100  # one question per gold paragraph
    for k in (8, 32):
        row = built[k]
        for q in row["questions"]:
            raw = qas[q["question_id"]][1]
            assert q["question"] == raw.question and q["answers"] == raw.answers
            assert counter.count(q["answers"][0]) < 5
            assert any(a in c for a in q["answers"] for c in row["chunks"])
        assert golds <= haystack_paragraphs(row, raw_paragraphs)


def test_context_fills_the_target_without_exceeding_it(built):
    counter = get_counter("simple")
    for k in (8, 32):
        row = built[k]
        counts = counter.count_many(row["chunks"])
        assert max(counts) <= 2048 and sum(counts) == row["context_tokens"]
        assert 0.9 * k * 1024 <= row["context_tokens"] <= k * 1024
        assert len(row["chunks"]) >= k // 2  # chunks are full size: about 2k tokens each


def test_shorter_haystack_is_nested_in_the_longer(built, raw_paragraphs):
    small = haystack_paragraphs(built[8], raw_paragraphs)
    large = haystack_paragraphs(built[32], raw_paragraphs)
    assert small < large and len(large) > 2 * len(small)
    meta = json.loads(built[32]["metadata"])
    assert meta["gold_paragraphs"] + meta["padding_paragraphs"] == len(large)


def test_gold_paragraphs_are_spread_through_the_haystack(built):
    for k in (8, 32):
        row = built[k]
        chunks = json.loads(row["metadata"])["gold_chunk"]
        assert set(chunks) == {q["question_id"] for q in row["questions"]}
        assert min(chunks.values()) == 0 and max(chunks.values()) == len(row["chunks"]) - 1


def test_rebuild_is_identical(raw_dir, tmp_path):
    first = build("scaling_squad_8k", raw_dir, tmp_path / "a")
    assert build("scaling_squad_8k", raw_dir, tmp_path / "b").manifest["sha256"] == first.manifest["sha256"]


def test_too_long_for_the_source_names_the_numbers(raw_dir, raw_paragraphs, tmp_path):
    available = sum(get_counter("simple").count_many(list(dict.fromkeys(p.context for p in raw_paragraphs))))
    with pytest.raises(BuildError) as err:
        build("scaling_squad_512k", raw_dir, tmp_path)
    message = str(err.value)
    assert str(512 * 1024) in message and str(available) in message
    assert not (tmp_path / "scaling_squad_512k").exists()


def synthetic_train(n: int) -> list[dict]:
    """SQuAD-layout train articles of made-up text (padding only: their questions must never be asked)."""
    words = "river mountain engine harbour violin glacier orchard lantern".split()
    paragraphs = []
    for i in range(n):
        text = " ".join(f"Fact {i}.{j} says the {words[(i + j) % 8]} is number {j}." for j in range(20))
        paragraphs.append(
            {
                "context": text,
                "qas": [
                    {
                        "id": f"train-{i}",
                        "question": f"What is fact {i}.0 about?",
                        "answers": [{"text": words[i % 8], "answer_start": text.find(words[i % 8])}],
                    }
                ],
            }
        )
    return [{"title": "Synthetic", "paragraphs": paragraphs}]


def squad_train_file(n: int) -> dict:
    """A SQuAD-layout training file of made-up paragraphs, three short-answer questions each."""
    words = "river mountain engine harbour violin glacier orchard lantern".split()
    paragraphs = []
    for i in range(n):
        text = " ".join(f"Record {i}.{j} says the {words[(i + j) % 8]} weighs {j} tons." for j in range(12))
        qas = [
            {
                "id": f"train-{i}-{j}",
                "question": f"What does record {i}.{j} describe?",
                "answers": [{"text": words[(i + j) % 8], "answer_start": text.find(words[(i + j) % 8])}],
            }
            for j in range(3)
        ]
        paragraphs.append({"context": text, "qas": qas})
    return {"data": [{"title": "Synthetic", "paragraphs": paragraphs}], "version": "1.1"}


def test_squad_training_task_stays_clear_of_the_scaling_questions(raw_dir, tmp_path, capsys):
    """With SQuAD's train and dev files in one folder, `squad` reads the train file only, so `tasks overlap`
    finds none of the length-scaling questions (nor passages) in it."""
    folder = tmp_path / "raw" / "squad"
    folder.mkdir(parents=True)
    for dev in (raw_dir / "squad").glob("*.json"):
        (folder / dev.name).symlink_to(dev)
    (folder / "train-v1.1.json").write_text(json.dumps(squad_train_file(600)))
    squad = build("squad", tmp_path / "raw", tmp_path / "out")
    build("scaling_squad_16k", tmp_path / "raw", tmp_path / "out")
    assert [i["file"] for i in squad.manifest["inputs"]] == ["squad/train-v1.1.json"]
    assert squad.manifest["splits"]["train"]["questions"] > 0
    assert (
        main(
            ["tasks", "overlap", str(tmp_path / "out" / "squad"), str(tmp_path / "out" / "scaling_squad_16k"), "--json"]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["questions"]["b"] == 100
    assert report["questions"]["shared"] == 0 and report["passages"]["shared"] == 0


def test_train_paragraphs_pad_what_validation_cannot_fill(raw_dir, tmp_path, built):
    train = synthetic_train(400)  # about 50k tokens on top of the sample's 226k
    (tmp_path / "raw" / "squad").mkdir(parents=True)
    for dev in (raw_dir / "squad").glob("*.json"):
        (tmp_path / "raw" / "squad" / dev.name).symlink_to(dev)
    (tmp_path / "raw" / "squad" / "train-v1.1.json").write_text(json.dumps({"data": train, "version": "1.1"}))
    raw = build("scaling_squad_256k", tmp_path / "raw", tmp_path / "out_raw")
    row = load_built(raw.path)[0]["test"][0]
    assert [q["question_id"] for q in row["questions"]] == [q["question_id"] for q in built[8]["questions"]]
    assert 0.9 * 256 * 1024 <= row["context_tokens"] <= 256 * 1024
    assert json.loads(row["metadata"])["padding_from_train"] > 0

    def hub_rows(articles):
        return [
            {
                "id": qa["id"],
                "title": a["title"],
                "context": p["context"],
                "question": qa["question"],
                "answers": {
                    "text": [x["text"] for x in qa["answers"]],
                    "answer_start": [x["answer_start"] for x in qa["answers"]],
                },
            }
            for a in articles
            for p in a["paragraphs"]
            for qa in p["qas"]
        ]

    dev = [
        article
        for path in sorted((raw_dir / "squad").glob("*.json"))
        for article in json.loads(path.read_text())["data"]
    ]
    write_hub_repo(
        tmp_path / "mirror",
        "rajpurkar/squad",
        {"plain_text": {"train": hub_rows(train), "validation": hub_rows(dev)}},
    )
    hub = build_task(
        "scaling_squad_256k",
        tmp_path / "out_hub",
        origin="hub",
        hub_mirror=tmp_path / "mirror",
        tokenizer="simple",
        show_progress=False,
    )
    assert hub.manifest["sha256"] == raw.manifest["sha256"]
