"""What every agent that calls a model shares: the reader options, the response cache around the
reader, and one reader call per step with per-request fallback.

Every model call of an agent goes through a `benchmark.readers` reader wrapped in a
`benchmark.cache.CachedReader`: the file the `cache` option names, else the run's own cache
(`RUN/.cache/agent.sqlite`, handed over by the runner through `use_response_cache`), so a rerun (or
a killed run that resumes) replays the answers it already has and sends only the rest.

Reader options (`--agent-opt key=value`), the same for every such agent:

- `backend`: openai, vllm or hf;
- `model`: model name, path or hub id;
- `base_url`: the server address, openai backend only (e.g. http://localhost:8000/v1);
- `concurrency` (16): parallel requests (openai) or batch size (hf);
- `timeout` (600) and `max_retries` (5): per request, openai backend only;
- `cache`: the path of a response cache (SQLite) of the agent's own, kept across runs.

`reader_option_docs` declares them for `Agent.option_docs` (`memalpha agents list`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from ..cache import CachedReader, ResponseCache
from ..readers import BACKENDS, Reader, ReaderRequest, ReaderResponse, make_reader
from .base import AgentOption, AgentOptionError, OptionReader

# Options that change where and how fast a model answers, never what it answers: a resumed run may
# change them (the cache keys on the model, not on the address).
OPERATIONAL_OPTIONS = frozenset({"base_url", "concurrency", "timeout", "max_retries", "cache"})


def reader_option_docs(default_backend: str, default_model: str) -> tuple[AgentOption, ...]:
    """The reader options, as `ReaderSettings.parse` and `ModelAccess` read them, with an agent's
    default backend and model."""
    return (
        AgentOption("backend", default_backend, f"the reader backend: {', '.join(BACKENDS)}"),
        AgentOption("model", default_model, "model name, path or hub id"),
        AgentOption("base_url", None, "the server address, openai backend only (e.g. http://localhost:8000/v1)"),
        AgentOption("concurrency", "16", "parallel requests (openai) or batch size (hf)"),
        AgentOption("timeout", "600", "seconds per request, openai backend only"),
        AgentOption("max_retries", "5", "retries per request, openai backend only"),
        AgentOption(
            "cache", None, "a response cache (SQLite) of its own; by default the run's, RUN/.cache/agent.sqlite"
        ),
    )


@dataclass(frozen=True)
class ReaderSettings:
    """The reader an agent builds for itself from its options."""

    backend: str
    model: str
    base_url: str | None
    concurrency: int
    timeout: float
    max_retries: int

    @classmethod
    def parse(
        cls, opts: OptionReader, *, default_backend: str, default_model: str, backends: tuple[str, ...] = BACKENDS
    ) -> ReaderSettings:
        settings = cls(
            backend=opts.choice("backend", default_backend, backends),
            model=opts.get("model") or default_model,
            base_url=opts.get("base_url") or None,
            concurrency=opts.integer("concurrency", 16, 1),
            timeout=opts.number("timeout", 600.0, 1.0),
            max_retries=opts.integer("max_retries", 5, 0),
        )
        if settings.base_url and settings.backend != "openai":
            raise AgentOptionError(f"agent {opts.agent}: base_url is for the openai backend, not {settings.backend}")
        return settings

    def make(self) -> Reader:
        return make_reader(
            self.backend,
            self.model,
            base_url=self.base_url,
            concurrency=self.concurrency,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )


Answer = ReaderResponse | BaseException


@dataclass
class GenerationCounts:
    """What an instance's model calls cost, as the stats of its memory record show it."""

    generations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: int = 0  # answers read from the response cache

    def count(self, response: ReaderResponse) -> None:
        self.generations += 1
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens
        self.cached += response.cached


