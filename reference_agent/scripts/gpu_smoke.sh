#!/usr/bin/env bash
# The smallest real run of the recipe, for the first machine with a GPU: 2 instances x 2 rollouts,
# 2 training steps on ONE GPU, with verl's vLLM rollout, FSDP actor and reference model, and the reader
# (a small model by default) served by vLLM on the same GPU. Minutes, not hours; it checks the plumbing,
# not the learning. Not run on the CPU machine this recipe was written on (no GPU was lent to it).
#
# It must print, and checks that it printed (else it exits 1 naming what is missing):
#   - for each of step:1 and step:2, verl's console metrics line with the reward terms
#     memalpha/r1/mean, memalpha/r3/mean, memalpha/r2/mean, memalpha/r4/mean,
#     memalpha/memory_tokens/mean, and actor/pg_loss, actor/grad_norm, critic/score/mean
#     (pg_loss and grad_norm finite numbers);
#   - at the end: "gpu_smoke: OK" and those two lines.
# Everything it prints is also in $OUT/train.log (the reader's log: $OUT/reader.log).
#
# Variables (settable from the environment):
MODEL="${MODEL:-Qwen/Qwen3-0.6B}"            # the policy (hub id or folder); small, for speed
READER_MODEL="${READER_MODEL:-$MODEL}"       # the reader and judge (the policy's model by default)
READER_BASE_URL="${READER_BASE_URL:-}"       # empty: serve READER_MODEL with vLLM on GPU 0 here
READER_PORT="${READER_PORT:-8011}"
READER_GPU_MEMORY="${READER_GPU_MEMORY:-0.25}"    # the reader's share of the GPU
ROLLOUT_GPU_MEMORY="${ROLLOUT_GPU_MEMORY:-0.35}"  # the rollout's vLLM share (the FSDP actor uses the rest)
TASKS_DIR="${TASKS_DIR:-}"                   # built tasks with squad; empty: build squad from MEMALPHA_RAW_DIR
MEMALPHA_RAW_DIR="${MEMALPHA_RAW_DIR:-}"     # raw samples (DIR/squad/), used when TASKS_DIR is empty
TOKENIZER="${TOKENIZER:-qwen3}"              # token counter of the rewards (`simple` needs no download)
OUT="${OUT:-runs/gpu-smoke}"
TRAIN_PYTHON="${TRAIN_PYTHON:-python3}"      # python of the GPU training environment (README, section 1)
VLLM="${VLLM:-vllm}"
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$OUT"
OUT="$(realpath "$OUT")"
LOG="$OUT/train.log"
memalpha=("$TRAIN_PYTHON" -m benchmark.cli)

# 1. Data: two squad instances as verl parquet.
if [[ -z "$TASKS_DIR" ]]; then
    [[ -d "$MEMALPHA_RAW_DIR/squad" ]] || { echo "gpu_smoke: set TASKS_DIR, or MEMALPHA_RAW_DIR with squad/ in it" >&2; exit 2; }
    TASKS_DIR="$OUT/tasks"
    "${memalpha[@]}" tasks build squad --from raw --raw-dir "$MEMALPHA_RAW_DIR" --tokenizer "$TOKENIZER" \
        --limit 4 --out "$TASKS_DIR" --quiet
fi
"${memalpha[@]}" train prepare --data "$TASKS_DIR" --tasks squad --limit 2 --val-suite none --out "$OUT/data"

# 2. The reader, on this GPU, unless one is given.
if [[ -z "$READER_BASE_URL" ]]; then
    READER_BASE_URL="http://127.0.0.1:$READER_PORT/v1"
    READER_GPUS=0 READER_TP=1 READER_PORT="$READER_PORT" READER_MODEL="$READER_MODEL" \
        READER_GPU_MEMORY="$READER_GPU_MEMORY" READER_MAX_MODEL_LEN=32768 VLLM="$VLLM" \
        "$REPO/reference_agent/scripts/serve_reader.sh" > "$OUT/reader.log" 2>&1 &
    reader_pid=$!
    trap 'kill "$reader_pid" 2>/dev/null || true; wait "$reader_pid" 2>/dev/null || true' EXIT
    echo "gpu_smoke: waiting for the reader at $READER_BASE_URL (log: $OUT/reader.log)"
    for _ in $(seq 120); do
        curl -sf "${READER_BASE_URL%/v1}/health" > /dev/null && break
        kill -0 "$reader_pid" 2>/dev/null || { echo "gpu_smoke: the reader exited; see $OUT/reader.log" >&2; exit 1; }
        sleep 5
    done
    curl -sf "${READER_BASE_URL%/v1}/health" > /dev/null || { echo "gpu_smoke: no reader after 10 min" >&2; exit 1; }
fi

# 3. Two training steps on one GPU.
DATA_DIR="$OUT/data"
NNODES=1
GPUS_PER_NODE=1
WEIGHTS=beta0.05_gamma0.1
OUTPUT_DIR="$OUT/checkpoints"
REWARD_CACHE="$OUT/reward_cache.sqlite"
JUDGE_BASE_URL=""
JUDGE_MODEL=""
source "$REPO/reference_agent/scripts/train_common.sh"
export CUDA_VISIBLE_DEVICES=0
smoke_overrides=(
    "data.val_files=$DATA_DIR/train.parquet"   # no validation runs (test_freq=-1); verl still loads it
    data.train_batch_size=2
    actor_rollout_ref.rollout.n=2
    actor_rollout_ref.actor.ppo_mini_batch_size=2
    trainer.total_training_steps=2
    trainer.total_epochs=2  # one batch of 2 instances per epoch
    trainer.save_freq=-1
    trainer.test_freq=-1
    trainer.val_before_train=false
    "trainer.logger=[console]"
    "actor_rollout_ref.rollout.gpu_memory_utilization=$ROLLOUT_GPU_MEMORY"
    data.max_response_length=512
    actor_rollout_ref.rollout.max_model_len=8192
    "memalpha.tokenizer=$TOKENIZER"
    memalpha.scorer.max_tokens=64
    memalpha.judge.max_tokens=128
)
set -o pipefail
PYTHONUNBUFFERED=1 run_training "${smoke_overrides[@]}" "$@" 2>&1 | tee "$LOG"

# 4. What it must have printed.
keys=(memalpha/r1/mean memalpha/r3/mean memalpha/r2/mean memalpha/r4/mean memalpha/memory_tokens/mean
      actor/pg_loss actor/grad_norm critic/score/mean)
status=0
lines=()
for step in 1 2; do
    line="$(grep -E "step:$step - " "$LOG" | tail -1 || true)"
    if [[ -z "$line" ]]; then echo "gpu_smoke: no metrics line for step:$step" >&2; status=1; continue; fi
    for key in "${keys[@]}"; do
        grep -q "$key:" <<< "$line" || { echo "gpu_smoke: step:$step has no $key" >&2; status=1; }
    done
    for key in actor/pg_loss actor/grad_norm; do
        grep -Eq "$key:-?[0-9]" <<< "$line" || { echo "gpu_smoke: step:$step: $key is not a number" >&2; status=1; }
    done
    lines+=("$line")
done
[[ $status == 0 ]] || exit 1
echo "gpu_smoke: OK"
printf '%s\n' "${lines[@]}"
