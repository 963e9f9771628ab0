"""Size caps on the memories file `score` reads: checked before parsing, named by file and line, configurable."""

from __future__ import annotations

import json

import pytest

from benchmark import input_limits
from benchmark.cli import main
from benchmark.input_limits import InputLimits, InputTooLarge, check_memories_file
from tasks.errors import UsageError


def record_line(instance: str, size: int) -> str:
    memory = {"core": "x" * size, "semantic": [], "episodic": []}
    return json.dumps({"instance_id": instance, "task": "squad", "memory": memory})


@pytest.fixture
def memories(tmp_path):
    """Five records, the fourth much the longest; lines 3 and 6 blank."""
    path = tmp_path / "memories.jsonl"
    sizes = [100, 300, 200, 5000, 50]
    lines = [record_line(f"i{n}", size) for n, size in enumerate(sizes)]
    path.write_text("\n".join([lines[0], lines[1], "", lines[2], lines[3], "", lines[4]]) + "\n", encoding="utf-8")
    return path, len(lines[3])


def test_a_record_over_its_cap_is_named_by_line_even_across_scan_blocks(memories, monkeypatch):
    path, longest = memories
    for block in (7, 64, 1 << 20):  # lines cut across many reads, and one read for the whole file
        monkeypatch.setattr(input_limits, "SCAN_BYTES", block)
        with pytest.raises(InputTooLarge) as raised:
            check_memories_file(path, InputLimits(record_bytes=longest - 1))
        assert str(raised.value) == (
            f"{path}, line 5: a record of {longest:,} bytes, over the limit of {longest - 1:,} for one memory "
            "(raise it with --input-limit record_bytes=1M)"
        )
    check_memories_file(path, InputLimits(record_bytes=longest))  # at the cap: accepted


def test_a_last_line_without_newline_is_measured_too(tmp_path):
    path = tmp_path / "memories.jsonl"
    path.write_text(record_line("a", 10) + "\n" + record_line("b", 900), encoding="utf-8")
    with pytest.raises(InputTooLarge, match=r"line 2: a record of 9\d\d bytes"):
        check_memories_file(path, InputLimits(record_bytes=500))


def test_the_whole_file_over_its_cap(memories):
    path, _ = memories
    size = path.stat().st_size
    with pytest.raises(InputTooLarge, match=rf"{size:,} bytes, over the limit of 1,000 for a memories file"):
        check_memories_file(path, InputLimits(memories_bytes=1000))


def test_limits_are_set_by_name_with_units_and_bad_settings_are_named():
    assert InputLimits.parse(None) == InputLimits()
    limits = InputLimits.parse(["record_bytes=64K", "memories-bytes = 3G"])
    assert limits == InputLimits(memories_bytes=3 << 30, record_bytes=64 << 10)
    assert InputLimits.parse(["record_bytes=1000"]).record_bytes == 1000
    with pytest.raises(UsageError, match="unknown limit 'entries'; the limits are memories_bytes, record_bytes"):
        InputLimits.parse(["entries=5"])
    for bad in ("record_bytes=", "record_bytes=-3", "record_bytes=2T", "record_bytes=0"):
        with pytest.raises(UsageError, match="must be a positive number of bytes"):
            InputLimits.parse([bad])


def test_score_refuses_an_oversized_record_before_reading_anything(memories, tmp_path, capsys):
    path, longest = memories
    run = path.parent
    code = main(
        [
            "score",
            str(run),
            "--data",
            str(tmp_path / "no-data-needed"),
            "--reader",
            "openai",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--tokenizer",
            "simple",
            "--quiet",
            "--input-limit",
            "record_bytes=2K",
        ]
    )
    assert code == 1  # the data is at fault, not the command line
    err = capsys.readouterr().err
    assert f"{path}, line 5: a record of {longest:,} bytes, over the limit of 2,048" in err
    assert "--input-limit record_bytes=" in err
    assert not (run / "predictions.jsonl").exists()


def test_a_bad_limit_is_a_usage_error_of_the_command(memories, tmp_path, capsys):
    run = memories[0].parent
    argv = ["score", str(run), "--data", str(tmp_path / "none"), "--tokenizer", "simple", "--quiet"]
    assert main([*argv, "--reader", "openai", "--model", "m", "--input-limit", "entries=5"]) == 2
    assert "--input-limit 'entries=5': unknown limit 'entries'" in capsys.readouterr().err


def test_the_python_api_checks_the_same_caps_before_reading(memories, tmp_path):
    from benchmark import api

    path, longest = memories
    reader = api.make_reader("openai", "m", base_url="http://127.0.0.1:9/v1")  # never asked: refused before
    with pytest.raises(InputTooLarge, match=f"line 5: a record of {longest:,} bytes"):
        api.score(path.parent, reader=reader, data=tmp_path / "none", limits=InputLimits(record_bytes=2048))
