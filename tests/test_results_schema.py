"""The typed, versioned formats of scores.json and results records: the committed JSON Schema files are
the generated ones, the published schemas and our validator accept and refuse the same documents, files of
the older formats still load (and show no uncertainty), unknown formats and malformed fields are refused
naming the file and the field, and the store, `leaderboard init` and `leaderboard validate` read through the
validator."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from leaderboard_helpers import FakeReader, memory_line, metadata, pin_board, write_submission, write_task

from benchmark.cli import main
from benchmark.report import summary_table
from benchmark.results_schema import (
    SCORES_FORMAT,
    SCORES_SCHEMA_FILE,
    ResultsFormatError,
    check_scores,
    read_scores,
    schema_text,
    scores_schema,
)
from benchmark.scoring import score_run
from leaderboard.record_schema import (
    LEGACY_RECORD_FORMAT,
    RECORD_FORMAT,
    RECORD_SCHEMA_FILE,
    check_record,
    record_schema,
)
from leaderboard.render import render_site
from leaderboard.rescore import add_submission
from leaderboard.seeds import seed_records
from leaderboard.store import ResultsStore, StoreError
from leaderboard.validate import validate_submission
from tasks.tokenization import get_counter

IDS = ["v0", "v1", "v2"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple[dict, dict]:
    """A genuine scores.json (3 instances, fake reader) and the results record of the same memories."""
    root = tmp_path_factory.mktemp("schema")
    hashes = {"squad": write_task(root / "data", "squad", {"validation": IDS})}
    lines = [memory_line("squad", i) for i in IDS]
    run = root / "run"
    run.mkdir()
    (run / "memories.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    score_run(run, root / "data", FakeReader(), counter=get_counter("simple"), show_progress=False)
    sub = write_submission(root / "sub", metadata(("task", "squad"), hashes), lines)
    store = ResultsStore(root / "results")
    pin_board(store, ("task", "squad"))
    validated = validate_submission(sub, root / "data", store=store)
    record, _ = add_submission(validated, root / "data", store, FakeReader(), counter=get_counter("simple"))
    return json.loads((run / "scores.json").read_text()), record


def test_committed_schema_files_are_the_generated_ones(capsys):
    assert SCORES_SCHEMA_FILE.read_text() == schema_text(scores_schema())
    assert RECORD_SCHEMA_FILE.read_text() == schema_text(record_schema())
    for which, path in (("scores", SCORES_SCHEMA_FILE), ("record", RECORD_SCHEMA_FILE)):
        assert main(["leaderboard", "schema", which]) == 0
        assert capsys.readouterr().out == path.read_text()
    for schema in (scores_schema(), record_schema()):
        jsonschema.Draft202012Validator.check_schema(schema)


def test_a_scored_run_writes_the_current_format_with_uncertainty(scored):
    scores, record = scored
    assert scores["format"] == SCORES_FORMAT and record["format"] == RECORD_FORMAT
    assert scores["tasks"]["squad"]["score"] == 0.5  # "blue" answers one question of two
    # every instance scores 0.5: no spread, a standard error of 0 and a point interval
    assert scores["uncertainty"]["tasks"]["squad"] == {"se": 0.0, "ci": [0.5, 0.5]}
    assert record["scores"]["uncertainty"] == scores["uncertainty"]
    assert scores["run"]["agent"] is None  # memories not written by `memalpha run`
    for key in ("overall", "competencies", "tasks", "scorer", "task_hashes", "averages", "run", "warnings"):
        assert key in scores  # every key other tools read is still there


def accepted(doc, check, schema) -> tuple[bool, bool]:
    """(our validator accepts it, the published JSON Schema accepts it)."""
    try:
        check(doc, "doc")
        ours = True
    except ResultsFormatError:
        ours = False
    return ours, jsonschema.Draft202012Validator(schema).is_valid(doc)


def variants(doc: dict, edits: list[tuple[str, object]]) -> list[tuple[str, dict]]:
    """`doc` with one field set (a dotted path; the value `...` deletes it) per variant."""
    out = []
    for path, value in edits:
        changed = copy.deepcopy(doc)
        *parents, last = path.split(".")
        target = changed
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is ...:
            del target[last]
        else:
            target[last] = value
        out.append((f"{path}={value!r}", changed))
    return out


SCORES_EDITS = [
    ("overall", "0.5"),
    ("overall", 1.5),
    ("overall", True),
    ("overall", None),
    ("overall", ...),
    ("averages.mean_of_competencies", -0.1),
    ("competencies.AR", "high"),
    ("tasks.squad.score", 2),
    ("tasks.squad.instances", -1),
    ("tasks.squad.instances", "3"),
    ("tasks.squad.metric", None),
    ("tasks.squad.missing_instances", "none"),
    ("tasks.squad.origin", None),
    ("tasks.squad.origin", 3),
    ("task_hashes.squad", "abc"),
    ("task_hashes.squad", "A" * 64),
    ("uncertainty", ...),
    ("uncertainty.overall.se", -0.1),
    ("uncertainty.overall.se", None),
    ("uncertainty.overall.ci", [0.1]),
    ("uncertainty.overall.ci", [0.1, 0.2, 0.3]),
    ("uncertainty.overall.ci", None),
    ("uncertainty.tasks.squad", {"se": 0.1}),
    ("uncertainty.tasks.squad.ci", [0.0, 1.2]),
    ("uncertainty.interval", None),
    ("scorer.profile", ...),
    ("scorer.questions_per_instance", 0),
    ("scorer.questions_per_instance", 2),
    ("run", ...),
    ("run.memories_sha256", "abc"),
    ("run.agent", None),
    ("run.agent", {"options": {}}),
    ("warnings", ["one"]),
    ("warnings", "one"),
    ("format", "memalpha-bench/scores@3"),
    ("format", ...),  # format 1 shape with the format 2 keys: still a format 1 file
    ("format", None),
    ("extra_key", {"later": "versions add keys"}),
]


@pytest.mark.parametrize("index", range(len(SCORES_EDITS)), ids=[f"{p}={v!r}" for p, v in SCORES_EDITS])
def test_the_scores_schema_and_our_validator_agree(scored, index):
    ((name, doc),) = variants(scored[0], [SCORES_EDITS[index]])
    ours, published = accepted(doc, check_scores, scores_schema())
    assert ours == published, name


def test_which_scores_variants_are_refused(scored):
    """Only these variants pass: nulls where a value may be unknown, a list of warnings, a file without a
    format (format 1), unknown keys."""
    kept = {name for name, doc in variants(scored[0], SCORES_EDITS) if accepted(doc, check_scores, {})[0]}
    assert kept == {
        "tasks.squad.origin=None",
        "uncertainty.overall.se=None",
        "uncertainty.overall.ci=None",
        "uncertainty.interval=None",
        "scorer.questions_per_instance=2",
        "run.agent=None",
        "warnings=['one']",
        "format=Ellipsis",
        "format=None",
        "extra_key={'later': 'versions add keys'}",
    }


def test_a_scores_file_of_format_1_loads_and_shows_no_uncertainty(scored, tmp_path):
    legacy = copy.deepcopy(scored[0])
    for key in ("format", "uncertainty", "warnings", "averages", "run"):
        del legacy[key]
    for task in legacy["tasks"].values():
        del task["origin"]
    legacy["scorer"] = {"version": "1.0", "aggregation": "mean of means"}  # before profiles
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(legacy))
    assert read_scores(path) == legacy
    table = summary_table(legacy)
    assert "| squad " in table and "0.5 " in table
    assert main(["leaderboard", "validate", str(path)]) == 0


def test_unknown_formats_and_bad_fields_are_refused_naming_file_and_field(scored, tmp_path, capsys):
    path = tmp_path / "scores.json"
    doc = copy.deepcopy(scored[0])
    doc["format"] = "memalpha-bench/scores@9"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsFormatError, match=r"scores\.json: field format: 'memalpha-bench/scores@9' is not"):
        read_scores(path)
    doc.update(format=SCORES_FORMAT, overall=1.5)
    doc["tasks"]["squad"]["instances"] = "3"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsFormatError) as caught:
        read_scores(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 2 problem(s):")
    assert "field overall: Input should be less than or equal to 1" in message
    assert "field tasks.squad.instances: Input should be a valid integer" in message
    assert main(["leaderboard", "validate", str(path)]) == 1  # a broken file: a runtime failure
    assert "field overall" in capsys.readouterr().err
    path.write_text("[1, 2]")
    with pytest.raises(ResultsFormatError, match=r"not a scores\.json"):
        read_scores(path)


RECORD_EDITS = [
    ("format", "memalpha-bench/leaderboard-record@3"),
    ("id", "Has Spaces"),
    ("status", "pending"),
    ("submitted", "yesterday"),
    ("board.kind", "league"),
    ("agent.version", 1),
    ("trained_on", None),
    ("contamination.possible", "maybe"),
    ("scores.overall", 1.01),
    ("scores.tasks.squad.score", None),
    ("scores.tasks.squad.metric", None),
    ("scores.tasks.squad.instances", ...),
    ("scores.uncertainty", ...),
    ("scores.uncertainty.competencies.AR.ci", [0.2]),
    ("memory_tokens", -1),
    ("memories.sha256", "x"),
    ("memories", None),
    ("task_hashes", None),
    ("scorer", "v1"),
]


@pytest.mark.parametrize("index", range(len(RECORD_EDITS)), ids=[f"{p}={v!r}" for p, v in RECORD_EDITS])
def test_the_record_schema_and_our_validator_agree(scored, index):
    ((name, doc),) = variants(scored[1], [RECORD_EDITS[index]])
    ours, published = accepted(doc, check_record, record_schema())
    assert ours == published, name


def test_every_seed_record_is_a_valid_record_without_uncertainty():
    schema = jsonschema.Draft202012Validator(record_schema())
    for seed in seed_records():
        assert check_record(seed, seed["id"]) is seed and schema.is_valid(seed)
        assert seed["scores"]["uncertainty"]["overall"] == {"se": None, "ci": None}


def legacy_record(record: dict) -> dict:
    old = copy.deepcopy(record)
    old["format"] = LEGACY_RECORD_FORMAT
    del old["scores"]["uncertainty"]
    return old


def test_the_store_reads_records_of_format_1_and_refuses_malformed_ones_by_field(scored, tmp_path, capsys):
    record = scored[1]
    store = ResultsStore(tmp_path / "results")
    store.root.mkdir()
    old = legacy_record(record)
    (store.root / f"{record['id']}.json").write_text(json.dumps(old))
    assert store.records() == [old]
    render_site(store.records(), tmp_path / "site")
    page = (tmp_path / "site" / "entries" / f"{record['id']}.html").read_text()
    assert '<tr class="se">' not in page and "0.500" in page
    with pytest.raises(StoreError, match="field format: new records are"):
        ResultsStore(tmp_path / "other").add(old)  # old records load, but none is written any more

    broken = copy.deepcopy(record)
    broken["scores"]["tasks"]["squad"]["score"] = "0.5"
    (store.root / f"{record['id']}.json").write_text(json.dumps(broken))
    with pytest.raises(ResultsFormatError, match=r"field scores\.tasks\.squad\.score: Input should be a valid number"):
        store.records()
    assert main(["leaderboard", "render", "--out", str(tmp_path / "site2"), "--results", str(store.root)]) == 1
    assert f"{record['id']}.json: 1 problem(s)" in capsys.readouterr().err


def test_validate_takes_a_record_file(scored, tmp_path, capsys):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(scored[1]))
    assert main(["leaderboard", "validate", str(path)]) == 0
    assert f"is a results record of format {RECORD_FORMAT}" in capsys.readouterr().out
    path.write_text(json.dumps({**scored[1], "format": "memalpha-bench/leaderboard-record@7"}))
    assert main(["leaderboard", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: field format: 'memalpha-bench/leaderboard-record@7' is not a results record or scores.json" in err
    assert repr(RECORD_FORMAT) in err and "newer memalpha-bench" in err


def test_reports_and_the_site_show_standard_errors_and_intervals(scored, tmp_path):
    scores, record = scored
    spread = copy.deepcopy(scores)
    spread["uncertainty"]["tasks"]["squad"] = {"se": 0.125, "ci": [0.25, 0.75]}
    spread["uncertainty"]["overall"] = {"se": 0.0625, "ci": [0.375, 0.625]}
    table = summary_table(spread)
    assert "95% interval" in table.splitlines()[0]
    squad = next(line for line in table.splitlines() if line.startswith("| squad"))
    assert "0.125" in squad and "[0.250, 0.750]" in squad
    overall = next(line for line in table.splitlines() if line.startswith("| OVERALL"))
    assert "0.062" in overall and "[0.375, 0.625]" in overall

    shown = copy.deepcopy(record)
    shown["scores"]["uncertainty"] = spread["uncertainty"]
    render_site([shown], tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "0.500 ± 0.062" in md
    index = (tmp_path / "index.html").read_text()
    assert '<span class="se" title="standard error over instances; 95% interval [0.375, 0.625]">± 0.062</span>' in index
    page = (tmp_path / "entries" / f"{record['id']}.html").read_text()
    assert '<td class="num">± 0.125</td><td class="num">[0.250, 0.750]</td>' in page
    assert "2000 resamples of each task's instances, seed 0" in page
    board_csv = next((tmp_path / "data").glob("*.csv")).read_text().splitlines()
    assert board_csv[0].split(",")[9:12] == ["overall_se", "overall_ci_low", "overall_ci_high"]
    assert board_csv[1].split(",")[9:12] == ["0.0625", "0.375", "0.625"]
