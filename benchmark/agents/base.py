"""The agent protocol: reset per instance, observe the chunks in order, hand back the final memory.

An `Agent` opens one `Session` per instance (a fresh memory: the reset); the runner feeds each
session its chunks in order and finally asks for its memory. Agents that profit from batching (a
model on a GPU) override `observe_batch`, which the runner calls with chunk t of every unfinished
instance at once; the default observes sessions concurrently in threads.

Options are strings (`--agent-opt key=value`). An agent declares the options it takes in
`option_docs` (what `memalpha agents list` shows, and where `OptionReader` finds defaults) and keeps
the parsed values, defaults filled in, in `resolved_options`: a run is identified by those, so
spelling out a default is the same run. An option named `tokenizer` is filled from the harness's
`--tokenizer` unless given.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tasks.errors import TaskError, UsageError

from ..memory import Memory

if TYPE_CHECKING:
    from ..cache import ResponseCache


@dataclass(frozen=True)
class InstanceInfo:
    """What an agent may know of an instance before reading it (never its questions)."""

    instance_id: str
    task: str
    competency: str
    num_chunks: int


class Session(ABC):
    """One instance's memory being built."""

    @abstractmethod
    def observe(self, chunk: str) -> None:
        """Read the next chunk and update the memory."""

    @abstractmethod
    def memory(self) -> Memory:
        """The final memory, after the last chunk."""

    def stats(self) -> dict[str, Any]:
        """Counts worth recording with the memory (tool calls, model tokens, ...)."""
        return {}


@dataclass(frozen=True)
class AgentOption:
    """One option an agent takes: its name, its default as typed on the command line (None: no
    default), and what it does."""

    name: str
    default: str | None
    help: str


class Agent(ABC):
    """A memory agent. `options` come from `--agent-opt key=value` (values are strings)."""

    name: str = "agent"
    # the options it takes, for `memalpha agents list` and OptionReader's defaults; None: not declared
    option_docs: tuple[AgentOption, ...] | None = None
    # Options that change how a run goes (addresses, parallelism, retries) but not the memories it
    # writes: a resumed run may change them.
    operational_options: frozenset[str] = frozenset()

    def __init__(self, **options: str):
        self.options = dict(options)
        # the parsed options with their defaults; agents that parse through OptionReader set it to
        # `opts.finish()`, so that `tokens=28000` and no `tokens` at all are the same run
        self.resolved_options: dict[str, Any] = dict(options)

    def option_reader(self) -> OptionReader:
        """An OptionReader over this agent's options, with the defaults of `option_docs`."""
        return OptionReader(self.options, self.name, docs=self.option_docs)

    @abstractmethod
    def new_session(self, instance: InstanceInfo) -> Session:
        """A fresh, empty memory for `instance`."""

    def describe(self) -> dict[str, Any]:
        """What the run's config.json records: the agent and every option that changes its memories."""
        return {"name": self.name, "options": self.resolved_options}

    def identity(self) -> dict[str, Any]:
        """What must stay the same for a run folder to be resumed: the name and the memory-relevant
        options as `describe()` reports them (defaults filled in)."""
        options = self.describe().get("options", {})
        kept = {k: v for k, v in options.items() if k not in self.operational_options}
        return {"name": self.name, "options": kept}

    def in_flight(self, concurrency: int) -> int | None:
        """How many instances the runner keeps open at once (None: all of them). Threads gain nothing
        from more than `concurrency` open instances, and fewer open instances means finished memories
        written sooner; an agent that batches a model step (it overrides `observe_batch`) gets them
        all, for the widest batches."""
        return concurrency if type(self).observe_batch is Agent.observe_batch else None

    def use_response_cache(self, cache: ResponseCache) -> None:  # noqa: B027 - optional hook
        """The runner's response cache (RUN/.cache/agent.sqlite), handed over before the first session.

        An agent that asks a model should send its requests through it (`CachedReader`), unless it
        was given a cache of its own: a killed run then replays every step that was answered before
        the kill without asking again, and loses at most the step each open instance was in."""

    def observe_batch(
        self, sessions: Sequence[Session], chunks: Sequence[str], concurrency: int = 1
    ) -> list[BaseException | None]:
        """Give each session its next chunk; return per session the error it raised, or None."""

        def one(pair: tuple[Session, str]) -> BaseException | None:
            try:
                pair[0].observe(pair[1])
            except Exception as exc:  # reported per instance by the runner; the others go on
                return exc
            return None

        if concurrency <= 1 or len(sessions) <= 1:
            return [one(p) for p in zip(sessions, chunks, strict=True)]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(one, zip(sessions, chunks, strict=True)))

    def close(self) -> None:  # noqa: B027 - optional hook, most agents hold nothing
        """Release models, servers or connections the agent holds."""


