#!/usr/bin/env bash
# A verl FSDP actor checkpoint -> a Hugging Face model folder (verl's model merger), ready for
# `memalpha eval --agent memalpha --agent-opt model=<HF_DIR>` or for vLLM.
# Not run on the CPU machine this recipe was written on (no checkpoint of real weights there).
#
# Variables (settable from the environment):
CHECKPOINT="${CHECKPOINT:-checkpoints/memalpha-qwen3-4b-beta0.05_gamma0.1/global_step_205/actor}"
HF_DIR="${HF_DIR:-checkpoints/memalpha-qwen3-4b-hf}"
TRAIN_PYTHON="${TRAIN_PYTHON:-python3}"
set -euo pipefail

[[ -d "$CHECKPOINT" ]] || { echo "convert_checkpoint: no checkpoint folder $CHECKPOINT" >&2; exit 2; }
"$TRAIN_PYTHON" -m verl.model_merger merge --backend fsdp --local_dir "$CHECKPOINT" --target_dir "$HF_DIR"
echo "wrote $HF_DIR"
