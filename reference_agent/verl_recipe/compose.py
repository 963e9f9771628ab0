"""Compose the recipe's full verl config and check it the way training would, without a GPU.

The recipe config (`config/memalpha_grpo.yaml`) is a Hydra config on top of verl's `ppo_trainer`.
Hydra itself rejects an unknown key given on the command line, but a key misspelt in a YAML file is
silently added; so every key the recipe files set, and every command-line key, is looked up in
verl's own composed defaults. Then the checks `verl.trainer.main_ppo` runs before it starts Ray
(`validate_config`), the conversions its workers run (config dataclasses), and our own settings.
Each failure names the offending key or file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import verl
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tasks.errors import TaskError, UsageError

from .settings import SECTION, check_estimator, settings_of

RECIPE_CONFIG_DIR = Path(__file__).parent / "config"
RECIPE_CONFIG = "memalpha_grpo"
WEIGHTS_GROUP = "reward_weights"
VERL_CONFIG_DIR = Path(verl.__file__).parent / "trainer" / "config"
# Keys verl reads with `.get` but does not declare in its YAML (so they need `+` on the command line).
UNDECLARED_KEYS = (
    "actor_rollout_ref.rollout.agent.agent_loop_manager_class",
    "reward.custom_reward_function.reward_kwargs",
)
AGENT_LOOP_FILE = "actor_rollout_ref.rollout.agent.agent_loop_config_path"
FILE_KEYS = (AGENT_LOOP_FILE, "data.train_files", "data.val_files")  # files training opens
MODEL_KEY = "actor_rollout_ref.model.path"
_NOT_KEYS = {"hydra", "defaults"}
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn"}


class ConfigError(UsageError):
    """A recipe config that verl would reject, or that would silently not do what it says (a usage error:
    the overrides on the command line are what needs fixing)."""


def weight_options(config_dir: Path = RECIPE_CONFIG_DIR) -> list[str]:
    """The named (β, γ) settings of Table 4: `reward_weights=<name>`."""
    return sorted(p.stem for p in (config_dir / WEIGHTS_GROUP).glob("*.yaml"))


def _config_file(config_dir: Path, name: str) -> Path:
    path = config_dir / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    return path


def _compose(config_dir: Path, name: str, overrides: Sequence[str]) -> DictConfig:
    _config_file(config_dir, name)
    try:
        with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base=None):
            return compose(config_name=name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"{config_dir / name}.yaml with overrides {list(overrides)}: {exc}") from exc


def verl_defaults() -> DictConfig:
    """verl's own `ppo_trainer` config, unchanged: the schema every key is checked against."""
    return _compose(VERL_CONFIG_DIR, "ppo_trainer", [])


def leaf_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of every leaf of a mapping (a list is a leaf)."""
    if isinstance(node, dict | DictConfig) and len(node):
        for key in node:
            yield from leaf_keys(node[key], f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix


def recipe_keys(config_dir: Path = RECIPE_CONFIG_DIR, name: str = RECIPE_CONFIG) -> list[tuple[str, Path]]:
    """Every verl key the recipe's own files set, with the file setting it (`memalpha:` excluded)."""
    path = _config_file(config_dir, name)
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return [(k, path) for k in leaf_keys({k: v for k, v in raw.items() if k not in _NOT_KEYS | {SECTION}})]


def override_keys(overrides: Iterable[str]) -> list[str]:
    """The keys of `key=value` overrides (`+`, `++` and `~` stripped); group choices are not keys."""
    keys = []
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep and not item.startswith("~"):
            raise ConfigError(f"override {item!r} is not KEY=VALUE")
        key = key.lstrip("+~")
        if key != WEIGHTS_GROUP:
            keys.append(key)
    return keys