class AgentOptionError(UsageError, ValueError):
    """An `--agent-opt` that the agent does not take or cannot parse."""


class MissingExtraError(TaskError, ImportError):
    """An optional library an agent needs is not installed; the message says which extra brings it."""


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import `module`, or fail with the pip command that installs it (the package's `extra`)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{needed_for} needs the {module.split('.')[0]!r} package, which is not installed: "
            f"pip install 'memalpha-bench[{extra}]' ({exc})"
        ) from exc


@dataclass
class OptionReader:
    """Typed access to string options, rejecting any option nobody asked for.

    Every value read is kept, parsed and with its default, in `values`, which `finish()` returns: an
    agent's resolved options. A default not passed in comes from `docs` (the agent's `option_docs`)."""

    options: dict[str, str]
    agent: str
    used: set[str] = field(default_factory=set)
    docs: Sequence[AgentOption] | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def _documented(self, key: str) -> str | None:
        return next((doc.default for doc in self.docs or () if doc.name == key), None)

    def _keep(self, key: str, value: Any) -> Any:
        self.values[key] = value
        return value

    def _raw(self, key: str) -> str | None:
        self.used.add(key)
        return self.options.get(key)

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self._raw(key)
        return self._keep(
            key, value if value is not None else default if default is not None else self._documented(key)
        )

    def integer(self, key: str, default: int | None = None, low: int | None = None) -> int:
        value = self._raw(key)
        try:
            parsed = int(
                value if value is not None else default if default is not None else self._documented(key) or ""
            )
        except ValueError:
            raise AgentOptionError(f"agent {self.agent}: option {key}={value!r} must be an integer") from None
        return self._keep(key, self._at_least(key, parsed, low))

    def number(self, key: str, default: float | None = None, low: float | None = None) -> float:
        value = self._raw(key)
        try:
            text = value if value is not None else default if default is not None else self._documented(key) or ""
            parsed = float(text)
        except ValueError:
            raise AgentOptionError(f"agent {self.agent}: option {key}={value!r} must be a number") from None
        return self._keep(key, self._at_least(key, parsed, low))

    def choice(self, key: str, default: str | None, allowed: Sequence[str]) -> str:
        value = self._raw(key) or default or self._documented(key)
        if value not in allowed:
            raise AgentOptionError(f"agent {self.agent}: option {key}={value!r}; choose one of {', '.join(allowed)}")
        return self._keep(key, value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._raw(key)
        if value is None:
            return self._keep(key, default)
        if value.lower() in ("1", "true", "yes", "on"):
            return self._keep(key, True)
        if value.lower() in ("0", "false", "no", "off"):
            return self._keep(key, False)
        raise AgentOptionError(f"agent {self.agent}: option {key}={value!r} must be true or false")

    def _at_least(self, key: str, value, low):
        if low is not None and value < low:
            raise AgentOptionError(f"agent {self.agent}: option {key}={value} must be at least {low}")
        return value

    def finish(self) -> dict[str, Any]:
        unknown = sorted(set(self.options) - self.used)
        if unknown:
            raise AgentOptionError(
                f"agent {self.agent}: unknown option(s) {', '.join(unknown)}; it takes {', '.join(sorted(self.used))}"
            )
        return dict(self.values)
