"""The README's offline path, run as it is written: its bash block, command by command, in a clean folder,
with the real raw samples as `$RAW`, a tiny local model as `$MODEL` and a local server at `$READER_URL`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.realdata
README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- offline-path:"


def offline_block() -> str:
    text = README.read_text()
    after = text[text.index(MARKER) :]
    return re.search(r"```bash\n(.*?)```", after, re.S).group(1)


def test_the_block_is_the_whole_path():
    commands = [line.split()[:3] for line in offline_block().splitlines() if line.startswith("memalpha")]
    assert commands == [
        ["memalpha", "tasks", "build"],
        ["memalpha", "tasks", "validate"],
        ["memalpha", "eval", "--agent"],
        ["memalpha", "eval", "--agent"],
    ]


def test_the_readme_offline_path_runs_from_a_clean_folder(raw_dir, tiny_model, tmp_path, scripted_server):
    server = scripted_server(lambda request: "an answer")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "RAW": str(raw_dir),
        "MODEL": str(tiny_model),
        "READER_URL": server.base_url,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
        "MEMALPHA_CACHE": str(tmp_path / "cache"),
    }
    env.pop("MEMALPHA_DATA", None)
    folder = tmp_path / "clean"
    folder.mkdir()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", offline_block()],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert sorted(p.name for p in folder.iterdir()) == ["data", "runs"]

    smoke = json.loads((folder / "runs" / "smoke" / "scores.json").read_text())
    assert smoke["scorer"]["questions_per_instance"] == 2
    assert smoke["scorer"]["reader"]["backend"] == "hf" and smoke["scorer"]["budget"]["counter"]["name"] == "simple"
    assert {t: v["questions"] for t, v in smoke["tasks"].items()} == {"squad": 2, "icl_trec_coarse": 2}

    full = json.loads((folder / "runs" / "chunk-store" / "scores.json").read_text())
    manifests = {t: json.loads((folder / "data" / t / "manifest.json").read_text()) for t in full["tasks"]}
    assert "questions_per_instance" not in full["scorer"]
    for task, scored in full["tasks"].items():  # every question of the evaluated split
        split = "validation" if task == "squad" else "test"
        assert scored["questions"] == manifests[task]["splits"][split]["questions"]
        assert manifests[task]["tokenizer"]["name"] == "simple"
    assert server.count == sum(v["questions"] for v in full["tasks"].values())
