"""TTL (ttl_trec_coarse, ttl_nlu) and raw ICL (icl_*) builds on the real TREC, Banking77, CLINC150, NLU."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hublayout import write_hub_repo

from tasks.build import build_task
from tasks.errors import RawFormatError
from tasks.manifest import load_built
from tasks.registry import get_task
from tasks.sources.classification import TREC_COARSE, TREC_FINE, sentence_key
from tasks.tokenization import get_counter

pytestmark = pytest.mark.realdata

TTL = ("ttl_trec_coarse", "ttl_nlu")
ICL = ("icl_banking77", "icl_clinic150", "icl_nlu", "icl_trec_coarse", "icl_trec_fine")
EXAMPLE = re.compile(r"^Sentence: (.*)\nLabel: (\d+)$", re.M)


def build(name: str, raw: Path, out: Path, **kw):
    return build_task(name, out, origin="raw", raw_dir=raw, tokenizer="simple", show_progress=False, **kw)


def rows_of(result) -> dict[str, list[dict]]:
    data, _ = load_built(result.path)
    return {split: list(data[split]) for split in data}


def question_sentence(question: dict) -> str:
    return question["question"].split("\n")[0].removeprefix("Sentence: ")


def context_pairs(row: dict) -> list[tuple[str, str]]:
    return [pair for chunk in row["chunks"] for pair in EXAMPLE.findall(chunk)]


def sentences_of(rows: dict[str, list[dict]]) -> dict[str, set[str]]:
    """Normalised context and question sentences of a build, per split."""
    return {
        split: {sentence_key(t) for r in split_rows for t, _ in context_pairs(r)}
        | {sentence_key(question_sentence(q)) for r in split_rows for q in r["questions"]}
        for split, split_rows in rows.items()
    }


# ------------------------------------------------------------------ gold labels read independently


def trec_gold(raw: Path, fine: bool) -> dict[str, set[int]]:
    gold: dict[str, set[int]] = {}
    for line in (raw / "trec" / "train_5500.label").read_bytes().decode("latin-1").splitlines():
        label, text = line.split(" ", 1)
        label_id = TREC_FINE.index(label) if fine else TREC_COARSE.index(label.split(":")[0])
        gold.setdefault(sentence_key(text.replace("\xf0", " ")), set()).add(label_id)
    return gold


def nlu_rows(raw: Path) -> list[tuple[str, str]]:
    out = []
    for path in sorted((raw / "nlu").rglob("*.csv")):
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter=";")
            out += [(r["answer_from_anno"], f"{r['scenario']}_{r['intent']}") for r in reader]
    return out


def gold_labels(name: str, raw: Path) -> tuple[list[str], dict[str, set[int]]]:
    """(label names by id, normalised sentence -> label ids) for a task, from the raw files."""
    dataset = get_task(name).params["dataset"]
    if dataset == "trec":
        dataset = f"trec_{get_task(name).params['label_space']}"
    if dataset.startswith("trec"):
        fine = dataset == "trec_fine"
        return list(TREC_FINE if fine else TREC_COARSE), trec_gold(raw, fine)
    pairs: list[tuple[str, str]]
    if dataset == "banking77":
        names = json.loads((raw / "banking77" / "categories.json").read_text())
        with open(raw / "banking77" / "train.csv", encoding="utf-8", newline="") as f:
            pairs = [(r["text"], r["category"]) for r in csv.DictReader(f)]
    elif dataset == "clinic150":
        doc = json.loads((raw / "clinc150" / "data_full.json").read_text())
        pairs = [tuple(p) for split in ("train", "oos_train", "test", "oos_test") for p in doc[split]]
        names = [*sorted({i for _, i in pairs} - {"oos"}), "oos"]
    else:
        pairs = nlu_rows(raw)
        names = sorted({label for _, label in pairs})
    gold: dict[str, set[int]] = {}
    for text, label in pairs:
        gold.setdefault(sentence_key(text), set()).add(names.index(label))
    return names, gold


@pytest.fixture(scope="module")
def built(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("classification")
    results = {name: build(name, raw_dir, out) for name in TTL + ICL}
    return {name: (result, rows_of(result)) for name, result in results.items()}


# ------------------------------------------------------------------ every task


@pytest.mark.parametrize("name", TTL + ICL)
def test_labels_chunks_and_answers_match_the_source(built, raw_dir, name):
    spec = get_task(name)
    counter = get_counter("simple")
    names, gold = gold_labels(name, raw_dir)
    expected_count = {"trec_coarse": 6, "trec_fine": 50, "banking77": 77, "clinic150": 151}
    _, rows = built[name]
    for split_rows in rows.values():
        for row in split_rows:
            meta = json.loads(row["metadata"])
            assert meta["labels"] == {str(i): n for i, n in enumerate(names)}
            dataset = name.removeprefix("icl_").removeprefix("ttl_")
            assert len(names) == expected_count.get(dataset, len(names))
            assert max(counter.count_many(row["chunks"])) <= spec.chunk_size
            pairs = context_pairs(row)
            assert pairs and all(int(label) in gold[sentence_key(text)] for text, label in pairs)
            assert len(row["questions"]) == spec.params["questions"]
            for q in row["questions"]:
                answers = {int(a) for a in q["answers"]}
                assert answers <= set(range(len(names)))
                assert answers == gold[sentence_key(question_sentence(q))]


def test_nlu_label_space_is_the_intents_in_the_files(built, raw_dir):
    intents = {label for _, label in nlu_rows(raw_dir)}
    for name in ("ttl_nlu", "icl_nlu"):
        row = next(iter(built[name][1].values()))[0]
        assert sorted(json.loads(row["metadata"])["labels"].values()) == sorted(intents)
    assert len(intents) == 64


@pytest.mark.parametrize("name", TTL + ICL)
def test_rebuild_gives_the_same_hash(built, raw_dir, tmp_path, name):
    assert build(name, raw_dir, tmp_path).manifest["sha256"] == built[name][0].manifest["sha256"]


# ------------------------------------------------------------------ TTL


@pytest.mark.parametrize("name", TTL)
def test_ttl_instances(built, name):
    spec = get_task(name)
    counter = get_counter("simple")
    result, rows = built[name]
    # the original's ttl_train: 400 slots split 360/40, train sampled to 100 across both tasks (Table 7: 51 + 49)
    assert [len(rows["train"]), len(rows["validation"])] == {"ttl_trec_coarse": [51, 20], "ttl_nlu": [49, 20]}[name]
    n_labels = {"ttl_trec_coarse": 6, "ttl_nlu": 64}[name]
    for split_rows in rows.values():
        for row in split_rows:
            assert len(row["chunks"]) == spec.params["chunks_per_instance"]
            assert {int(label) for _, label in context_pairs(row)} == set(range(n_labels))  # all labels shown
            target = spec.params["chunk_tokens"]
            sizes = counter.count_many(row["chunks"][1:])  # chunk 0 may also hold the added labels
            assert all(0.8 * target <= n <= target for n in sizes)
    assert "ttl-train-context" in result.manifest["notes"][0]


@pytest.mark.parametrize("name", TTL)
def test_ttl_questions_and_splits_share_no_sentence(built, name):
    _, rows = built[name]
    context = {
        split: {sentence_key(t) for r in split_rows for t, _ in context_pairs(r)} for split, split_rows in rows.items()
    }
    every_context = context["train"] | context["validation"]
    for split_rows in rows.values():
        for row in split_rows:
            asked = {sentence_key(question_sentence(q)) for q in row["questions"]}
            assert len(asked) == len(row["questions"])
            assert not asked & every_context
    sentences = sentences_of(rows)
    assert not sentences["train"] & sentences["validation"]
    train_ids = {r["instance_id"] for r in rows["train"]}
    assert not train_ids & {r["instance_id"] for r in rows["validation"]}


@pytest.mark.parametrize(
    ("ttl", "icl"),
    [("ttl_trec_coarse", "icl_trec_coarse"), ("ttl_trec_coarse", "icl_trec_fine"), ("ttl_nlu", "icl_nlu")],
)
def test_ttl_and_icl_share_no_sentence(built, ttl, icl):
    ttl_sentences = set().union(*sentences_of(built[ttl][1]).values())
    icl_sentences = sentences_of(built[icl][1])["test"]
    assert ttl_sentences and icl_sentences
    assert not ttl_sentences & icl_sentences


def test_ttl_tasks_share_one_cap_of_100_training_instances(built):
    slots = {name: [json.loads(r["metadata"])["slot"] for r in built[name][1]["train"]] for name in TTL}
    assert len(slots["ttl_trec_coarse"]) + len(slots["ttl_nlu"]) == 100
    assert all(len(set(s)) == len(s) for s in slots.values())


def test_ttl_split_is_the_originals_draw(built):
    """The original's steps, written out with the libraries it used: random.shuffle of the merged 400
    instances (TREC-coarse first), int(0.9 n) to train, then pandas' df.sample(n=100, random_state=42)."""
    import random

    import pandas as pd

    merged = [("ttl_trec_coarse", i) for i in range(200)] + [("ttl_nlu", i) for i in range(200)]
    random.seed(42)
    random.shuffle(merged)
    train = pd.DataFrame(merged[:360], columns=["task", "slot"]).sample(n=100, random_state=42)
    validation = merged[360:]
    for name in TTL:
        rows = built[name][1]
        got = {split: [json.loads(r["metadata"])["slot"] for r in rows[split]] for split in rows}
        assert got["train"] == train[train.task == name].slot.tolist()
        assert got["validation"] == [slot for task, slot in validation if task == name]


