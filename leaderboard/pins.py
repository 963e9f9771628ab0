"""A board's pinned scorer: everything that moves a re-scored number, fixed once per board by the store's
publisher (`memalpha leaderboard init-board`) and kept in the results store beside the records.

Pinned: the scorer profile (and with it the reader template), the reader's backend and model, the judge's
backend and model, the token counter (budget and memory sizes), top-k, the prompt budget, and the sampling
of reader and judge. Not pinned: where the reader runs (server address, concurrency, timeouts), which
does not change answers. An entry is re-scored only with the board's pinned scorer; a record scored
otherwise is refused with each differing setting named. Reported (published) entries are not re-scored:
they carry their source's own scorer description and are never compared with a pin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from benchmark.profiles import ScorerConfig, get_profile
from benchmark.readers.base import SamplingParams
from tasks.errors import TaskError, UsageError
from tasks.tokenization import TokenCounter

from .boards import Board

BOARD_FORMAT = "memalpha-bench/board@1"
PUBLISHED = ScorerConfig()
"""The numbers the published boards use (the paper's: top-k 20, a 30k-token budget, 2048 answer tokens)."""


class ScorerMismatchError(UsageError):
    """A scorer that is not the one a board pins (settings that disagree with what is recorded: a usage
    error, as a refused resume or re-score)."""


def tokenizer_identity(counter: Mapping[str, Any]) -> str:
    """What makes two token counters the same: a content hash where the counter has one (a local
    tokenizer.json, wherever it lies), else its name and revision."""
    revision = counter.get("revision")
    if isinstance(revision, str) and revision.startswith("sha256:"):
        return revision
    return f"{counter.get('name')}@{revision}" if revision else str(counter.get("name"))


@dataclass(frozen=True)
class PinnedScorer:
    profile: str  # name@version
    template_sha256: str  # the profile's reader template
    reader: dict[str, str]  # backend, model
    judge: dict[str, str]  # backend, model (the reader's unless set)
    tokenizer: dict[str, Any]  # the counter's describe(): name, revision, spec, kind
    top_k: int
    budget_tokens: int
    sampling: dict[str, Any]  # SamplingParams.as_dict() of the reader
    judge_sampling: dict[str, Any]

    @classmethod
    def create(
        cls,
        *,
        profile: str | None,
        reader: tuple[str, str],
        counter: TokenCounter,
        judge: tuple[str, str] | None = None,
        top_k: int = PUBLISHED.top_k,
        budget_tokens: int = PUBLISHED.budget_tokens,
        max_tokens: int = PUBLISHED.sampling.max_tokens,
    ) -> PinnedScorer:
        """The pin of a profile's pipeline with this reader (backend, model), judge and counter; the sampling
        is the profile's, with `max_tokens` answer tokens."""
        from benchmark.prompting import ReaderPrompt  # jinja2: not for `memalpha --help`

        spec = get_profile(profile)
        for option, value in (("--top-k", top_k), ("--budget", budget_tokens), ("--max-tokens", max_tokens)):
            if value < 1:
                raise TaskError(f"{option} {value}: must be at least 1")
        sampling = replace(spec.defaults.sampling, max_tokens=max_tokens)
        backend, model = reader
        judge_backend, judge_model = judge or reader
        return cls(
            profile=spec.id,
            template_sha256=ReaderPrompt.for_profile(spec).sha256,
            reader={"backend": backend, "model": model},
            judge={"backend": judge_backend, "model": judge_model},
            tokenizer=dict(counter.describe()),
            top_k=top_k,
            budget_tokens=budget_tokens,
            sampling=sampling.as_dict(),
            judge_sampling=spec.defaults.judge_sampling.as_dict(),
        )

    def config(self) -> ScorerConfig:
        """The scorer settings of a re-score on this board."""
        return ScorerConfig(
            top_k=self.top_k,
            budget_tokens=self.budget_tokens,
            sampling=_sampling(self.sampling),
            judge_sampling=_sampling(self.judge_sampling),
        )

    @property
    def separate_judge(self) -> bool:
        return self.judge != self.reader

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> PinnedScorer:
        try:
            return cls(**obj)
        except TypeError as exc:
            raise TaskError(f"{where}: not a pinned scorer ({exc})") from exc

    def differences(self, scorer: Mapping[str, Any] | None) -> list[str]:
        """Each setting in which a scorer description (scores.json's `scorer`, a record's) differs from the
        pin, as 'what (option): used, pinned'. The judge counts only where the scorer used one."""
        if not scorer:
            return ["scorer: none recorded"]
        used_judge = scorer.get("judge")
        checks: list[tuple[str, Any, Any]] = [
            ("profile (--profile)", scorer.get("profile"), self.profile),
            ("reader template", _get(scorer, "template", "sha256"), self.template_sha256),
            ("reader backend (--reader)", _get(scorer, "reader", "backend"), self.reader["backend"]),
            ("reader model (--model)", _get(scorer, "reader", "model"), self.reader["model"]),
            *_sampling_checks("reader", _get(scorer, "reader", "sampling"), self.sampling),
            (
                "tokenizer (--tokenizer)",
                tokenizer_identity(_get(scorer, "budget", "counter") or {}),
                tokenizer_identity(self.tokenizer),
            ),
            ("top-k (--top-k)", _get(scorer, "retriever", "top_k"), self.top_k),
            ("prompt budget (--budget)", _get(scorer, "budget", "tokens"), self.budget_tokens),
        ]
        if used_judge is not None:
            checks += [
                ("judge backend (--judge-reader)", used_judge.get("backend"), self.judge["backend"]),
                ("judge model (--judge-model)", used_judge.get("model"), self.judge["model"]),
                *_sampling_checks("judge", used_judge.get("sampling"), self.judge_sampling),
            ]
        return [f"{what}: {used!r}, pinned {pinned!r}" for what, used, pinned in checks if used != pinned]

    def check(self, scorer: Mapping[str, Any] | None, where: str, board: Board) -> None:
        """ScorerMismatchError naming every differing setting, unless `scorer` is this pin's."""
        found = self.differences(scorer)
        if found:
            raise ScorerMismatchError(
                f"{where}: not scored with the scorer board {board.name} ({board.profile}) pins:\n"
                + "\n".join(f"  - {d}" for d in found)
            )

    def option_differences(self, given: Mapping[str, Any]) -> list[str]:
        """Command-line options given (None: not given) that differ from the pin, as '--option X (pinned: Y)'."""
        pinned = {
            "--reader": self.reader["backend"],
            "--model": self.reader["model"],
            "--judge-reader": self.judge["backend"],
            "--judge-model": self.judge["model"],
            "--top-k": self.top_k,
            "--budget": self.budget_tokens,
            "--max-tokens": self.sampling["max_tokens"],
        }
        return [
            f"{option} {value} (pinned: {pinned[option]})"
            for option, value in given.items()
            if value is not None and value != pinned[option]
        ]

    def describe(self) -> str:
        """One line for people: the pinned scorer."""
        judge = f"; judge {self.judge['backend']} {self.judge['model']}" if self.separate_judge else ""
        return (
            f"profile {self.profile}; reader {self.reader['backend']} {self.reader['model']}{judge}; "
            f"tokenizer {tokenizer_identity(self.tokenizer)}; top-k {self.top_k}; budget {self.budget_tokens} "
            f"tokens; {sampling_text(self.sampling)}"
        )


def sampling_text(sampling: Mapping[str, Any]) -> str:
    thinking = "on" if sampling.get("enable_thinking") else "off"
    return (
        f"temperature {sampling.get('temperature')}, top-p {sampling.get('top_p')}, at most "
        f"{sampling.get('max_tokens')} answer tokens, thinking {thinking}"
    )


def _sampling(values: Mapping[str, Any]) -> SamplingParams:
    return SamplingParams(**{**values, "stop": tuple(values.get("stop", ()))})


def _get(obj: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _sampling_checks(who: str, used: Any, pinned: Mapping[str, Any]) -> Sequence[tuple[str, Any, Any]]:
    if not isinstance(used, Mapping):
        return [(f"{who} sampling", used, dict(pinned))]
    option = {"max_tokens": " (--max-tokens)"} if who == "reader" else {}
    keys = sorted(set(used) | set(pinned))
    return [(f"{who} sampling {key}{option.get(key, '')}", used.get(key), pinned.get(key)) for key in keys]
