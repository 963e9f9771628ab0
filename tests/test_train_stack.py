"""The training stack's own tests (tests_train/, in .venv-train with verl 0.9.1), run from the main suite
so that the README's one test command covers both environments.

No outer wall clock: every test inside has its own pytest-timeout limit (tests_train/conftest.py), so a
hung test fails alone, with its name, and the rest still run. The inner suite runs in its own process
session; whatever way this test ends, nothing of that session (pytest, Ray's cluster, its agents)
outlives it, and a run that ends by itself must have stopped all of it itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from servers import run_in_session

REPO = Path(__file__).resolve().parents[1]
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"


@pytest.mark.slow
@pytest.mark.timeout(0)  # the limits are per test, inside
def test_training_stack_suite():
    if not TRAIN_PYTHON.exists():
        pytest.skip(
            f"{TRAIN_PYTHON.parent.parent} is absent: create it with reference_agent/scripts/setup_train_env.sh"
        )
    done, left = run_in_session(
        [str(TRAIN_PYTHON), "-m", "pytest", "tests_train", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    assert done.returncode == 0, f"tests_train failed:\n{done.stdout[-10000:]}\n{done.stderr[-3000:]}"
    assert not left, f"processes of the training-stack suite outlived it: {left}"


@pytest.mark.parametrize(
    "command",
    [["dry-run", "--data", ".", "--reader-base-url", "http://x/v1"], ["step-check", "--rows", "rows.jsonl"]],
)
def test_the_training_commands_in_the_main_environment_point_to_the_training_one(command, capsys):
    import importlib.util

    from benchmark.cli import main

    if importlib.util.find_spec("verl") is not None:
        pytest.skip("verl is installed in this environment")
    assert main(["train", *command]) == 1  # a runtime failure: the environment lacks the training stack
    assert "setup_train_env.sh" in capsys.readouterr().err