def test_ttl_limit_keeps_the_first_instances(built, raw_dir, tmp_path):
    small = rows_of(build("ttl_trec_coarse", raw_dir, tmp_path, limit=3))
    full = built["ttl_trec_coarse"][1]
    for split, split_rows in small.items():
        assert split_rows == full[split][:3]


def test_ttl_trec_from_the_hub_layout_equals_raw(built, raw_dir, tmp_path):
    rows = []
    for line in (raw_dir / "trec" / "train_5500.label").read_bytes().replace(b"\xf0", b" ").splitlines():
        label, _, text = line.decode("latin-1").partition(" ")
        rows.append(
            {
                "text": text,
                "coarse_label": TREC_COARSE.index(label.split(":")[0]),
                "fine_label": TREC_FINE.index(label),
            }
        )
    write_hub_repo(tmp_path / "hub", "CogComp/trec", {None: {"train": rows, "test": rows[:10]}})
    hub = build_task(
        "ttl_trec_coarse",
        tmp_path / "out",
        origin="hub",
        hub_mirror=tmp_path / "hub",
        tokenizer="simple",
        show_progress=False,
    )
    assert hub.manifest["sha256"] == built["ttl_trec_coarse"][0].manifest["sha256"]


# ------------------------------------------------------------------ ICL


