"""The recipe's own settings: the `memalpha:` block of the verl config, checked key by key.

verl passes its whole config to the agent loop and the reward workers, so our settings travel in
it. No verl import here: the block is plain data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.profiles import get_profile
from benchmark.readers.base import Reader, SamplingParams
from tasks.errors import TaskError

from ..rewards import RewardConfig, RewardScorer
from ..toolcalls import FORMATS

SECTION = "memalpha"
# verl's plain GRPO keeps only each rollout's last row (see the recipe config): never with our rewards.
FORBIDDEN_ESTIMATORS = {"grpo": "use grpo_vectorized (per-row GRPO, Mem-α's advantage)"}


@dataclass(frozen=True)
class ServerSettings:
    backend: str = "openai"
    base_url: str | None = None
    model: str | None = None
    concurrency: int = 64
    timeout: float = 300.0
    max_retries: int = 5


@dataclass(frozen=True)
class JudgeSettings:
    """The content judge (r4) and the judge of LLM-judged questions; None fields take the reader's."""

    base_url: str | None = None
    model: str | None = None
    max_tokens: int = 256


@dataclass(frozen=True)
class ScorerSettings:
    """r1's scorer: a profile (benchmark/profiles.py; default the original reward's) and its numbers."""

    profile: str = "memalpha-train"
    top_k: int = 20
    budget_tokens: int = 30_000
    max_tokens: int = 2048

    def __post_init__(self) -> None:
        try:
            get_profile(self.profile)
        except TaskError as exc:
            raise TaskError(f"{SECTION}.scorer.profile: {exc}") from None


@dataclass(frozen=True)
class BatchSettings:
    """How long a reward worker waits for more finished rollouts before scoring them together."""

    window_s: float = 2.0
    max_rollouts: int = 256


@dataclass(frozen=True)
class RecipeSettings:
    tool_format: str = "qwen3"
    recent_entries: int = 5
    tokenizer: str = "qwen3"
    reward: RewardConfig = field(default_factory=RewardConfig)
    reader: ServerSettings = field(default_factory=ServerSettings)
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    scorer: ScorerSettings = field(default_factory=ScorerSettings)
    cache: str | None = None
    batch: BatchSettings = field(default_factory=BatchSettings)
    progress: bool = False  # a line per rollout step (the dry run's; thousands per training step)

    def __post_init__(self) -> None:
        if self.tool_format not in FORMATS:
            raise TaskError(f"{SECTION}.tool_format: {self.tool_format!r} is not one of {', '.join(FORMATS)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> RecipeSettings:
        """Settings from the `memalpha:` block; an unknown key or a bad value names its full key."""
        return _load(cls, values or {}, SECTION)

    def readers(self) -> tuple[Reader, Reader]:
        """(reader, judge) as these settings describe them: each behind the response cache (when
        `cache` is set) and answering identical concurrent requests once (`SingleFlightReader`).
        Without a separate judge setting the judge is the reader itself."""
        from benchmark.cache import CachedReader, ResponseCache
        from benchmark.readers import make_reader

        from .shared_reader import SingleFlightReader

        reader_settings = self.reader
        if not reader_settings.base_url and reader_settings.backend == "openai":
            raise TaskError(f"{SECTION}.reader.base_url: the reader's server address is not set")

        def reader_for(base_url: str | None, model: str | None) -> Reader:
            return make_reader(
                reader_settings.backend,
                model or reader_settings.model,
                base_url=base_url or reader_settings.base_url,
                concurrency=reader_settings.concurrency,
                timeout=reader_settings.timeout,
                max_retries=reader_settings.max_retries,
            )

        reader = reader_for(None, None)
        separate_judge = bool(self.judge.base_url or self.judge.model)
        judge = reader_for(self.judge.base_url, self.judge.model) if separate_judge else reader
        if self.cache:  # one file for both: a request's key includes the model that answers it
            cache = ResponseCache(Path(self.cache))
            reader = CachedReader(reader, cache)
            judge = CachedReader(judge, cache) if separate_judge else reader
        reader = SingleFlightReader(reader)
        return reader, SingleFlightReader(judge) if separate_judge else reader

    def reward_scorer(self, readers: tuple[Reader, Reader] | None = None) -> RewardScorer:
        """The batched reward scorer these settings describe; `readers` (reader, judge) default to
        `readers()`, built in this process."""
        from tasks.tokenization import get_counter

        reader, judge = readers or self.readers()
        profile = get_profile(self.scorer.profile)
        scorer_config = dataclasses.replace(
            profile.defaults,
            top_k=self.scorer.top_k,
            budget_tokens=self.scorer.budget_tokens,
            sampling=dataclasses.replace(profile.defaults.sampling, max_tokens=self.scorer.max_tokens),
        )
        return RewardScorer(
            reader,
            get_counter(self.tokenizer),
            judge=judge,
            config=self.reward,
            scorer_config=scorer_config,
            content_sampling=SamplingParams(max_tokens=self.judge.max_tokens),
            profile=profile,
        )


def settings_of(config: Any) -> RecipeSettings:
    """The settings in a composed verl config (an OmegaConf DictConfig)."""
    from omegaconf import OmegaConf

    block = config.get(SECTION)
    return RecipeSettings.from_mapping(OmegaConf.to_container(block, resolve=True) if block else {})


def check_estimator(adv_estimator: str) -> None:
    """Refuse an advantage estimator that silently drops the per-step rewards."""
    if adv_estimator in FORBIDDEN_ESTIMATORS:
        raise TaskError(
            f"algorithm.adv_estimator={adv_estimator} computes the advantage on each rollout's last row only "
            f"and drops the per-step rewards r2 and r4; {FORBIDDEN_ESTIMATORS[adv_estimator]}"
        )


_SCALARS: dict[str, tuple[type, ...]] = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,)}


def _check_value(annotation: str, value: Any, where: str) -> Any:
    """`value` if it fits a scalar annotation such as "float" or "str | None" (ints pass as floats)."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None and "None" in kinds:
        return value
    for kind in kinds:
        allowed = _SCALARS.get(kind)
        if allowed and isinstance(value, allowed) and not (kind != "bool" and isinstance(value, bool)):
            return float(value) if kind == "float" else value
    if not any(k in _SCALARS for k in kinds):
        return value  # not a plain scalar (a Literal, say): the dataclass checks it
    raise TaskError(f"{where}: expected {annotation}, got {value!r}")


def _load(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """A (frozen) dataclass from a mapping, nested dataclasses included; unknown keys are errors."""
    if not isinstance(values, Mapping):
        raise TaskError(f"{where}: expected a mapping of settings, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise TaskError(f"unknown setting(s) {', '.join(f'{where}.{k}' for k in unknown)}; known: {', '.join(fields)}")
    kwargs = {}
    for name, value in values.items():
        f = fields[name]
        nested = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(nested):
            kwargs[name] = _load(type(nested), value, f"{where}.{name}")
        else:
            kwargs[name] = _check_value(str(f.type), value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise TaskError(f"{where}: {exc}") from exc
