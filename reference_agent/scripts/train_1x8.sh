#!/usr/bin/env bash
# Mem-α GRPO on one node of 8 H100s: GPUs 0-3 train (FSDP actor + vLLM rollout, colocated), GPUs 4-7
# serve the Qwen3-32B reader/judge (serve_reader.sh, started here unless START_READER=0). Four and four:
# verl needs train_batch_size x rollout.n (256) divisible by the training GPUs, and the reader's requests
# are what dominates a step (users report ~200 h on 8 A100s, mostly waiting for the reader).
# Usage: reference_agent/scripts/train_1x8.sh [HYDRA_OVERRIDE ...]
# Not run on the CPU machine this recipe was written on: check your setup with dry_run.sh first.
#
# Variables (settable from the environment; relative paths are relative to the current directory):
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODEL="${MODEL:-Qwen/Qwen3-4B}"                          # policy to train (hub id or folder)
DATA_DIR="${DATA_DIR:-$REPO/data/memalpha-verl}"             # `memalpha train prepare --out` folder
READER_MODEL="${READER_MODEL:-Qwen/Qwen3-32B}"           # frozen reader of r1
READER_BASE_URL="${READER_BASE_URL:-http://127.0.0.1:8001/v1}"
JUDGE_BASE_URL="${JUDGE_BASE_URL:-}"                     # empty: the reader's server
JUDGE_MODEL="${JUDGE_MODEL:-}"                           # empty: the reader model
NNODES="${NNODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-4}"                      # training GPUs on this node
TRAIN_GPUS="${TRAIN_GPUS:-0,1,2,3}"                      # CUDA_VISIBLE_DEVICES for training
START_READER="${START_READER:-1}"                        # 1: start serve_reader.sh on READER_GPUS
READER_GPUS="${READER_GPUS:-4,5,6,7}"
READER_TP="${READER_TP:-4}"
WEIGHTS="${WEIGHTS:-beta0.05_gamma0.1}"                  # Table 4: reward_weights/<name>.yaml
OUTPUT_DIR="${OUTPUT_DIR:-$REPO/checkpoints/memalpha-qwen3-4b-$WEIGHTS}"
REWARD_CACHE="${REWARD_CACHE:-$OUTPUT_DIR/reward_cache.sqlite}"  # every reader/judge answer (this node's disk)
TRAIN_PYTHON="${TRAIN_PYTHON:-python3}"                  # python of the GPU training environment
set -euo pipefail

source "$REPO/reference_agent/scripts/train_common.sh"

if [[ "$START_READER" == 1 ]]; then
    mkdir -p "$OUTPUT_DIR"
    READER_GPUS="$READER_GPUS" READER_TP="$READER_TP" READER_MODEL="$READER_MODEL" \
        "$REPO/reference_agent/scripts/serve_reader.sh" > "$OUTPUT_DIR/reader.log" 2>&1 &
    reader_pid=$!
    trap 'kill "$reader_pid" 2>/dev/null || true' EXIT
    echo "waiting for the reader at $READER_BASE_URL (log: $OUTPUT_DIR/reader.log)"
    until curl -sf "${READER_BASE_URL%/v1}/health" > /dev/null; do
        kill -0 "$reader_pid" 2>/dev/null || { echo "the reader server exited; see $OUTPUT_DIR/reader.log" >&2; exit 1; }
        sleep 10
    done
fi

export CUDA_VISIBLE_DEVICES="$TRAIN_GPUS"
run_training "$@"
