"""Submission validation: a gallery of bad submissions, each rejected with every problem listed (file,
line, field) and the results store untouched; good submissions pass, whatever Unicode or markup they hold."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from leaderboard_helpers import memory_line, metadata, snapshot, write_submission, write_task

from leaderboard.boards import get_board
from leaderboard.contamination import assess
from leaderboard.names import name_key
from leaderboard.store import ResultsStore
from leaderboard.submission import Limits, SubmissionError, identity, record_id, slug
from leaderboard.validate import validate_submission
from tasks.registry import get_suite

BOARD = ("task", "squad")
VALIDATION = ["v0", "v1", "v2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """squad built with a train split (not on the board) and a validation split (the board's)."""
    root = tmp_path_factory.mktemp("data")
    return root, {"squad": write_task(root, "squad", {"train": ["t0"], "validation": VALIDATION})}


@pytest.fixture
def store(tmp_path, data) -> ResultsStore:
    """A store that already holds one record (so 'unchanged' means more than 'still empty')."""
    root = tmp_path / "results"
    root.mkdir()
    record = {
        "format": "memalpha-bench/leaderboard-record@1",  # an older record: the store still reads it
        "id": "squad--other--1--abc",
        "status": "rescored",
        "board": {"kind": "task", "name": "squad", "profile": "v1@2"},
        "agent": {"name": "Other", "version": "1"},
        **dict.fromkeys(("model", "parameters", "link", "contact", "license", "description"), "x"),
        "trained_on": [],
        "contamination": {"possible": False, "reasons": []},
        "scores": {
            "overall": 0.5,
            "competencies": {"AR": 0.5},
            "tasks": {"squad": {"score": 0.5, "competency": "AR", "metric": "substring_em", "memory_tokens_mean": 3.0}},
        },
        "memory_tokens": 3.0,
        "scorer": {"profile": "v1@2"},
        "task_hashes": data[1],
        "memories": None,
        "source": None,
        "reported": None,
    }
    (root / "squad--other--1--abc.json").write_text(json.dumps(record))
    return ResultsStore(root)


def good_lines() -> list[dict]:
    return [memory_line("squad", iid) for iid in VALIDATION]


def rejected(folder: Path, data, store: ResultsStore | None = None, limits: Limits | None = None) -> list[str]:
    """The problems of a submission that must be rejected, as strings; the store must not change."""
    before = snapshot(store.root) if store else None
    with pytest.raises(SubmissionError) as err:
        validate_submission(folder, data[0], store=store, limits=limits)
    if store:
        assert snapshot(store.root) == before
    listed = [str(p) for p in err.value.problems]
    for line in listed:  # the message shows every problem
        assert line in str(err.value)
    return listed


def has(problems: list[str], *parts: str) -> bool:
    return any(all(part in p for part in parts) for p in problems)


def test_a_good_submission_passes(tmp_path, data, store):
    folder = write_submission(tmp_path / "sub", metadata(BOARD, data[1]), good_lines())
    v = validate_submission(folder, data[0], store=store)
    assert v.meta.board.name == "squad" and v.instances == 3 and v.checked_against_data
    assert v.memories_sha256 == hashlib.sha256((folder / "memories.jsonl").read_bytes()).hexdigest()
    assert v.contamination.possible is False


def test_markup_and_any_unicode_in_every_text_field_are_accepted_as_text(tmp_path, data):
    evil = "<script>alert('x')</script><b>ß 漢字 🧠</b> & \"q\""
    name = "<script>alert(1)<img src=x onerror=alert(2)>"  # names may not hold '/', so no closing tags
    meta = metadata(
        BOARD,
        data[1],
        agent={"name": name, "version": "<i>1"},
        model=evil,
        parameters=evil,
        link="https://example.org/a?q=<script>",
        contact=evil,
        license=evil,
        trained_on=[evil],
        description=evil + "\nsecond line",
    )
    lines = [memory_line("squad", iid, core=evil, semantic=[evil], episodic=[evil + "\tx"]) for iid in VALIDATION]
    v = validate_submission(write_submission(tmp_path / "sub", meta, lines), data[0])
    assert v.meta.agent_name == name and v.meta.contact == evil and v.meta.trained_on == (evil,)


# (mutate the metadata, the memory lines, limits) -> expected (parts of) problems
GALLERY = {
    "truncated submission.json": (
        lambda m, lines: (json.dumps(m, indent=2)[:-40], lines),
        None,
        [("submission.json, line", "not valid JSON")],
    ),
    "truncated memories line": (
        lambda m, lines: (m, [*lines[:2], json.dumps(lines[2])[:25]]),
        None,
        [("memories.jsonl, line 3", "not valid JSON"), ("1 of 3 instances of squad", "v2")],
    ),
    "missing instance": (
        lambda m, lines: (m, lines[:2]),
        None,
        [("memories.jsonl", "field 'instance_id'", "1 of 3 instances of squad (validation) missing: v2")],
    ),
    "duplicate instance": (
        lambda m, lines: (m, [*lines, lines[0]]),
        None,
        [("memories.jsonl, line 4", "'v0' of squad given again (first on line 1)")],
    ),
    "instance of a split the board does not evaluate": (
        lambda m, lines: (m, [*lines, memory_line("squad", "t0")]),
        None,
        [("memories.jsonl, line 4", "'t0' is not in squad's validation data (it is in the train split")],
    ),
    "unknown instance": (
        lambda m, lines: (m, [*lines, memory_line("squad", "nope")]),
        None,
        [("line 4", "'nope' is not in squad's validation data")],
    ),
    "task not on the board": (
        lambda m, lines: (m, [*lines, memory_line("hotpotqa", "h0")]),
        None,
        [("line 4", "field 'task'", "not on board squad")],
    ),
    "wrong task hash": (
        lambda m, lines: ({**m, "task_hashes": {"squad": "0" * 64}}, lines),
        None,
        [("field 'task_hashes.squad'", "made on task version 000000000000")],
    ),
    "malformed task hash": (
        lambda m, lines: ({**m, "task_hashes": {"squad": "abc"}}, lines),
        None,
        [("field 'task_hashes.squad'", "64 hex digits")],
    ),
    "oversized entry": (
        lambda m, lines: (m, [memory_line("squad", "v0", semantic=["x" * 51]), *lines[1:]]),
        Limits(entry_chars=50),
        [("line 1", "memory.semantic[0].content", "51 characters, over the limit of 50")],
    ),
    "too many entries": (
        lambda m, lines: (m, [memory_line("squad", "v0", semantic=["a", "b"], episodic=["c"]), *lines[1:]]),
        Limits(entries_per_memory=2),
        [("line 1", "field 'memory'", "3 semantic + episodic entries")],
    ),
    "oversized core and total": (
        lambda m, lines: (m, [memory_line("squad", "v0", core="c" * 30, semantic=["s" * 30]), *lines[1:]]),
        Limits(core_chars=20, memory_chars=50),
        [("line 1", "memory.core", "30 characters"), ("line 1", "60 characters in all")],
    ),
    "oversized memories file": (
        lambda m, lines: (m, lines),
        Limits(memories_bytes=100),
        [("memories.jsonl", "bytes, over the limit of 100")],
    ),
    "oversized submission.json": (
        lambda m, lines: (m, lines),
        Limits(submission_bytes=100),
        [("submission.json", "bytes, over the limit of 100")],
    ),
    "control character in memory text": (
        lambda m, lines: (m, [memory_line("squad", "v0", semantic=["bell\x07"]), *lines[1:]]),
        None,
        [("line 1", "memory.semantic[0].content", "U+0007")],
    ),
    "lone surrogate in memory text": (
        lambda m, lines: (
            m,
            [
                '{"instance_id": "v0", "task": "squad", "memory": {"core": "\\ud800", "semantic": [], "episodic": []}}',
                *lines[1:],
            ],
        ),
        None,
        [("line 1", "memory.core", "U+D800")],
    ),
    "path tricks in names": (
        lambda m, lines: ({**m, "agent": {"name": "../../etc/passwd", "version": "a\\b"}}, lines),
        None,
        [("agent.name", "path separator"), ("agent.version", "path separator")],
    ),
    "parent-folder name": (
        lambda m, lines: ({**m, "agent": {"name": "..", "version": "1.."}}, lines),
        None,
        [("agent.name", "'..'"), ("agent.version", "'..'")],
    ),
    "control characters in names": (
        lambda m, lines: ({**m, "agent": {"name": "evil\x00name", "version": "1\n2"}}, lines),
        None,
        [("agent.name", "U+0000"), ("agent.version", "U+000A")],
    ),
    "bidirectional override in a name": (
        lambda m, lines: ({**m, "model": "abc\u202edcba"}, lines),
        None,
        [("field 'model'", "U+202E")],
    ),
    "script link": (
        lambda m, lines: ({**m, "link": "javascript:alert(1)"}, lines),
        None,
        [("field 'link'", "http:// or https://")],
    ),
    "placeholders left from init": (
        lambda m, lines: ({**m, "contact": "TODO: e-mail", "trained_on": ["TODO: list"]}, lines),
        None,
        [("field 'contact'", "TODO placeholder"), ("trained_on[0]", "TODO placeholder")],
    ),
    "schema": (
        lambda m, lines: (
            {k: v for k, v in m.items() if k not in ("model", "format")} | {"extra": 1, "suite": "mab-paper"},
            lines,
        ),
        None,
        [
            ("field 'model'", "non-empty string"),
            ("field 'format'", "must be"),
            ("field 'extra'", "unknown field"),
            ("field 'suite'", "exactly one of"),
        ],
    ),
    "unknown board": (
        lambda m, lines: ({**{k: v for k, v in m.items() if k != "task"}, "suite": "mab-papr"}, lines),
        None,
        [("field 'suite'", "did you mean 'mab-paper'")],
    ),
    "oversized field": (
        lambda m, lines: ({**m, "agent": {"name": "n" * 101, "version": "1"}}, lines),
        None,
        [("agent.name", "101 characters, over the limit of 100")],
    ),
}


@pytest.mark.parametrize("case", list(GALLERY))
def test_gallery_of_bad_submissions(tmp_path, data, store, case):
    mutate, limits, expected = GALLERY[case]
    meta, lines = mutate(metadata(BOARD, data[1]), good_lines())
    problems = rejected(write_submission(tmp_path / "sub", meta, lines), data, store, limits)
    for parts in expected:
        assert has(problems, *parts), (parts, problems)


def test_every_problem_is_listed_at_once(tmp_path, data, store):
    meta = metadata(
        BOARD,
        {"squad": "f" * 64},
        agent={"name": "a/../b", "version": "1"},
        link="ftp://x",
        trained_on="squad",
        model="",
    )
    lines = [
        memory_line("squad", "v0", semantic=["ok", "bell\x07"]),
        "{broken",
        memory_line("squad", "v0"),
        memory_line("squad", "t0"),
    ]
    problems = rejected(write_submission(tmp_path / "sub", meta, lines), data, store)
    for parts in [
        ("agent.name", "path separator"),
        ("field 'link'",),
        ("field 'trained_on'", "must be a list"),
        ("field 'model'",),
        ("task_hashes.squad", "made on task version"),
        ("line 1", "semantic[1].content", "U+0007"),
        ("line 2", "not valid JSON"),
        ("line 3", "given again"),
        ("line 4", "train split"),
        ("2 of 3 instances", "v1, v2"),
    ]:
        assert has(problems, *parts), (parts, problems)
    assert len(problems) == 10


def test_folder_tricks(tmp_path, data, store):
    folder = write_submission(tmp_path / "sub", metadata(BOARD, data[1]), good_lines())
    outside = tmp_path / "secret.jsonl"
    (folder / "memories.jsonl").rename(outside)
    os.symlink(outside, folder / "memories.jsonl")
    (folder / "run.sh").write_text("rm -rf /\n")
    (folder / "extra").mkdir()
    problems = rejected(folder, data, store)
    assert has(problems, "memories.jsonl", "symbolic link") and has(problems, "run.sh", "unexpected")
    assert has(problems, "extra", "unexpected")
    assert "rm -rf" not in "".join(problems)
    with pytest.raises(SubmissionError, match="not a folder"):
        validate_submission(tmp_path / "missing", data[0])


def test_duplicate_of_a_stored_entry_is_rejected(tmp_path, data, store):
    meta = metadata(BOARD, data[1], agent={"name": "  OTHER ", "version": "1"})
    problems = rejected(write_submission(tmp_path / "sub", meta, good_lines()), data, store)
    assert problems == [
        "submission.json, field 'agent': agent 'OTHER' version '1' is already on board squad, profile v1@2 "
        "(squad--other--1--abc); submit a new version"
    ]
    # the same entry is new on the board of another scorer profile
    folder = write_submission(tmp_path / "sub2", meta, good_lines())
    assert validate_submission(folder, data[0], store=store, profile="memalpha-paper").meta.board.profile == (
        "memalpha-paper@1"
    )


def test_the_store_pins_the_task_versions_of_a_board(tmp_path, data, store):
    record = json.loads((store.root / "squad--other--1--abc.json").read_text())
    record["task_hashes"] = {"squad": "e" * 64}
    (store.root / "squad--other--1--abc.json").write_text(json.dumps(record))
    folder = write_submission(tmp_path / "sub", metadata(BOARD, data[1]), good_lines())
    problems = rejected(folder, data, store)
    assert has(problems, "--data", "squad", "board is scored on version eeeeeeeeeeee")
    assert has(problems, "task_hashes.squad", "board expects eeeeeeeeeeee")


def test_without_data_only_the_files_are_checked(tmp_path, data):
    v = validate_submission(write_submission(tmp_path / "sub", metadata(BOARD, data[1]), good_lines()[:1]))
    assert not v.checked_against_data and v.instances == 1
    folder = write_submission(tmp_path / "dup", metadata(BOARD, data[1]), good_lines()[:1] * 2)
    with pytest.raises(SubmissionError, match="given again"):
        validate_submission(folder)


def test_a_suite_board_takes_the_suite_split_of_every_task(tmp_path):
    data = tmp_path / "data"
    suite = get_suite("memalpha-val")
    hashes = {t: write_task(data, t, {"train": ["t0"], "validation": ["v0"]}) for t in suite.tasks}
    lines = [memory_line(t, "v0") for t in suite.tasks]
    meta = metadata(("suite", "memalpha-val"), hashes, trained_on=["memalpha-train", "my-own-data"])
    v = validate_submission(write_submission(tmp_path / "sub", meta, lines), data)
    assert v.instances == len(suite.tasks) and v.contamination.possible
    assert "trained on squad (train split, part of memalpha-train), a task this board evaluates" in (
        v.contamination.reasons
    )
    lines[-1] = memory_line(suite.tasks[-1], "t0")
    problems = rejected(write_submission(tmp_path / "sub2", meta, lines), (data,))
    assert has(problems, f"1 of 1 instances of {suite.tasks[-1]} (validation) missing: v0")


def test_contamination_rules():
    mab = get_board("suite", "mab-paper")
    assert assess(None, mab).possible is None
    assert assess([], mab).possible is False and assess(["my-private-logs"], mab).possible is False
    via_dataset = assess(["trec"], mab)
    assert via_dataset.possible and any("icl_trec_fine" in r for r in via_dataset.reasons)
    assert len(assess(["ai-hyz/MemoryAgentBench"], mab).reasons) == len(mab.tasks)
    # one MemoryAgentBench set is not all of them: the shared release does not count
    assert assess(["eventqa"], mab).possible is False
    assert assess(["icl_nlu"], mab).reasons == ("trained on icl_nlu, a task this board evaluates",)


def test_names_become_safe_distinct_ids():
    for name in ("../../etc/passwd", "a/b\\c", "<script>", "漢字", ".", "CON"):
        rid = record_id("squad", name, "1.0", "v1@2")
        assert all(c.isascii() and (c.isalnum() or c == "-") for c in rid) and "/" not in rid
    assert slug("漢字") == "x" and record_id("squad", "漢字", "1", "v1@2") != record_id("squad", "字漢", "1", "v1@2")
    assert record_id("squad", "Foo!", "1", "v1@2") != record_id("squad", "Foo?", "1", "v1@2")
    assert identity("squad", "Ａgent  X", "V1", "v1@2") == identity("squad", "agent x", "v1", "v1@2")
    # the same agent may be on a board once per scorer profile
    assert identity("squad", "agent", "1", "v1@2") != identity("squad", "agent", "1", "memalpha-paper@1")
    assert record_id("squad", "a", "1", "v1@2") != record_id("squad", "a", "1", "memalpha-paper@1")


# a name that renders like the stored 'Other' -> what validation says
LOOK_ALIKES = {
    "Oth\u00ader": ("field 'agent.name'", "invisible character U+00AD (SOFT HYPHEN)", "default-ignorable"),
    "Oth\u200ber": ("field 'agent.name'", "invisible character U+200B (ZERO WIDTH SPACE)"),
    "\u041ether": ("field 'agent'", "is already on board squad"),  # Cyrillic capital O
    "\u039f\uff54\uff48er": ("field 'agent'", "is already on board squad"),  # Greek Omicron, full-width t, h
}


def test_look_alike_names_compare_equal_and_invisible_characters_are_rejected(tmp_path, data, store):
    assert name_key("Oth\u00ader") == name_key("\u041ether") == name_key("other") == name_key(" OTHER ")
    assert name_key("\ufb01le") == name_key("file") and name_key("Agent") != name_key("Agents")
    assert identity("squad", "Mem-\u03b1", "1", "v1@2") == identity("squad", "Mem-a", "1", "v1@2")
    for i, (name, expected) in enumerate(LOOK_ALIKES.items()):
        meta = metadata(BOARD, data[1], agent={"name": name, "version": "1"})
        problems = rejected(write_submission(tmp_path / str(i), meta, good_lines()), data, store)
        assert problems == [p for p in problems if all(part in p for part in expected)] and problems, (name, problems)
