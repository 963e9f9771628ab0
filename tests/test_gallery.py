"""The gallery of bad inputs (tests/gallery/<category>/): each case is a file, run through the real command
line (`benchmark.cli.main`, what `memalpha` runs), and its category's cases.toml says the exit status and a
fragment of the error (file, line, field, why). No case may end in a traceback, and no error message may
echo a huge input whole."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from leaderboard_helpers import metadata
from test_scoring_e2e import score_args

from benchmark.cli import main
from benchmark.running import ERRORS

GALLERY = Path(__file__).parent / "gallery"
MESSAGE_CHARS = 20_000  # no error output is longer (the largest input echoed is 20,000 characters long)
GOOD_LINE = {
    "instance_id": "squad-0",
    "task": "squad",
    "memory": {"core": "", "semantic": [{"id": "s0", "content": "Paris is in France."}], "episodic": []},
}
GOOD_META = metadata(("task", "squad"), {"squad": "a" * 64})
DEAD_READER = "http://127.0.0.1:9/v1"  # nobody serves it: the input is refused before any reader call


def table(category: str) -> dict[str, dict[str, Any]]:
    return tomllib.loads((GALLERY / category / "cases.toml").read_text(encoding="utf-8"))


def cases(category: str) -> list[Any]:
    return [pytest.param(name, expected, id=name) for name, expected in table(category).items()]


def cli(capsys, *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and len(captured.err) < MESSAGE_CHARS, captured.err[:2000]
    return code, captured.out, captured.err


def submission(folder: Path, meta: bytes | None = None, memories: bytes | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "submission.json").write_bytes(meta if meta is not None else json.dumps(GOOD_META).encode())
    good = json.dumps(GOOD_LINE).encode() + b"\n"
    (folder / "memories.jsonl").write_bytes(memories if memories is not None else good)
    return folder


@pytest.mark.parametrize("category", ["memories", "submissions", "json", "metric", "run_resume"])
def test_every_case_file_has_its_expectation(category):
    files = sorted(p.name for p in (GALLERY / category).iterdir() if p.name != "cases.toml")
    assert sorted(table(category)) == files
    assert all(isinstance(e["exit"], int) and e.get("message", "") for e in table(category).values())


# ------------------------------------------------------------------ memories files: score and validate


@pytest.mark.parametrize(("case", "expected"), cases("memories"))
def test_memories_file_is_refused_by_score(case, expected, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(GALLERY / "memories" / case, run / "memories.jsonl")
    code, _, err = cli(capsys, *score_args(run, tmp_path / "no-data", DEAD_READER))
    assert (code, expected["message"] in err) == (expected["exit"], True), err
    assert not {"predictions.jsonl", "scores.json", "report.md"} & {p.name for p in run.iterdir()}


@pytest.mark.parametrize(("case", "expected"), cases("memories"))
def test_memories_file_is_refused_by_leaderboard_validate(case, expected, tmp_path, capsys):
    folder = submission(tmp_path / "sub", memories=(GALLERY / "memories" / case).read_bytes())
    code, _, err = cli(capsys, "leaderboard", "validate", folder)
    assert (code, expected.get("validate", expected["message"]) in err) == (expected["exit"], True), err


# ------------------------------------------------------------------ submission.json: validate and add


@pytest.mark.parametrize(("case", "expected"), cases("submissions"))
def test_submission_file_is_refused_by_validate_and_add(case, expected, tmp_path, capsys):
    folder = submission(tmp_path / "sub", meta=(GALLERY / "submissions" / case).read_bytes())
    code, _, err = cli(capsys, "leaderboard", "validate", folder)
    assert (code, expected["message"] in err) == (expected["exit"], True), err
    results = tmp_path / "results"
    code, _, err = cli(capsys, "leaderboard", "add", folder, "--data", tmp_path / "no-data", "--results", results)
    assert (code, expected["message"] in err) == (expected["exit"], True), err
    assert not results.exists()  # a refused add leaves no trace


# ------------------------------------------------------------------ JSON edge cases in every kind of file


def holding(case: str) -> bytes:
    """A JSON object whose field "x" is the case's value (bytes: some cases are not UTF-8)."""
    return b'{"x": ' + (GALLERY / "json" / case).read_bytes().strip() + b"}\n"


