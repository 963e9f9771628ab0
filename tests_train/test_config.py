"""The recipe's verl config: composition with the paper's settings, every key checked, bad keys named."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from reference_agent.verl_recipe.compose import (
    RECIPE_CONFIG_DIR,
    ConfigError,
    compose_recipe,
    is_verl_key,
    main,
    recipe_keys,
    verl_defaults,
    weight_options,
)
from reference_agent.verl_recipe.settings import RecipeSettings, settings_of
from tasks.errors import TaskError

REPO = Path(__file__).resolve().parents[1]
TABLE_4 = {  # (beta, gamma) of each named setting
    "beta0.05_gamma0.0": (0.05, 0.0),
    "beta0.0_gamma0.1": (0.0, 0.1),
    "beta0.05_gamma0.1": (0.05, 0.1),
    "beta0.2_gamma0.1": (0.2, 0.1),
    "beta0.4_gamma0.1": (0.4, 0.1),
}


def compose(overrides=(), **kwargs):
    """The recipe, fully checked except for the data files and the model (none exist here)."""
    return compose_recipe(overrides, files=(), **kwargs)


@pytest.fixture(scope="module")
def cfg():
    return compose()


def test_paper_settings(cfg):
    a, rollout = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    assert cfg.actor_rollout_ref.model.path == "Qwen/Qwen3-4B"
    assert cfg.algorithm.adv_estimator == "grpo_vectorized" and cfg.trainer.use_v1
    assert (cfg.data.train_batch_size, rollout.n, a.optim.lr) == (32, 8, 1e-6)
    assert (cfg.data.max_response_length, rollout.response_length) == (2048, 2048)
    assert rollout.prompt_length == cfg.data.max_prompt_length == 6144
    assert rollout.max_model_len >= rollout.prompt_length + rollout.response_length
    assert a.ppo_mini_batch_size * rollout.n == 32  # rows per optimiser step, as the original
    assert (a.use_kl_loss, a.kl_loss_coef, a.kl_loss_type) == (True, 0.001, "low_var_kl")  # the code, not the paper
    assert a.loss_agg_mode == "seq-mean-token-mean"  # every row weighs the same, as the original's 1 row per GPU
    assert cfg.trainer.v1.trainer_mode == "sync"
    assert cfg.data.apply_chat_template_kwargs.enable_thinking is False
    assert (cfg.trainer.nnodes, cfg.trainer.n_gpus_per_node, cfg.trainer.total_training_steps) == (4, 8, 205)
    # V1 ends with the last epoch: the epochs of memalpha-train's 562 instances must reach step 205
    assert cfg.trainer.total_epochs * (562 // cfg.data.train_batch_size) >= cfg.trainer.total_training_steps
    assert rollout.agent.default_agent_loop == "memalpha_agent"
    assert cfg.reward.reward_manager.name == "MemAlphaRewardManager"
    settings = settings_of(cfg)
    assert (settings.reward.beta, settings.reward.gamma) == (0.05, 0.1)
    assert settings.reward.r4_deletes == "zero" and not settings.reward.clip_r3  # the original's quirks
    assert cfg.trainer.experiment_name == "memalpha-qwen3-4b-b0.05-g0.1"


# What the original's actor ran with (its launch script over verl 0.4's yaml defaults), each set in the
# recipe's own file, so that a change of verl's defaults cannot change it.
ORIGINAL_ACTOR = {
    "ppo_mini_batch_size": 4,  # x rollout.n = 32 rows per optimiser step
    "ppo_micro_batch_size_per_gpu": 1,
    "use_dynamic_bsz": False,
    "ppo_epochs": 1,
    "shuffle": False,
    "loss_agg_mode": "seq-mean-token-mean",
    "policy_loss.loss_mode": "vanilla",
    "clip_ratio": 0.2,
    "clip_ratio_low": 0.2,
    "clip_ratio_high": 0.2,
    "clip_ratio_c": 3.0,
    "entropy_coeff": 0,
    "use_kl_loss": True,
    "kl_loss_coef": 0.001,
    "kl_loss_type": "low_var_kl",
    "grad_clip": 1.0,
    "optim.lr": 1e-6,
    "optim.lr_warmup_steps_ratio": 0.05,
    "optim.lr_scheduler_type": "constant",
    "optim.weight_decay": 0.01,
    "optim.betas": [0.9, 0.999],
}


def test_every_actor_setting_of_the_original_is_pinned_in_the_recipe(cfg):
    pinned = {k.removeprefix("actor_rollout_ref.actor.") for k, _ in recipe_keys()}
    for key, value in ORIGINAL_ACTOR.items():
        assert key in pinned, f"actor_rollout_ref.actor.{key} is inherited from verl's defaults"
        assert OmegaConf.select(cfg, f"actor_rollout_ref.actor.{key}") == value, key


def test_every_recipe_key_is_in_verls_schema():
    defaults = verl_defaults()
    keys = [k for k, _ in recipe_keys()]
    assert len(keys) > 50 and all(is_verl_key(k, defaults) for k in keys)
    assert is_verl_key("data.apply_chat_template_kwargs.enable_thinking", defaults)  # a free-form mapping
    assert not is_verl_key("actor_rollout_ref.actor.ppo_mini_bach_size", defaults)
    assert not is_verl_key("trainer.logger.console", defaults)  # below a declared value


@pytest.mark.parametrize("name", sorted(TABLE_4))
def test_table_4_grid(name):
    assert name in weight_options()
    cfg = compose([f"reward_weights={name}"])
    beta, gamma = TABLE_4[name]
    assert (cfg.memalpha.reward.beta, cfg.memalpha.reward.gamma) == (beta, gamma)
    assert cfg.trainer.experiment_name == f"memalpha-qwen3-4b-b{beta}-g{gamma}"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("actor_rollout_ref.actor.ppo_mini_bach_size=4", "ppo_mini_bach_size"),  # Hydra rejects it
        ("+actor_rollout_ref.actor.ppo_mini_bach_size=4", "actor_rollout_ref.actor.ppo_mini_bach_size"),  # we do
        ("memalpha.reward.betta=0.1", "betta"),
        ("+memalpha.reward.betta=0.1", "memalpha.reward.betta"),
        ("memalpha.reward.r4_deletes=ignore", "r4_deletes"),
        ("reward_weights=beta9_gamma9", "beta9_gamma9"),
        ("algorithm.adv_estimator=grpo", "adv_estimator=grpo"),
        ("trainer.n_gpus_per_node=6", "divisible"),  # verl's own validation: 256 rows over 24 GPUs
        ("data.train_batch_size", "not KEY=VALUE"),
    ],
)
def test_bad_overrides_fail_naming_the_key(override, named):
    with pytest.raises(TaskError, match=named.replace("+", r"\+").replace(".", r"\.")):
        compose([override])


def test_a_typo_in_a_recipe_file_is_named_with_its_file(tmp_path):
    config_dir = tmp_path / "config"
    shutil.copytree(RECIPE_CONFIG_DIR, config_dir)
    path = config_dir / "memalpha_grpo.yaml"
    path.write_text(path.read_text().replace("    ppo_epochs: 1", "    ppo_epoch: 1"))
    with pytest.raises(ConfigError, match=r"actor_rollout_ref\.actor\.ppo_epoch \(in .*memalpha_grpo\.yaml\)"):
        compose(config_dir=config_dir)
    with pytest.raises(ConfigError, match=r"no_such\.yaml: no such config file"):
        compose(config_dir=config_dir, name="no_such")


def test_missing_files_are_named(tmp_path):
    (tmp_path / "train.parquet").touch()
    data = [f"data.train_files={tmp_path}/train.parquet", f"data.val_files={tmp_path}/val.parquet"]
    with pytest.raises(ConfigError, match=rf"data\.val_files={tmp_path}/val\.parquet") as err:
        compose_recipe([*data, "actor_rollout_ref.model.path=/no/model"])
    assert "actor_rollout_ref.model.path=/no/model (no such folder)" in str(err.value)
    assert "train_files" not in str(err.value)
    (tmp_path / "val.parquet").touch()
    assert compose_recipe(data).data.val_files == f"{tmp_path}/val.parquet"  # a hub id is left to the download


def test_settings_are_typed_and_complete():
    settings = RecipeSettings.from_mapping(OmegaConf.to_container(compose().memalpha, resolve=True))
    assert settings.reader.model == "Qwen/Qwen3-32B" and settings.scorer.top_k == 20
    assert settings.scorer.profile == "memalpha-train"  # r1 scores as the original reward did
    for bad, named in [
        ({"scorer": {"profile": "v9"}}, "memalpha.scorer.profile: unknown scorer profile 'v9'"),
        ({"reader": {"timeout": "soon"}}, "memalpha.reader.timeout: expected float"),
        ({"reward": {"clip_r3": 1}}, "memalpha.reward.clip_r3: expected bool"),
        ({"tool_format": "xml"}, "memalpha.tool_format"),
        ({"batch": {"size": 3}}, "memalpha.batch.size"),
    ]:
        with pytest.raises(TaskError, match=named):
            RecipeSettings.from_mapping(bad)


@pytest.mark.timeout(300)  # the launch scripts start interpreters that import verl
def test_preflight_module_and_launch_line(tmp_path, capsys):
    for name in ("train.parquet", "val.parquet"):
        (tmp_path / name).touch()
    data = [f"data.train_files={tmp_path}/train.parquet", f"data.val_files={tmp_path}/val.parquet"]
    assert main([*data, "reward_weights=beta0.2_gamma0.1", "--cfg", "job"]) == 0
    assert main([*data, "trainer.n_gpus_per_node=6"]) == 2  # 256 rows do not split over 6 GPUs
    assert "divisible" in capsys.readouterr().err
    assert main(["data.train_files=/no/train.parquet"]) == 2
    assert "data.train_files=/no/train.parquet" in capsys.readouterr().err
    # the launch script composes through verl's own entry point (`--cfg job` prints and exits)
    env = {
        "PATH": "/usr/bin:/bin",
        "TRAIN_PYTHON": sys.executable,
        "DATA_DIR": str(tmp_path),
        "WEIGHTS": "beta0.4_gamma0.1",
        "HF_HUB_OFFLINE": "1",
    }
    for script in ("train_4x8.sh", "train_1x8.sh"):
        done = subprocess.run(
            [str(REPO / "reference_agent/scripts" / script), "--cfg", "job"],
            env={**env, "START_READER": "0", "TMPDIR": str(tmp_path)},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        job = OmegaConf.create(done.stdout[done.stdout.index("actor_rollout_ref:") :])
        assert job.memalpha.reward.beta == 0.4 and job.data.train_files == f"{tmp_path}/train.parquet"
        assert job.trainer.n_gpus_per_node == (8 if script == "train_4x8.sh" else 4)
        assert Path(job.actor_rollout_ref.rollout.agent.agent_loop_config_path).is_file()
        # the reader service's cache: the head node's own disk for 4 nodes, the output folder for one
        cache = f"{tmp_path}/memalpha-reward-cache/beta0.4_gamma0.1.sqlite" if script == "train_4x8.sh" else None
        assert job.memalpha.cache == (
            cache or f"{REPO}/checkpoints/memalpha-qwen3-4b-beta0.4_gamma0.1/reward_cache.sqlite"
        )
