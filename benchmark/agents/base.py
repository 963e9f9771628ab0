"""The agent protocol: reset per instance, observe the chunks in order, hand back the final memory.

An `Agent` opens one `Session` per instance (a fresh memory: the reset); the runner feeds each
session its chunks in order and finally asks for its memory. Agents that profit from batching (a
model on a GPU) override `observe_batch`, which the runner calls with chunk t of every unfinished
instance at once; the default observes sessions concurrently in threads.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from tasks.errors import TaskError

from ..memory import Memory


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


class Agent(ABC):
    """A memory agent. `options` come from `--agent-opt key=value` (values are strings)."""

    name: str = "agent"
    # Options that change how a run goes (addresses, parallelism, retries) but not the memories it
    # writes: a resumed run may change them.
    operational_options: frozenset[str] = frozenset()

    def __init__(self, **options: str):
        self.options = dict(options)

    @abstractmethod
    def new_session(self, instance: InstanceInfo) -> Session:
        """A fresh, empty memory for `instance`."""

    def describe(self) -> dict[str, Any]:
        """What the run's config.json records: the agent and every option that changes its memories."""
        return {"name": self.name, "options": self.options}

    def identity(self) -> dict[str, Any]:
        """What must stay the same for a run folder to be resumed: the name and the memory-relevant options."""
        kept = {k: v for k, v in self.options.items() if k not in self.operational_options}
        return {"name": self.name, "options": kept}

    def observe_batch(
        self, sessions: Sequence[Session], chunks: Sequence[str], concurrency: int = 1
    ) -> list[BaseException | None]:
        """Give chunk t to each session; return per session the error it raised, or None."""

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


class AgentOptionError(TaskError, ValueError):
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
    """Typed access to string options, rejecting any option nobody asked for."""

    options: dict[str, str]
    agent: str
    used: set[str] = field(default_factory=set)

    def get(self, key: str, default: str | None = None) -> str | None:
        self.used.add(key)
        return self.options.get(key, default)

    def integer(self, key: str, default: int, low: int | None = None) -> int:
        value = self.get(key)
        try:
            parsed = default if value is None else int(value)
        except ValueError:
            raise AgentOptionError(f"agent {self.agent}: option {key}={value!r} must be an integer") from None
        return self._at_least(key, parsed, low)

    def number(self, key: str, default: float, low: float | None = None) -> float:
        value = self.get(key)
        try:
            parsed = default if value is None else float(value)
        except ValueError:
            raise AgentOptionError(f"agent {self.agent}: option {key}={value!r} must be a number") from None
        return self._at_least(key, parsed, low)

    def choice(self, key: str, default: str, allowed: Sequence[str]) -> str:
        value = self.get(key) or default
        if value not in allowed:
            raise AgentOptionError(f"agent {self.agent}: option {key}={value!r}; choose one of {', '.join(allowed)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise AgentOptionError(f"agent {self.agent}: option {key}={value!r} must be true or false")

    def _at_least(self, key: str, value, low):
        if low is not None and value < low:
            raise AgentOptionError(f"agent {self.agent}: option {key}={value} must be at least {low}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.options) - self.used)
        if unknown:
            raise AgentOptionError(
                f"agent {self.agent}: unknown option(s) {', '.join(unknown)}; it takes {', '.join(sorted(self.used))}"
            )