@pytest.mark.parametrize("name", ICL)
def test_icl_instance(built, raw_dir, name):
    spec = get_task(name)
    _, rows = built[name]
    (row,) = rows["test"]
    meta = json.loads(row["metadata"])
    pairs = context_pairs(row)
    assert len(pairs) == spec.params["shots"] == meta["shots"]
    assert sum(chunk.count("\nLabel: ") for chunk in row["chunks"]) == spec.params["shots"]
    per_label = Counter(int(label) for _, label in pairs)
    assert len(per_label) == len(meta["labels"])  # every label is shown (the samples have them all)
    assert max(per_label.values()) - min(per_label.values()) <= 1  # label-balanced
    asked = {sentence_key(question_sentence(q)) for q in row["questions"]}
    assert len(asked) == spec.params["questions"]
    assert not asked & {sentence_key(t) for t, _ in pairs}
    if name == "icl_clinic150":  # the only sample with test data: questions from it
        doc = json.loads((raw_dir / "clinc150" / "data_full.json").read_text())
        assert asked <= {sentence_key(t) for split in ("test", "oos_test") for t, _ in doc[split]}
        assert meta["questions_from"].startswith("test data")
    else:
        assert meta["questions_from"].startswith("icl-questions pool")


def test_icl_questions_come_from_a_test_file_when_present(raw_dir, tmp_path):
    """With TREC_10.label beside the train file, questions come from it, and sentences asked stay out
    of the context even when the train file holds them too."""
    trec = tmp_path / "raw" / "trec"
    trec.mkdir(parents=True)
    shutil.copy(raw_dir / "trec" / "train_5500.label", trec)
    lines = (raw_dir / "trec" / "train_5500.label").read_bytes().splitlines(keepends=True)
    (trec / "TREC_10.label").write_bytes(b"".join(lines[:150]))
    (row,) = rows_of(build("icl_trec_coarse", tmp_path / "raw", tmp_path / "out"))["test"]
    test_sentences = {
        sentence_key(line.replace(b"\xf0", b" ").decode("latin-1").split(" ", 1)[1]) for line in lines[:150]
    }
    asked = {sentence_key(question_sentence(q)) for q in row["questions"]}
    assert len(asked) == 100 and asked <= test_sentences
    assert not asked & {sentence_key(t) for t, _ in context_pairs(row)}
    assert json.loads(row["metadata"])["questions_from"] == "test data (TREC_10.label)"