class ModelAccess:
    """The reader an agent calls: handed in (from Python), or built from the reader options; wrapped
    in the response cache the `cache` option names, else in the run's once the runner hands it over
    (the agent's `use_response_cache` delegates here).

    Reads its options from `opts`, the reader options only when no reader is handed in and `cache`
    always, then calls `opts.finish()` before building anything: create it after the agent has read
    its own options, so that an unknown option is reported before a model is loaded.
    """

    def __init__(
        self,
        reader: Reader | None,
        opts: OptionReader,
        *,
        default_backend: str,
        default_model: str,
        backends: tuple[str, ...] = BACKENDS,
    ):
        self.settings = (
            ReaderSettings.parse(opts, default_backend=default_backend, default_model=default_model, backends=backends)
            if reader is None
            else None
        )
        self.cache_path = opts.get("cache") or None
        opts.finish()
        self._inner = reader if reader is not None else self.settings.make()  # type: ignore[union-attr]
        self._cache = ResponseCache(self.cache_path) if self.cache_path else None
        self.reader: Reader = CachedReader(self._inner, self._cache) if self._cache is not None else self._inner
        # a server takes a failed step's requests again concurrently; an in-process model one at a time
        server = self.settings is not None and self.settings.backend == "openai"
        self._retry_workers = self.settings.concurrency if server else 1  # type: ignore[union-attr]

    def use_response_cache(self, cache: ResponseCache) -> None:
        """Answer from the run's cache (`Agent.use_response_cache`), so that a resumed run replays the
        steps answered before it stopped; a `cache` option of the agent's own wins."""
        if self._cache is None:
            self.reader = CachedReader(self._inner, cache)

    def options(self) -> dict[str, Any]:
        """The reader options with their defaults filled in (none when the reader was handed in)."""
        described: dict[str, Any] = {"cache": self.cache_path}
        if self.settings is not None:
            described.update(asdict(self.settings))
        return described

    def describe(self) -> dict[str, Any]:
        """What the reader says of itself (readers never describe an API key)."""
        return self.reader.describe()

    def generate_step(self, requests: dict[int, ReaderRequest]) -> dict[int, Answer]:
        """A response or an error per request: all in one reader call (one batch for vLLM, concurrent
        requests for a server), then one by one for the requests that call left unanswered (a failed
        call stops sending, so unanswered is not the same as failed). An error thus belongs to one
        request, and the agent fails only that request's instance."""
        order = list(requests)
        if not order:
            return {}
        answers: dict[int, Answer] = {}
        try:
            responses = self.reader.generate(
                [requests[i] for i in order], on_result=lambda j, r: answers.__setitem__(order[j], r)
            )
            return dict(zip(order, responses, strict=True))
        except Exception:  # any failure of the reader, vLLM's own included: told per request below
            missing = [i for i in order if i not in answers]
        with ThreadPoolExecutor(max_workers=max(1, min(self._retry_workers, len(missing)))) as pool:
            alone = pool.map(lambda i: attempt(lambda: self.reader.generate([requests[i]])[0]), missing)
            for i, (error, response) in zip(missing, alone, strict=True):
                answers[i] = error if error is not None else response
        return answers

    def step(
        self, requests: Sequence[ReaderRequest], absorb: Sequence[Callable[[ReaderResponse], None]]
    ) -> list[BaseException | None]:
        """Answer a step's requests (`generate_step`) and hand each answer to its `absorb`; per request,
        the error of its reader call or of its `absorb`, or None."""
        errors: list[BaseException | None] = [None] * len(requests)
        for i, answer in self.generate_step(dict(enumerate(requests))).items():
            if isinstance(answer, BaseException):
                errors[i] = answer
            else:
                errors[i], _ = attempt(lambda f=absorb[i], a=answer: f(a))
        return errors

    def generate_one(self, request: ReaderRequest) -> ReaderResponse:
        """One request, answered or raised (for libraries that make their calls one at a time)."""
        return self.reader.generate([request])[0]

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def attempt(fn: Callable[[], Any]) -> tuple[BaseException | None, Any]:
    """(None, result) or (the error, None): an error belongs to one instance and is reported for it."""
    try:
        return None, fn()
    except Exception as exc:
        return exc, None
