#!/usr/bin/env bash
# Create or update the training stack's environment, .venv-train, from the pins in
# reference_agent/requirements-train.txt. Idempotent: when the pins, the constraints and
# pyproject.toml are unchanged since the last successful run, it only checks the environment.
#
# Variables (settable from the environment):
#   TRAIN_VENV   where the environment lives (default: <repo>/.venv-train)
#   PYTHON       the interpreter to create it with (default: python3; verl 0.9.1 needs 3.10-3.12)
#   TORCH_SPEC   the torch to preinstall (default: torch==2.13.0, kept by .ci/torch-cpu.txt)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TRAIN_VENV="${TRAIN_VENV:-$REPO/.venv-train}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
REQUIREMENTS="$REPO/reference_agent/requirements-train.txt"
CONSTRAINTS="$REPO/.ci/torch-cpu.txt"  # torch only: the main environment's other pins differ
STAMP="$TRAIN_VENV/.memalpha-train-stamp"

for f in "$REQUIREMENTS" "$CONSTRAINTS" "$REPO/pyproject.toml"; do
    [[ -f "$f" ]] || { echo "setup_train_env: missing $f" >&2; exit 2; }
done

"$PYTHON" - <<'EOF' || { echo "setup_train_env: verl 0.9.1 needs Python 3.10-3.12 (set PYTHON=...)" >&2; exit 2; }
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
EOF

wanted="$(cat "$REQUIREMENTS" "$CONSTRAINTS" "$REPO/pyproject.toml" | sha256sum | cut -d' ' -f1) $TORCH_SPEC"
pip=("$TRAIN_VENV/bin/python" -m pip)

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$wanted" ]] && "$TRAIN_VENV/bin/python" -c "import verl" 2>/dev/null; then
    echo "setup_train_env: $TRAIN_VENV is up to date"
else
    [[ -x "$TRAIN_VENV/bin/python" ]] || "$PYTHON" -m venv "$TRAIN_VENV"
    "${pip[@]}" install -q "$TORCH_SPEC" -c "$CONSTRAINTS"
    verl_pin="$(grep -E '^verl==' "$REQUIREMENTS")"
    "${pip[@]}" install -q --no-deps "$verl_pin"
    "${pip[@]}" install -q -r "$REQUIREMENTS" -c "$CONSTRAINTS"
    # the project itself, for `memalpha` and `reference_agent` on every Ray worker of this machine
    "${pip[@]}" install -q --no-deps -e "$REPO"
    echo "$wanted" > "$STAMP"
fi

# memalpha-bench pins newer huggingface-hub and tokenizers than transformers 5.10 takes; it is
# installed with --no-deps on purpose, so its own lines are expected. Anything else is a real conflict.
problems="$("${pip[@]}" check 2>&1 | grep -v -e '^memalpha-bench ' -e '^No broken requirements' || true)"
if [[ -n "$problems" ]]; then
    echo "setup_train_env: pip check found conflicts:" >&2
    echo "$problems" >&2
    exit 1
fi
"$TRAIN_VENV/bin/python" -c "import verl, transfer_queue, tensordict; print('setup_train_env: verl', verl.__version__, '| tensordict', tensordict.__version__, '| in', '$TRAIN_VENV')"
