"""Agents whose whole memory is one text that the model rewrites at every chunk: the shared loop of
`memagent` (MemAgent) and `mem1` (MEM1).

Each chunk costs one generation: the prompt (a prompt file, ours by default) shows the task, the
memory so far and the chunk; the agent reads the new memory out of the reply (`next_memory`, the
one thing the two agents do differently). The final memory is the core; semantic and episodic stay
empty. The runner hands the next chunk of every open instance to `observe_batch`, which asks the
reader for all of them in one call.

Options, besides the reader options of `llm.py` (each agent's `option_docs` declares them with its
defaults):

- `memory_tokens`: the reply limit of every generation, which bounds the memory's size;
- `temperature`, `top_p`: sampling (defaults: how the paper's authors ran the released checkpoint);
- `task`: what the memory is for (the prompt's `task`; MemAgent calls it the problem);
- `prompt_file`: a jinja2 file with a `user` block (and optionally a `system` block) replacing our
  prompt, e.g. the original strings of a released checkpoint; it gets the variables `task`,
  `memory` ("" before the first chunk), `chunk`, `task_name`, `competency` (and the agent's own,
  see each agent).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..cache import ResponseCache
from ..memory import Memory
from ..readers import Reader, ReaderRequest, ReaderResponse, SamplingParams
from .base import Agent, AgentOption, InstanceInfo, OptionReader, Session
from .llm import OPERATIONAL_OPTIONS, GenerationCounts, ModelAccess, reader_option_docs
from .prompt_file import PromptFile

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
DEFAULT_TASK = (
    "Remember what the text says: its people, places, events, dates, numbers, definitions, and any rule "
    "that maps an input to a label, so that questions about any part of it can be answered from the memory alone."
)


@dataclass(frozen=True)
class RecurrentSettings:
    memory_tokens: int
    temperature: float
    top_p: float
    task: str
    prompt_file: str | None


@dataclass
class RecurrentStats(GenerationCounts):
    kept: int = 0  # replies that gave no new memory: the previous one was kept
    at_limit: int = 0  # replies that reached `memory_tokens` (a memory cut off there)


class RecurrentSession(Session):
    """One instance: the memory text and the counts."""

    def __init__(self, agent: RecurrentAgent, info: InstanceInfo):
        self.agent, self.info = agent, info
        self.text = ""
        self.counts = RecurrentStats()

    def absorb(self, response: ReaderResponse) -> None:
        counts = self.counts
        counts.count(response)
        counts.at_limit += response.completion_tokens >= self.agent.settings.memory_tokens
        new = self.agent.next_memory(response)
        if new is None:
            counts.kept += 1
        else:
            self.text = new

    def observe(self, chunk: str) -> None:
        [error] = self.agent.observe_batch([self], [chunk])
        if error is not None:
            raise error

    def memory(self) -> Memory:
        return Memory(self.text, (), ())

    def stats(self) -> dict[str, Any]:
        return asdict(self.counts)


class RecurrentAgent(Agent):
    """The loop; subclasses set the defaults and `next_memory`, and may add options (`_own_options`)."""

    operational_options = OPERATIONAL_OPTIONS
    default_model: str
    default_template: str  # a file in benchmark/templates
    default_memory_tokens: int
    default_temperature: float
    default_top_p: float
    own_option_docs: tuple[AgentOption, ...] = ()  # a subclass's own options (`_own_options` reads them)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each agent's `option_docs`, from its defaults."""
        super().__init_subclass__(**kwargs)
        cls.option_docs = (
            AgentOption(
                "memory_tokens", str(cls.default_memory_tokens), "reply limit of every generation: the memory's size"
            ),
            AgentOption("temperature", str(cls.default_temperature), "sampling temperature"),
            AgentOption("top_p", str(cls.default_top_p), "nucleus sampling"),
            AgentOption(
                "task", None, "what the memory is for (the prompt's `task`); default: keep everything the text says"
            ),
            AgentOption(
                "prompt_file",
                None,
                f"a jinja2 file (user block, optional system block) replacing {cls.default_template}",
            ),
            *cls.own_option_docs,
            *reader_option_docs("vllm", cls.default_model),
        )

    def __init__(self, reader: Reader | None = None, /, **options: str):
        super().__init__(**options)
        opts = self.option_reader()
        self.settings = RecurrentSettings(
            memory_tokens=opts.integer("memory_tokens", self.default_memory_tokens, 1),
            temperature=opts.number("temperature", self.default_temperature, 0.0),
            top_p=opts.number("top_p", self.default_top_p, 0.0),
            task=opts.get("task") or DEFAULT_TASK,
            prompt_file=opts.get("prompt_file") or None,
        )
        self._own_options(opts)
        self.prompt = PromptFile(
            self.settings.prompt_file or TEMPLATES / self.default_template, required=("user",), optional=("system",)
        )
        self.model = ModelAccess(reader, opts, default_backend="vllm", default_model=self.default_model)
        self.params = SamplingParams(
            max_tokens=self.settings.memory_tokens,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            enable_thinking=False,
        )

    def _own_options(self, opts: OptionReader) -> None:
        """Read the subclass's own options (none by default)."""

    def own_settings(self) -> dict[str, Any]:
        """The subclass's own options, as `describe` records them and the prompt gets them."""
        return {}

    @abstractmethod
    def next_memory(self, response: ReaderResponse) -> str | None:
        """The new memory a reply gives, or None to keep the previous one."""

    def request(self, session: RecurrentSession, chunk: str) -> ReaderRequest:
        variables = {
            "task": self.settings.task,
            "memory": session.text,
            "chunk": chunk,
            "task_name": session.info.task,
            "competency": session.info.competency,
            **self.own_settings(),
        }
        parts = [p for p in ("system", "user") if self.prompt.has(p)]
        return ReaderRequest(tuple((p, self.prompt.render(p, **variables)) for p in parts), self.params)

    def describe(self) -> dict[str, Any]:
        """Every option (defaults filled in), the prompt file and its hash, the reader."""
        return {
            "name": self.name,
            "options": {**asdict(self.settings), **self.own_settings(), **self.model.options()},
            "prompt_version": "file" if self.settings.prompt_file else Path(self.default_template).stem,
            "prompt_sha256": self.prompt.sha256,
            "reader": self.model.describe(),
        }

    def identity(self) -> dict[str, Any]:
        """The options that change memories, and the prompt's hash (a prompt file may change in place)."""
        return {**super().identity(), "prompt_sha256": self.prompt.sha256}

    def new_session(self, instance: InstanceInfo) -> RecurrentSession:
        return RecurrentSession(self, instance)

    def use_response_cache(self, cache: ResponseCache) -> None:
        self.model.use_response_cache(cache)

    def observe_batch(
        self, sessions: Sequence[Session], chunks: Sequence[str], concurrency: int = 1
    ) -> list[BaseException | None]:
        """One reader call for the whole step (how many requests run at once is the reader's
        `concurrency`); per session, the error that stopped it or None."""
        ours = [self._ours(s) for s in sessions]
        requests = [self.request(s, c) for s, c in zip(ours, chunks, strict=True)]
        return self.model.step(requests, [s.absorb for s in ours])

    def _ours(self, session: Session) -> RecurrentSession:
        if not isinstance(session, RecurrentSession) or session.agent is not self:
            raise TypeError(f"the {self.name} agent observes its own sessions, not {type(session).__name__}")
        return session

    def close(self) -> None:
        self.model.close()
