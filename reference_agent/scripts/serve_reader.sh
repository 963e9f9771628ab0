#!/usr/bin/env bash
# Serve the frozen reader (r1 answers) and judge (r4, LLM-judged questions) with vLLM: Qwen3-32B behind
# an OpenAI-compatible server, as in the paper. Thinking is switched off per request by the reward code.
# Not run on the CPU machine this recipe was written on (see reference_agent/README.md).
#
# Variables (settable from the environment):
READER_MODEL="${READER_MODEL:-Qwen/Qwen3-32B}"   # model to serve (hub id or folder)
READER_PORT="${READER_PORT:-8001}"               # serves http://<host>:PORT/v1
READER_GPUS="${READER_GPUS:-6,7}"                # CUDA_VISIBLE_DEVICES for vLLM
READER_TP="${READER_TP:-2}"                      # tensor parallel size (32B in bf16 needs 2 x 80 GB)
READER_MAX_MODEL_LEN="${READER_MAX_MODEL_LEN:-32768}"  # reader prompts are capped at 30k tokens
READER_GPU_MEMORY="${READER_GPU_MEMORY:-0.9}"    # share of each GPU's memory vLLM takes
VLLM="${VLLM:-vllm}"                             # the vllm executable (its own environment)
set -euo pipefail

exec env CUDA_VISIBLE_DEVICES="$READER_GPUS" "$VLLM" serve "$READER_MODEL" \
    --served-model-name "$READER_MODEL" \
    --port "$READER_PORT" \
    --tensor-parallel-size "$READER_TP" \
    --max-model-len "$READER_MAX_MODEL_LEN" \
    --gpu-memory-utilization "$READER_GPU_MEMORY" \
    --enable-prefix-caching
