"""The manifest's small parts, exactly: its text on disk, the statistics it records, which folder holds the
dataset, and every refusal naming the file, the field and what was found (the mutation score of
tasks/manifest.py rests on these, docs/testing.md)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from tasks.errors import TaskError
from tasks.manifest import (
    MANIFEST_FORMAT,
    TaskHashError,
    canonical_line,
    dataset_dir,
    dataset_sha256,
    find_task_dir,
    load_built,
    read_manifest,
    split_sha256,
    split_stats,
    verify_rows,
    write_manifest,
)
from tasks.schema import FEATURES

HASH = "ab" * 32


def row(iid: str, chunks: int, questions: int, tokens: int) -> dict:
    return {
        "instance_id": iid,
        "task": "squad",
        "competency": "AR",
        "chunks": [f"chunk {i}" for i in range(chunks)],
        "questions": [
            {"question_id": f"q{i}", "question": "Q?", "answers": ["a"], "question_type": None, "question_date": None}
            for i in range(questions)
        ],
        "context_tokens": tokens,
        "metadata": "{}",
    }


def test_split_stats_count_and_spread_every_measure():
    rows = [row("a", 1, 4, 10), row("b", 3, 1, 30), row("c", 2, 2, 50)]
    assert split_stats(rows) == {
        "instances": 3,
        "questions": 7,
        "chunks": 6,
        "context_tokens": {"min": 10, "median": 30, "max": 50, "total": 90},
        "chunks_per_instance": {"min": 1, "median": 2, "max": 3, "total": 6},
        "questions_per_instance": {"min": 1, "median": 2, "max": 4, "total": 7},
    }
    assert split_stats([])["context_tokens"] == {"min": 0, "median": 0, "max": 0, "total": 0}
    assert split_stats(rows[:2])["context_tokens"]["median"] == 20  # the mean of the middle two


def test_the_manifest_file_is_sorted_indented_utf8_text(tmp_path):
    path = write_manifest(tmp_path, {"task": "squad", "format": MANIFEST_FORMAT, "note": "Mem-α 漢字", "n": [1]})
    assert path == tmp_path / "manifest.json"
    expected = (
        '{\n  "format": "memalpha-bench/task-manifest@1",\n  "n": [\n    1\n  ],\n  "note": "Mem-α 漢字",\n'
        '  "task": "squad"\n}\n'
    )
    assert path.read_bytes() == expected.encode("utf-8")


def test_the_dataset_sits_in_the_task_folder_or_under_data_in_older_builds(tmp_path):
    assert dataset_dir(tmp_path) == tmp_path  # neither: the task folder (loading it then says what is missing)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset_dict.json").write_text("{}")
    assert dataset_dir(tmp_path) == tmp_path / "data"
    (tmp_path / "dataset_dict.json").write_text("{}")
    assert dataset_dir(tmp_path) == tmp_path  # both: the current layout wins


def test_find_task_dir_takes_the_folder_or_its_task_and_names_what_is_missing(tmp_path):
    (tmp_path / "squad").mkdir()
    write_manifest(tmp_path / "squad", {})
    assert find_task_dir(tmp_path / "squad") == tmp_path / "squad"
    assert find_task_dir(tmp_path, "squad") == tmp_path / "squad"
    message = f"{tmp_path}/hotpotqa: no built task there (missing manifest.json); build it with `memalpha tasks build`"
    with pytest.raises(TaskError, match=f"^{re.escape(message)}$"):
        find_task_dir(tmp_path, "hotpotqa")
    with pytest.raises(TaskError, match=f"^{re.escape(str(tmp_path))}: no built task there"):
        find_task_dir(tmp_path)
    with pytest.raises(TaskError, match="no built task there"):
        find_task_dir(tmp_path, "")  # no task name: the folder itself only


def good_manifest() -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "task": "squad",
        "sha256": dataset_sha256({"test": HASH}),
        "splits": {"test": {"sha256": HASH}},
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "{path}: no manifest; is {folder} a task built by `memalpha tasks build`?"),
        ('{"format": \n', "{path}, line 2: not valid JSON (Expecting value, column 1)"),
        ("[1, 2]", "{path}: expected a JSON object"),
        ({"format": "other@9"}, "{path}, field 'format': expected 'memalpha-bench/task-manifest@1', found 'other@9'"),
        ({"sha256": "nope"}, "{path}, field 'sha256': expected a sha256 (64 hex digits), found 'nope'"),
        (
            {"splits": {"test": "x"}},
            "{path}, field 'splits.test.sha256': expected a sha256 (64 hex digits), found None",
        ),
        (
            {"splits": {"test": {"sha256": 5}}},
            "{path}, field 'splits.test.sha256': expected a sha256 (64 hex digits), found 5",
        ),
        ({"splits": []}, "{path}, field 'splits': expected an object with one entry per split"),
        ({"task": ...}, "{path}: field 'task' missing"),
    ],
)
def test_a_bad_manifest_is_refused_naming_file_field_and_value(tmp_path, text, message):
    path = tmp_path / "manifest.json"
    if isinstance(text, dict):
        doc = good_manifest()
        for key, value in text.items():
            if value is ...:
                del doc[key]
            else:
                doc[key] = value
        write_manifest(tmp_path, doc)
    elif text is not None:
        path.write_text(text, encoding="utf-8")
    expected = message.format(path=path, folder=tmp_path)
    with pytest.raises(TaskError, match=f"^{re.escape(expected)}$"):
        read_manifest(tmp_path)


def test_a_manifest_with_non_ascii_text_reads_back(tmp_path):
    doc = {**good_manifest(), "source": {"note": "Mem-α 漢字"}}
    write_manifest(tmp_path, doc)
    assert read_manifest(tmp_path) == doc


def built(tmp_path: Path, splits: dict[str, list[dict]], manifest_splits: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "squad"
    DatasetDict({s: Dataset.from_list(r, features=FEATURES) for s, r in splits.items()}).save_to_disk(str(folder))
    hashes = manifest_splits or {s: split_sha256(r) for s, r in splits.items()}
    write_manifest(
        folder,
        {
            "format": MANIFEST_FORMAT,
            "task": "squad",
            "sha256": dataset_sha256(hashes),
            "splits": {s: {"sha256": h} for s, h in hashes.items()},
        },
    )
    return folder


def test_other_splits_than_the_manifests_are_an_error_naming_both(tmp_path):
    folder = built(tmp_path, {"test": [row("a", 1, 1, 3)]}, {"test": HASH, "validation": HASH})
    message = f"task squad ({folder}): splits ['test'] differ from the manifest's ['test', 'validation']"
    with pytest.raises(TaskHashError, match=f"^{re.escape(message)}$"):
        load_built(folder)
    data, manifest = load_built(folder, verify=False)
    with pytest.raises(TaskHashError, match=re.escape("task squad (somewhere): splits")):
        verify_rows(data, manifest, "somewhere")


def test_changed_rows_name_the_split_both_hashes_and_the_way_out(tmp_path):
    folder = built(tmp_path, {"test": [row("a", 1, 1, 3)]}, {"test": HASH})
    with pytest.raises(TaskHashError) as caught:
        load_built(tmp_path, "squad")
    actual = split_sha256([row("a", 1, 1, 3)])
    assert str(caught.value) == (
        f"task squad ({folder}), split test: the rows hash to {actual}, but manifest.json says {HASH}; the data "
        "changed after it was built. Rebuild it (`memalpha tasks build squad`) or restore the original files."
    )


def test_a_manifest_without_its_dataset_files_says_so(tmp_path):
    folder = tmp_path / "squad"
    folder.mkdir()
    write_manifest(folder, good_manifest())
    with pytest.raises(TaskError, match=f"^{re.escape(str(folder))}: dataset files missing \\("):
        load_built(folder)


def test_the_canonical_line_is_compact_sorted_utf8_json_and_the_split_hash_is_its_sha256():
    """The bytes every task hash is taken over: a change here changes every published hash."""
    row = {"b": [1, "caf\u00e9"], "a": {"y": None, "x": "two words"}}
    line = '{"a":{"x":"two words","y":null},"b":[1,"caf\u00e9"]}\n'.encode()
    assert canonical_line(row) == line and line.count(b"\n") == 1 and "é".encode() in line
    assert split_sha256([row, row]) == hashlib.sha256(line + line).hexdigest()
