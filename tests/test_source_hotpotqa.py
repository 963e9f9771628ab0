"""HotpotQA builder on the real raw sample: both record layouts, the hub layout, malformed files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hublayout import write_hub_repo

from tasks.build import build_task
from tasks.errors import RawFormatError
from tasks.manifest import load_built
from tasks.overlap import overlap
from tasks.sources.hotpotqa import derived_question_id
from tasks.tokenization import get_counter

pytestmark = pytest.mark.realdata

JSONL = "hotpot_dev_fullwiki_sample.lines_001-400.jsonl"
HF_STYLE = "hotpot_dev_distractor_first100.hf_style.json"
TITLE_LINE = re.compile(r"^Title: (.+)$", re.M)


def build(raw: Path, out: Path, **kw):
    return build_task("hotpotqa", out, origin="raw", raw_dir=raw, tokenizer="simple", show_progress=False, **kw)


def hf_rows(raw_dir: Path) -> list[dict]:
    """Every record of the sample in the HF row layout, in the order the builder reads the files."""
    rows = []
    for rec in json.loads((raw_dir / "hotpotqa" / HF_STYLE).read_text()):
        rows.append({"id": derived_question_id(rec["question"]), **rec})
    for line in (raw_dir / "hotpotqa" / JSONL).read_text().splitlines():
        rec = json.loads(line)
        rows.append(
            {
                "id": rec["_id"],
                "question": rec["question"],
                "answer": rec["answer"],
                "type": rec["type"],
                "level": rec["level"],
                "supporting_facts": {
                    "title": [t for t, _ in rec["supporting_facts"]],
                    "sent_id": [i for _, i in rec["supporting_facts"]],
                },
                "context": {
                    "title": [t for t, _ in rec["context"]],
                    "sentences": [s for _, s in rec["context"]],
                },
            }
        )
    return rows


def usable(rows: list[dict]) -> dict[str, dict]:
    """The documented selection: supporting titles all in the record's context, each question once."""
    out: dict[str, dict] = {}
    texts: set[str] = set()
    for row in rows:
        if not set(row["supporting_facts"]["title"]) <= set(row["context"]["title"]):
            continue
        if row["id"] in out or row["question"] in texts:
            continue
        out[row["id"]] = row
        texts.add(row["question"])
    return out


def link(raw_dir: Path, dest: Path, *names: str) -> Path:
    (dest / "hotpotqa").mkdir(parents=True)
    for name in names:
        (dest / "hotpotqa" / name).symlink_to(raw_dir / "hotpotqa" / name)
    return dest


@pytest.fixture(scope="module")
def hotpot(raw_dir, tmp_path_factory):
    return build(raw_dir, tmp_path_factory.mktemp("hotpotqa"))


def all_rows(result) -> list[tuple[str, dict]]:
    data, _ = load_built(result.path)
    return [(split, row) for split in data for row in data[split]]


def test_chunks_and_answers(hotpot):
    counter = get_counter("simple")
    rows = all_rows(hotpot)
    assert {s for s, _ in rows} == {"train", "validation"}
    for _, row in rows:
        counts = counter.count_many(row["chunks"])
        assert max(counts) <= 2048 and sum(counts) == row["context_tokens"] and len(row["chunks"]) <= 20
        assert 10 <= len(row["questions"]) <= 100
        for q in row["questions"]:
            assert counter.count(q["answers"][0]) < 5
            if q["answers"][0].lower() not in {"yes", "no"}:
                assert any(q["answers"][0] in c for c in row["chunks"])


def test_questions_match_the_raw_file(hotpot, raw_dir):
    rows = hf_rows(raw_dir)
    keep = usable(rows)
    built = [q for _, row in all_rows(hotpot) for q in row["questions"]]
    ids = [q["question_id"] for q in built]
    assert len(ids) == len(set(ids)) and len(ids) <= len(keep)
    assert sum(hotpot.manifest["splits"][s]["questions"] for s in ("train", "validation")) == len(ids)
    for q in built:
        raw = keep[q["question_id"]]
        assert q["question"] == raw["question"].strip() and q["answers"] == [raw["answer"].strip()]
        assert q["question_type"] == raw["type"]
    assert any(q["answers"] == ["yes"] for q in built)  # yes/no questions survive the extractive filter
    complete = sum(1 for r in rows if set(r["supporting_facts"]["title"]) <= set(r["context"]["title"]))
    assert f"{len(rows) - complete} of {len(rows)} questions skipped" in hotpot.manifest["notes"][0]


def test_supporting_articles_are_in_their_instance_and_owned_once(hotpot, raw_dir):
    keep = usable(hf_rows(raw_dir))
    owner: dict[str, str] = {}
    for _, row in all_rows(hotpot):
        titles = TITLE_LINE.findall("\n".join(row["chunks"]))
        assert titles == json.loads(row["metadata"])["titles"]
        for title in titles:
            assert owner.setdefault(title, row["instance_id"]) == row["instance_id"]
        for q in row["questions"]:
            assert set(keep[q["question_id"]]["supporting_facts"]["title"]) <= set(titles)