# ------------------------------------------------------------------ malformed input


def _copy_source(raw_dir: Path, tmp_path: Path, source: str) -> Path:
    shutil.copytree(raw_dir / source, tmp_path / source)
    return tmp_path / source


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (b"DESC How did it go ?\n", "label"),
        (b"ENTY:bogus What is it ?\n", "label"),
        (b"NUM:date\n", "question"),
    ],
)
def test_malformed_trec_line_names_file_line_and_field(raw_dir, tmp_path, bad, field):
    path = _copy_source(raw_dir, tmp_path, "trec") / "train_5500.label"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:2], bad, *lines[2:]]))
    with pytest.raises(RawFormatError) as err:
        build("ttl_trec_coarse", tmp_path, tmp_path / "out")
    assert (err.value.path, err.value.where, err.value.field) == (str(path), "line 3", field)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ("1;alarm;query;x;set an alarm;Set an alarm;extra\n", None),
        ("1;alarm;query;x\n", None),
        ("1;alarm;query;x;;Set an alarm.\n", "answer_from_anno"),
    ],
)
def test_malformed_nlu_csv_names_file_line_and_field(raw_dir, tmp_path, bad, field):
    path = _copy_source(raw_dir, tmp_path, "nlu") / "KFold_1" / "trainset" / "alarm_query.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join([*lines[:3], bad, *lines[3:]]), encoding="utf-8")
    with pytest.raises(RawFormatError) as err:
        build("ttl_nlu", tmp_path, tmp_path / "out")
    assert (err.value.path, err.value.where, err.value.field) == (str(path), "line 4", field)


def test_malformed_banking_and_clinc_name_the_place(raw_dir, tmp_path):
    path = _copy_source(raw_dir, tmp_path, "banking77") / "train.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "Where is my card?,no_such_category\n", encoding="utf-8")
    with pytest.raises(RawFormatError) as err:
        build("icl_banking77", tmp_path, tmp_path / "out")
    assert (err.value.path, err.value.field) == (str(path), "category")
    assert err.value.where == f"line {len(path.read_text(encoding='utf-8').splitlines())}"

    path = _copy_source(raw_dir, tmp_path, "clinc150") / "data_full.json"
    doc = json.loads(path.read_text())
    doc["test"][5] = ["only text"]
    path.write_text(json.dumps(doc))
    with pytest.raises(RawFormatError) as err:
        build("icl_clinic150", tmp_path, tmp_path / "out")
    assert (err.value.path, err.value.where) == (str(path), "record test[5]")