def run_target(target: str, doc: bytes, tmp_path: Path) -> list[Any]:
    """Place `doc` where `target` reads it; the command line that reads it."""
    if target == "score":
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "memories.jsonl").write_bytes(doc)
        return score_args(tmp_path / "run", tmp_path / "no-data", DEAD_READER)
    if target == "validate":
        return ["leaderboard", "validate", submission(tmp_path / "sub", meta=doc)]
    if target == "add":
        folder = submission(tmp_path / "sub", meta=doc)
        return ["leaderboard", "add", folder, "--data", tmp_path / "no-data", "--results", tmp_path / "results"]
    if target == "render":  # a results-store record
        (tmp_path / "results").mkdir()
        (tmp_path / "results" / "entry.json").write_bytes(doc)
        return ["leaderboard", "render", "--results", tmp_path / "results", "--out", tmp_path / "site"]
    if target == "metric":
        (tmp_path / "lines.jsonl").write_bytes(doc)
        return ["metric", tmp_path / "lines.jsonl"]
    if target == "manifest":
        (tmp_path / "task").mkdir()
        (tmp_path / "task" / "manifest.json").write_bytes(doc)
        return ["tasks", "show", tmp_path / "task"]
    if target == "score-data":  # the manifest of a built task, as `memalpha score --data` reads it
        (tmp_path / "data" / "squad").mkdir(parents=True)
        (tmp_path / "data" / "squad" / "manifest.json").write_bytes(doc)
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "memories.jsonl").write_text(json.dumps(GOOD_LINE) + "\n")
        return score_args(tmp_path / "run", tmp_path / "data", DEAD_READER)
    raise AssertionError(target)


@pytest.mark.parametrize("target", ["score", "validate", "add", "render", "metric", "manifest", "score-data"])
@pytest.mark.parametrize(("case", "expected"), cases("json"))
def test_json_edge_case_is_refused_with_its_place(case, expected, target, tmp_path, capsys):
    code, _, err = cli(capsys, *run_target(target, holding(case), tmp_path))
    assert (code, expected["message"] in err) == (expected["exit"], True), err
    if "field" in expected:
        assert f"field '{expected['field']}'" in err, err
    assert not (tmp_path / "site").exists()  # render stops before writing anything


# ------------------------------------------------------------------ metric input lines


@pytest.mark.parametrize(("case", "expected"), cases("metric"))
def test_metric_input_is_refused_after_the_lines_before_it(case, expected, capsys):
    code, out, err = cli(capsys, "metric", GALLERY / "metric" / case)
    assert (code, expected["message"] in err) == (expected["exit"], True), err
    assert out.count("\n") == expected["scored"]  # output lines end at "\n"; the text may hold U+2028


# ------------------------------------------------------------------ a run resumed from its files


@pytest.fixture(scope="module")
def finished_run(squad_data, tmp_path_factory) -> Path:
    """A chunk-store run over one squad instance, as a resume finds it."""
    run = tmp_path_factory.mktemp("gallery") / "run"
    assert main([*run_args(run, squad_data), "--quiet"]) == 0
    return run


def run_args(run: Path, data: Path) -> list[str]:
    return ["run", "--agent", "chunk-store", "--tasks", "squad", "--data", str(data), "--out", str(run), "--limit", "1"]


@pytest.mark.realdata
@pytest.mark.parametrize(("case", "expected"), cases("run_resume"))
def test_run_resumes_from_its_memories_file_or_names_the_bad_line(
    case, expected, finished_run, squad_data, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    given = (GALLERY / "run_resume" / case).read_bytes()
    (run / "memories.jsonl").write_bytes(given)
    code, _, err = cli(capsys, *run_args(run, squad_data), "--quiet")
    assert (code, expected["message"] in err) == (expected["exit"], True), err
    after = (run / "memories.jsonl").read_bytes()
    if code != 0:
        assert after == given  # a refused resume changes nothing
        return
    kept = b"".join(line + b"\n" for line in given.split(b"\n")[: expected["kept_lines"]])
    assert after.startswith(kept)  # the lines given, byte for byte (a cut-off last line dropped)
    added = after[len(kept) :].split(b"\n")  # then the run's own instance, done again
    assert added[-1] == b"" and [json.loads(x)["task"] for x in added[:-1]] == ["squad"]
    assert not (run / ERRORS).exists()


@pytest.mark.realdata
@pytest.mark.parametrize(("case", "expected"), cases("json"))
def test_scores_file_edge_case_is_refused(case, expected, finished_run, squad_data, tmp_path, capsys):
    """`memalpha score` reads the scores.json already in a run folder (are they made with other settings?)
    with the strict reader too, before any reader call, and leaves the folder as it was."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "scores.json").write_bytes(holding(case))
    code, _, err = cli(capsys, *score_args(run, squad_data, DEAD_READER))
    assert (code, expected["message"] in err, f"{run / 'scores.json'}" in err) == (expected["exit"], True, True), err
    assert (run / "scores.json").read_bytes() == holding(case) and not (run / "predictions.jsonl").exists()


@pytest.mark.realdata
@pytest.mark.parametrize(("case", "expected"), cases("json"))
def test_run_config_edge_case_is_refused(case, expected, finished_run, squad_data, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "config.json").write_bytes(holding(case))
    code, _, err = cli(capsys, *run_args(run, squad_data), "--quiet")
    assert (code, expected["message"] in err, "config.json" in err) == (expected["exit"], True, True), err