def test_articles_are_whole_and_titles_stay_with_them(hotpot, raw_dir):
    """Each article sits whole in one chunk (none here exceeds the chunk size), its title line first."""
    articles = {}
    for row in hf_rows(raw_dir):
        for title, sentences in zip(row["context"]["title"], row["context"]["sentences"], strict=True):
            articles.setdefault(title, f"Title: {title}\n{''.join(sentences).strip()}")
    seen = 0
    for _, row in all_rows(hotpot):
        for chunk in row["chunks"]:
            for match in TITLE_LINE.finditer(chunk):
                assert articles[match.group(1)] in chunk
                seen += 1
    assert seen == sum(len(json.loads(r["metadata"])["titles"]) for _, r in all_rows(hotpot))


def test_splits_are_disjoint(hotpot):
    data, _ = load_built(hotpot.path)
    assert not set(data["train"]["instance_id"]) & set(data["validation"]["instance_id"])
    report = overlap(hotpot.path, hotpot.path, split_a="train", split_b="validation")
    assert report.shared_questions == [] and report.shared_passages == []
    assert report.passages_a > 500


def test_rebuild_is_identical(hotpot, raw_dir, tmp_path):
    assert build(raw_dir, tmp_path).manifest["sha256"] == hotpot.manifest["sha256"]


def test_each_layout_alone(raw_dir, tmp_path):
    lines = build(link(raw_dir, tmp_path / "lines", JSONL), tmp_path / "out_lines")
    array_dir = tmp_path / "array" / "hotpotqa"
    array_dir.mkdir(parents=True)
    records = [json.loads(line) for line in (raw_dir / "hotpotqa" / JSONL).read_text().splitlines()]
    (array_dir / "hotpot_dev_fullwiki.json").write_text(json.dumps(records))
    array = build(tmp_path / "array", tmp_path / "out_array")
    assert array.manifest["sha256"] == lines.manifest["sha256"]  # same records, other container

    hf = build(link(raw_dir, tmp_path / "hf", HF_STYLE), tmp_path / "out_hf")
    derived = {derived_question_id(r["question"]) for r in json.loads((raw_dir / "hotpotqa" / HF_STYLE).read_text())}
    built = {q["question_id"] for _, row in all_rows(hf) for q in row["questions"]}
    assert built and built <= derived
    line_ids = {q["question_id"] for _, row in all_rows(lines) for q in row["questions"]}
    assert line_ids and line_ids <= {r["_id"] for r in records}


def test_hub_layout_gives_the_raw_build(hotpot, raw_dir, tmp_path):
    write_hub_repo(tmp_path / "mirror", "hotpotqa/hotpot_qa", {"fullwiki": {"train": hf_rows(raw_dir)}})
    hub = build_task(
        "hotpotqa",
        tmp_path / "out",
        origin="hub",
        hub_mirror=tmp_path / "mirror",
        tokenizer="simple",
        show_progress=False,
    )
    assert hub.manifest["sha256"] == hotpot.manifest["sha256"]
    assert hub.manifest["inputs"][0]["config"] == "fullwiki"


@pytest.mark.parametrize(
    ("name", "content", "where", "field"),
    [
        ("bad.jsonl", "{good}\n{not json\n", "line 2", None),
        ("bad.jsonl", "{good}\n{nofacts}\n", "line 2", "supporting_facts"),
        (
            "bad.jsonl",
            '{good}\n{"_id": "x", "question": "q?", "answer": "", "supporting_facts": [], "context": []}\n',
            "line 2",
            "answer",
        ),
        (
            "bad.json",
            '[{hf}, {"question": "q?", "answer": "a", "supporting_facts": {"title": [], "sent_id": []},'
            ' "context": {"title": ["T"], "sentences": ["not a list"]}}]',
            "record 1",
            "context.sentences[0]",
        ),
    ],
)
def test_malformed_file_names_file_line_and_field(raw_dir, tmp_path, name, content, where, field):
    good = json.loads((raw_dir / "hotpotqa" / JSONL).read_text().splitlines()[0])
    nofacts = {k: v for k, v in good.items() if k != "supporting_facts"}
    hf = json.loads((raw_dir / "hotpotqa" / HF_STYLE).read_text())[0]
    content = (
        content.replace("{good}", json.dumps(good))
        .replace("{nofacts}", json.dumps(nofacts))
        .replace("{hf}", json.dumps(hf))
    )
    (tmp_path / "raw" / "hotpotqa").mkdir(parents=True)
    bad = tmp_path / "raw" / "hotpotqa" / name
    bad.write_text(content)
    with pytest.raises(RawFormatError) as err:
        build(tmp_path / "raw", tmp_path / "out")
    message = str(err.value)
    assert message.startswith(f"{bad}, {where}")
    if field:
        assert f"field '{field}'" in message
