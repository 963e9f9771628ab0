#!/usr/bin/env bash
# The whole dry run from a clean checkout: create or reuse .venv-train, then `memalpha train dry-run`:
# the full verl config checked and printed, one instance rolled out through verl's agent-loop and
# reward workers on CPU, its rewards and advantages printed. Extra arguments go to `memalpha train
# dry-run` (e.g. --n 4 --max-chunks 2, or Hydra overrides KEY=VALUE).
#
# Variables (settable from the environment):
READER_BASE_URL="${READER_BASE_URL:-http://127.0.0.1:8001/v1}"  # OpenAI-compatible reader (and judge)
READER_MODEL="${READER_MODEL:-Qwen/Qwen3-32B}"
POLICY_BASE_URL="${POLICY_BASE_URL:-}"     # /v1/completions server playing the policy; empty: the reader's
POLICY_MODEL="${POLICY_MODEL:-}"           # empty: READER_MODEL
MODEL="${MODEL:-Qwen/Qwen3-4B}"            # the policy's tokenizer (hub id or folder)
DATA_DIR="${DATA_DIR:-data/tasks}"         # built tasks (`memalpha tasks build --out`)
TOKENIZER="${TOKENIZER:-qwen3}"            # token counter of the rewards (`simple` works offline)
OUT="${OUT:-runs/train-dry-run}"
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$REPO/reference_agent/scripts/setup_train_env.sh"
cd "$REPO"
args=(--data "$DATA_DIR" --model "$MODEL" --reader-base-url "$READER_BASE_URL" --reader-model "$READER_MODEL"
      --tokenizer "$TOKENIZER" --out "$OUT")
if [[ -n "$POLICY_BASE_URL" ]]; then args+=(--policy-base-url "$POLICY_BASE_URL"); fi
if [[ -n "$POLICY_MODEL" ]]; then args+=(--policy-model "$POLICY_MODEL"); fi
exec "${TRAIN_VENV:-$REPO/.venv-train}/bin/memalpha" train dry-run "${args[@]}" "$@"
