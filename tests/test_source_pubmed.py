"""PubMed-RCT builder: release-format and hub-layout fixtures (there is no raw sample), made here in tmp."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hublayout import write_hub_repo

from tasks.build import build_task
from tasks.errors import RawFormatError
from tasks.manifest import load_built
from tasks.registry import get_task
from tasks.sources.pubmed_rct import LABELS, read_pubmed_file
from tasks.tokenization import get_counter

N_ABSTRACTS = 1500  # enough for one validation instance (about 750 sentences)
SECTIONS = (  # label, sentence templates, how many sentences of the label an abstract has
    (
        "BACKGROUND",
        (
            "{d} affects about {k} % of {p} and raises {o} {j}-fold .",
            "Little is known about the effect of {t} on {o} in {p} beyond {w} weeks .",
        ),
        (0, 2),
    ),
    (
        "OBJECTIVE",
        (
            "To assess whether {w} weeks of {t} reduce {o} in {p} with {d} .",
            "We aimed to compare {t} with placebo for {o} in {n} {p} .",
        ),
        (1, 1),
    ),
    (
        "METHODS",
        (
            "In this randomised trial , {n} {p} with {d} were assigned to {t} or placebo .",
            "The primary outcome was {o} at {w} weeks , assessed by blinded investigators .",
            "Participants received {t} twice daily for {w} weeks .",
        ),
        (2, 4),
    ),
    (
        "RESULTS",
        (
            "{o} fell by {k} % in the {t} group versus {j} % with placebo ( p = 0.0{w} ) .",
            "Adverse events occurred in {k} of {n} {p} given {t} .",
            "At {w} weeks , {o} was lower with {t} ( difference {k} , 95 % CI {j} to {w} ) .",
        ),
        (2, 4),
    ),
    (
        "CONCLUSIONS",
        (
            "{t} reduced {o} by {k} % in {p} with {d} .",
            "These findings support {w} weeks of {t} for {p} with {d} .",
        ),
        (1, 2),
    ),
)
WORDS = {
    "d": (
        "type 2 diabetes",
        "chronic heart failure",
        "asthma",
        "major depression",
        "knee osteoarthritis",
        "hypertension",
        "COPD",
        "migraine",
        "psoriasis",
        "atrial fibrillation",
    ),
    "o": (
        "HbA1c",
        "hospital admission",
        "pain score",
        "systolic blood pressure",
        "relapse",
        "mortality",
        "exacerbation rate",
        "quality of life",
    ),
    "p": ("adults", "older adults", "children", "women", "outpatients", "veterans"),
    "t": (
        "metformin",
        "low-dose aspirin",
        "a structured exercise programme",
        "cognitive behavioural therapy",
        "vitamin D",
        "an inhaled corticosteroid",
        "acupuncture",
        "a nurse-led clinic",
    ),
}


def make_abstracts(seed: int = 0) -> list[tuple[str, list[tuple[str, str]]]]:
    """Synthetic abstracts: (PubMed-style id, [(label, sentence)]); no sentence occurs twice."""
    rng = random.Random(seed)
    abstracts, seen = [], set()
    for a in range(N_ABSTRACTS):
        sentences = []
        for label, templates, (low, high) in SECTIONS:
            for _ in range(rng.randint(low, high)):
                text = ""
                while not text or text in seen:  # every template has a number: this ends quickly
                    values = {k: rng.choice(v) for k, v in WORDS.items()}
                    values.update(
                        n=str(rng.randint(40, 4000)),
                        w=str(rng.randint(4, 96)),
                        k=str(rng.randint(1, 60)),
                        j=f"{rng.randint(1, 60)}.{a % 10}",
                    )
                    text = rng.choice(templates).format(**values)
                seen.add(text)
                sentences.append((label, text))
        abstracts.append((str(24000000 + 7919 * a), sentences))
    return abstracts


def write_release(path: Path, abstracts) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for abstract_id, sentences in abstracts:
            f.write(f"###{abstract_id}\n")
            for label, text in sentences:
                f.write(f"{label}\t{text}\n")
            f.write("\n")
    return path


@pytest.fixture(scope="module")
def abstracts():
    return make_abstracts()


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory, abstracts) -> Path:
    root = tmp_path_factory.mktemp("raw")
    write_release(root / "pubmed_rct" / "train.txt", abstracts)
    return root


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory, abstracts) -> Path:
    root = tmp_path_factory.mktemp("hub")
    rows = [
        {"labels": LABELS.index(label), "text": text, "uid": int(aid)}
        for aid, sentences in abstracts
        for label, text in sentences
    ]
    write_hub_repo(root, "pietrolesci/pubmed-200k-rct", {None: {"train": rows}})
    assert (root / "pietrolesci/pubmed-200k-rct/data/train-00000-of-00001.parquet").is_file()
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory, raw_root):
    out = tmp_path_factory.mktemp("built")
    return build_task("pubmed_rct", out, origin="raw", raw_dir=raw_root, tokenizer="simple", show_progress=False)


def _rows(result):
    data, _ = load_built(result.path)
    return {split: list(data[split]) for split in data}


def _labelled_lines(chunk: str) -> list[tuple[str, str]]:
    return re.findall(r"^Sentence: (.*)\nLabel: (\d+)$", chunk, flags=re.M)


def test_instances_follow_the_construction(built, abstracts):
    spec = get_task("pubmed_rct")
    counter = get_counter("simple")
    gold = {text: str(LABELS.index(label)) for _, sentences in abstracts for label, text in sentences}
    rows = _rows(built)
    assert rows["train"] and rows["validation"]
    for split_rows in rows.values():
        for row in split_rows:
            meta = json.loads(row["metadata"])
            assert len(row["chunks"]) == spec.params["chunks_per_instance"]
            assert len(row["questions"]) == spec.params["questions"]
            counts = counter.count_many(row["chunks"])
            for n, budget in zip(counts, meta["chunk_budgets"], strict=True):
                assert n <= budget <= spec.chunk_size
                assert budget >= spec.params["min_chunk_tokens"]
            lines = [pair for chunk in row["chunks"] for pair in _labelled_lines(chunk)]
            assert len(lines) == meta["context_examples"]
            assert all(gold[text] == label for text, label in lines)  # each shown label is the sentence's
            context = {text for text, _ in lines}
            for q in row["questions"]:
                text = q["question"].split("\n")[0].removeprefix("Sentence: ")
                assert q["answers"] == [gold[text]]
                assert text not in context
                assert q["answers"][0] in {str(i) for i in range(len(LABELS))}


def test_splits_are_disjoint_by_abstract_and_sentences_used_once(built, abstracts):
    owner = {text: aid for aid, sentences in abstracts for _, text in sentences}
    rows = _rows(built)
    seen_abstracts = {}
    for split, split_rows in rows.items():
        used: list[str] = []
        for row in split_rows:
            used += [text for chunk in row["chunks"] for text, _ in _labelled_lines(chunk)]
            used += [q["question"].split("\n")[0].removeprefix("Sentence: ") for q in row["questions"]]
        assert len(used) == len(set(used)), f"{split}: a sentence is used twice"
        seen_abstracts[split] = {owner[text] for text in used}
    assert not seen_abstracts["train"] & seen_abstracts["validation"]
    train_ids = {r["instance_id"] for r in rows["train"]}
    assert not train_ids & {r["instance_id"] for r in rows["validation"]}


def test_counts_add_up_against_the_file(built, abstracts):
    notes = built.manifest["notes"]
    pattern = r"(\w+): (\d+) abstracts, (\d+) sentences, (\d+) of (\d+) instances built"
    found = [re.match(pattern, n) for n in notes]
    assert all(found)
    assert sum(int(m[2]) for m in found) == len(abstracts)
    assert sum(int(m[3]) for m in found) == sum(len(s) for _, s in abstracts)
    stats, rows = built.manifest["splits"], _rows(built)
    for m in found:
        split, sentences, instances, slots = m[1], int(m[3]), int(m[4]), int(m[5])
        assert stats[split]["instances"] == instances <= slots
        assert stats[split]["questions"] == 100 * instances
        used = sum(json.loads(r["metadata"])["context_examples"] + 100 for r in rows[split])
        assert used <= sentences
        if instances < slots:  # stopped early: what is left cannot hold even the smallest instance built
            smallest = min(json.loads(r["metadata"])["context_examples"] for r in rows[split])
            assert sentences - used < smallest + 100 + 100


def test_rebuild_and_hub_layout_give_the_same_hash(built, raw_root, hub_root, abstracts, tmp_path):
    again = build_task(
        "pubmed_rct", tmp_path / "a", origin="raw", raw_dir=raw_root, tokenizer="simple", show_progress=False
    )
    assert again.manifest["sha256"] == built.manifest["sha256"]
    hub = build_task(
        "pubmed_rct",
        tmp_path / "b",
        origin="hub",
        hub_mirror=hub_root,
        tokenizer="simple",
        show_progress=False,
    )
    assert hub.manifest["sha256"] == built.manifest["sha256"]
    assert hub.manifest["inputs"][0]["rows"] == sum(len(s) for _, s in abstracts)


def test_limit_keeps_the_first_instances(built, raw_root, tmp_path):
    small = build_task(
        "pubmed_rct",
        tmp_path,
        origin="raw",
        raw_dir=raw_root,
        tokenizer="simple",
        limit=2,
        show_progress=False,
    )
    full = _rows(built)
    for split, rows in _rows(small).items():
        assert [r["instance_id"] for r in rows] == [r["instance_id"] for r in full[split][:2]]


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("###1\nMETHODS\tWe did a trial .\nRESULT\tIt worked .\n", 3, "label"),
        ("###1\nMETHODS We did a trial .\n", 2, "label"),
        ("METHODS\tWe did a trial .\n", 1, None),
        ("###1\nMETHODS\t   \n", 2, "sentence"),
    ],
)
def test_malformed_release_names_file_line_and_field(tmp_path, text, line, field):
    path = tmp_path / "train.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RawFormatError) as err:
        read_pubmed_file(path)
    assert err.value.path == str(path)
    assert err.value.where == f"line {line}"
    assert err.value.field == field
    assert str(path) in str(err.value)
