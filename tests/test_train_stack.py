"""The training stack's own tests (tests_train/, in .venv-train with verl 0.9.1), run from the main suite
so that the README's one test command covers both environments."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_training_stack_suite():
    if not TRAIN_PYTHON.exists():
        pytest.skip(
            f"{TRAIN_PYTHON.parent.parent} is absent: create it with reference_agent/scripts/setup_train_env.sh"
        )
    done = subprocess.run(
        [str(TRAIN_PYTHON), "-m", "pytest", "tests_train", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert done.returncode == 0, f"tests_train failed:\n{done.stdout[-8000:]}\n{done.stderr[-4000:]}"


def test_dry_run_in_the_main_environment_points_to_the_training_one(tmp_path, capsys):
    import importlib.util

    from benchmark.cli import main

    if importlib.util.find_spec("verl") is not None:
        pytest.skip("verl is installed in this environment")
    assert main(["train", "dry-run", "--data", str(tmp_path), "--reader-base-url", "http://x/v1"]) == 1
    assert "setup_train_env.sh" in capsys.readouterr().err
