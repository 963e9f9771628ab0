# Sourced by train_1x8.sh, train_4x8.sh and gpu_smoke.sh after they set their variables: the pre-flight
# config check, then verl's trainer with the recipe config (`reference_agent.verl_recipe.trainer`: verl's
# main_ppo flow, logging Mem-α's reward terms per step). Extra arguments are Hydra overrides (or flags
# such as `--cfg job`, which prints the composed config and exits).
RECIPE="$REPO/reference_agent/verl_recipe/config"
DATA_DIR="$(realpath -m "$DATA_DIR")"      # absolute: the trainer runs from $REPO, Ray workers anywhere
OUTPUT_DIR="$(realpath -m "$OUTPUT_DIR")"
REWARD_CACHE="$(realpath -m "$REWARD_CACHE")"  # opened by the reader service, on the head node only

memalpha_overrides=(
    "reward_weights=$WEIGHTS"
    "data.train_files=$DATA_DIR/train.parquet"
    "data.val_files=$DATA_DIR/val.parquet"
    "actor_rollout_ref.model.path=$MODEL"
    "actor_rollout_ref.rollout.agent.agent_loop_config_path=$RECIPE/agent_loop.yaml"
    "trainer.nnodes=$NNODES"
    "trainer.n_gpus_per_node=$GPUS_PER_NODE"
    "trainer.default_local_dir=$OUTPUT_DIR"
    "memalpha.reader.base_url=$READER_BASE_URL"
    "memalpha.reader.model=$READER_MODEL"
    "memalpha.cache=$REWARD_CACHE"
)
if [[ -n "$JUDGE_BASE_URL" ]]; then memalpha_overrides+=("memalpha.judge.base_url=$JUDGE_BASE_URL"); fi
if [[ -n "$JUDGE_MODEL" ]]; then memalpha_overrides+=("memalpha.judge.model=$JUDGE_MODEL"); fi

run_training() {
    cd "$REPO"
    if [[ "${SKIP_CHECK:-0}" != 1 ]]; then
        "$TRAIN_PYTHON" -m reference_agent.verl_recipe.compose "${memalpha_overrides[@]}" "$@"
    fi
    "$TRAIN_PYTHON" -m reference_agent.verl_recipe.trainer "${memalpha_overrides[@]}" "$@"
}
