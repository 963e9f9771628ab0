#!/usr/bin/env bash
# Mem-α GRPO on 4 nodes x 8 H100s (the paper's 32 GPUs), on a Ray cluster that is already up:
#   head node:    ray start --head --port=6379
#   other nodes:  ray start --address=<head>:6379
# Run this on the head node. The reader/judge runs elsewhere (e.g. serve_reader.sh on a fifth node);
# point READER_BASE_URL at it. The repo and its environment must sit at the same path on every node.
# Usage: reference_agent/scripts/train_4x8.sh [HYDRA_OVERRIDE ...]
# Not run on the CPU machine this recipe was written on: check your setup with dry_run.sh first.
#
# Variables (settable from the environment; relative paths are relative to the current directory):
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODEL="${MODEL:-Qwen/Qwen3-4B}"                          # policy to train (hub id or folder)
DATA_DIR="${DATA_DIR:-$REPO/data/memalpha-verl}"             # `memalpha train prepare --out` folder (shared)
READER_MODEL="${READER_MODEL:-Qwen/Qwen3-32B}"           # frozen reader of r1
READER_BASE_URL="${READER_BASE_URL:-http://reader-node:8001/v1}"
JUDGE_BASE_URL="${JUDGE_BASE_URL:-}"                     # empty: the reader's server
JUDGE_MODEL="${JUDGE_MODEL:-}"                           # empty: the reader model
NNODES="${NNODES:-4}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
WEIGHTS="${WEIGHTS:-beta0.05_gamma0.1}"                  # Table 4: reward_weights/<name>.yaml
OUTPUT_DIR="${OUTPUT_DIR:-$REPO/checkpoints/memalpha-qwen3-4b-$WEIGHTS}"  # on a shared file system
# The reader/judge response cache: one SQLite file opened only by the job's reader service on the head
# node, so it belongs on that node's own disk, not on the shared file system (SQLite's WAL mode needs
# memory shared between the processes using the file, which a network file system does not give).
REWARD_CACHE="${REWARD_CACHE:-${TMPDIR:-/tmp}/memalpha-reward-cache/$WEIGHTS.sqlite}"
TRAIN_PYTHON="${TRAIN_PYTHON:-python3}"                  # python of the GPU training environment
set -euo pipefail

source "$REPO/reference_agent/scripts/train_common.sh"
run_training "$@"