def is_verl_key(key: str, defaults: DictConfig) -> bool:
    """True if verl declares `key`, or it lies under a free-form mapping (one that is empty in verl's
    defaults, such as `data.apply_chat_template_kwargs`) or under a key verl reads undeclared."""
    if any(key == k or key.startswith(k + ".") for k in UNDECLARED_KEYS):
        return True
    node: Any = defaults
    for part in key.split("."):
        if not isinstance(node, DictConfig):
            return False  # the key goes on below a declared value
        if part not in node.keys():  # keys(), not `in`: `in` is False for a mandatory `???` value
            return len(node) == 0
        node = node._get_node(part)
    return True


def check_keys(keys: Iterable[tuple[str, str]], defaults: DictConfig) -> None:
    """Every (key, where) must be a verl key or a `memalpha.` key; the error lists all that are not."""
    bad = [(k, where) for k, where in keys if not k.startswith(f"{SECTION}.") and not is_verl_key(k, defaults)]
    if bad:
        listed = "; ".join(f"{k} (in {where})" for k, where in bad)
        raise ConfigError(f"not in verl {verl.__version__}'s config schema: {listed}")


def check_files(cfg: DictConfig, keys: Sequence[str]) -> None:
    """The files the `keys` name (relative to the working directory, as verl resolves them) and a
    local model folder must exist; a hub id (`org/name`) is left to the download."""
    missing = []
    for key in keys:
        value = OmegaConf.select(cfg, key)
        for path in [value] if isinstance(value, str) else list(value or []):
            if not Path(path).is_file():
                missing.append(f"{key}={path}")
    model = str(OmegaConf.select(cfg, MODEL_KEY))
    looks_local = model.startswith(("/", ".", "~")) or model.count("/") != 1
    if looks_local and not Path(model).expanduser().is_dir():
        missing.append(f"{MODEL_KEY}={model} (no such folder)")
    if missing:
        raise ConfigError(f"missing file(s): {'; '.join(missing)}")


def validate(cfg: DictConfig) -> None:
    """What verl checks before training starts, plus our settings; `cfg` is resolved in place."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    try:
        OmegaConf.resolve(cfg)
        validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
        # the conversions verl's workers make (`reward` and `ref` are used as DictConfigs by verl itself)
        for section in ("algorithm", "actor_rollout_ref.actor", "actor_rollout_ref.rollout"):
            omega_conf_to_dataclass(OmegaConf.select(cfg, section))
    except (AssertionError, ValueError, TypeError, OmegaConfBaseException) as exc:
        raise ConfigError(f"verl rejects the config: {type(exc).__name__}: {exc}") from exc
    check_estimator(cfg.algorithm.adv_estimator)
    settings_of(cfg)


def compose_recipe(
    overrides: Sequence[str] = (),
    *,
    config_dir: Path = RECIPE_CONFIG_DIR,
    name: str = RECIPE_CONFIG,
    check: bool = True,
    files: Sequence[str] = FILE_KEYS,
) -> DictConfig:
    """The full verl config of the recipe with `overrides` (Hydra syntax). Unless `check` is off: every
    key checked against verl's schema, verl's validation, our settings, and the `files` keys' files."""
    if check:
        keys = [(k, str(p)) for k, p in recipe_keys(config_dir, name)]
        keys += [(k, "the command line") for k in override_keys(overrides)]
        check_keys(keys, verl_defaults())
    cfg = _compose(config_dir, name, overrides)
    if check:
        validate(cfg)
        check_files(cfg, files)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m reference_agent.verl_recipe.compose [KEY=VALUE ...]`: the launch scripts' pre-flight
    check of their overrides (Hydra flags such as `--cfg job` are ignored); exit 2 naming what is wrong."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    overrides, i = [], 0
    while i < len(args):
        if args[i].startswith("-"):  # a Hydra flag, and its value when it takes one
            i += 2 if args[i] in _FLAGS_WITH_VALUE else 1
            continue
        overrides.append(args[i])
        i += 1
    try:
        compose_recipe(overrides)
    except TaskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("config check: every key is in verl's schema and verl's validation passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
