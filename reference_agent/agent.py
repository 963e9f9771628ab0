"""The Mem-α reference agent (`--agent memalpha`): one model generation per chunk, whose tool calls are
executed in order against the instance's memory.

As in the original, every chunk gets a fresh two-message prompt (the current memory and the chunk;
`prompts.py`), the model answers once, and the tool results are never fed back. The runner hands
the next chunk of every open instance to `observe_batch`, which sends all of them in one
`Reader.generate` call: one batched `LLM.chat` for vLLM, concurrent requests for a server.

Failures stay with their instance. A malformed call (bad JSON, unknown tool, wrong memory type,
unknown id, empty content) is counted as failed and changes nothing. If the reader call for a step
fails, the requests it did not answer are sent again one by one (concurrently for a server), so that
a request the server cannot answer fails its own instance only: `observe_batch` returns that error
for the session, the runner records it in `errors.jsonl` and goes on with the others.

Options (`--agent-opt key=value`; any other is an error) are listed with their defaults in
`MemAlphaAgent.option_docs` (`memalpha agents list` shows them).

In the qwen3 format the tools go to the server as `tools=`; a vLLM server must be started with
`--enable-auto-tool-choice --tool-call-parser hermes` to take them (and then parses the calls).

The prompt is counted as its two messages plus, in the qwen3 format, the tool schemas as JSON (the
chat template adds them); the few tokens of chat markup are not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from benchmark.agents.base import Agent, AgentOption, AgentOptionError, InstanceInfo, OptionReader, Session
from benchmark.cache import CachedReader, ResponseCache
from benchmark.memory import Memory
from benchmark.readers import BACKENDS, Reader, ReaderRequest, ReaderResponse, SamplingParams, make_reader
from benchmark.readers.base import tools_json
from tasks.tokenization import TokenCounter, get_counter

from .environment import MemoryEnvironment
from .prompts import MemorizePrompt, chat_tools, memorize_prompt
from .toolcalls import FORMATS, QWEN_AGENT_STOP, Format, ToolCall, from_openai_tool_calls, parse_response

DEFAULT_MODEL = "YuWangX/Memalpha-4B"


@dataclass(frozen=True)
class Settings:
    """How the agent memorises (everything but the reader)."""

    format: Format
    max_tokens: int
    temperature: float
    recent: int
    max_prompt_tokens: int
    tokenizer: str
    cache: str | None


@dataclass(frozen=True)
class ReaderSettings:
    """The reader the agent builds for itself."""

    backend: str
    model: str
    base_url: str | None
    concurrency: int
    timeout: float
    max_retries: int

    def make(self) -> Reader:
        return make_reader(
            self.backend,
            self.model,
            base_url=self.base_url,
            concurrency=self.concurrency,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )


def parse_options(options: dict[str, str], agent: str, *, with_reader: bool) -> tuple[Settings, ReaderSettings | None]:
    """Typed, checked options; an option not listed in the module docstring is an error, and so are the
    reader options when `with_reader` is False (the agent was handed a reader)."""
    opts = OptionReader(options, agent)

    def number(key: str, default: float, low: float) -> float:
        value = opts.get(key)
        try:
            parsed = default if value is None else float(value)
        except ValueError:
            raise AgentOptionError(f"agent {agent}: option {key}={value!r} must be a number") from None
        return at_least(key, parsed, low)

    def integer(key: str, default: int, low: int) -> int:
        return int(at_least(key, opts.integer(key, default), low))

    def at_least(key: str, value: float, low: float) -> float:
        if value < low:
            raise AgentOptionError(f"agent {agent}: option {key}={value} must be at least {low}")
        return value

    def choice(key: str, default: str, allowed: Sequence[str]) -> str:
        value = opts.get(key) or default
        if value not in allowed:
            raise AgentOptionError(f"agent {agent}: option {key}={value!r}; choose one of {', '.join(allowed)}")
        return value

    settings = Settings(
        format=choice("format", "qwen3", FORMATS),  # type: ignore[arg-type]
        max_tokens=integer("max_tokens", 2048, 1),
        temperature=number("temperature", 0.0, 0.0),
        recent=integer("recent", 5, 0),
        max_prompt_tokens=integer("max_prompt_tokens", 6144, 0),
        tokenizer=opts.get("tokenizer") or "qwen3",
        cache=opts.get("cache") or None,
    )
    reader = None
    if with_reader:
        reader = ReaderSettings(
            backend=choice("backend", "vllm", BACKENDS),
            model=opts.get("model") or DEFAULT_MODEL,
            base_url=opts.get("base_url") or None,
            concurrency=integer("concurrency", 16, 1),
            timeout=number("timeout", 600.0, 1.0),
            max_retries=integer("max_retries", 5, 0),
        )
        if reader.base_url and reader.backend != "openai":
            raise AgentOptionError(f"agent {agent}: base_url is for the openai backend, not {reader.backend}")
    opts.finish()
    return settings, reader


@dataclass
class TurnStats:
    """Counts over an instance's generations (tool-call counts live in the environment)."""

    generations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: int = 0  # responses read from the response cache
    without_calls: int = 0  # responses with no tool call at all
    trimmed_prompts: int = 0  # prompts that showed fewer than `recent` entries to fit the cap
    over_limit_prompts: int = 0  # prompts over the cap even with no entries shown


class MemorizeTurn:
    """One chunk's turn, the same for every instance: the request for a chunk, the calls in a response."""

    def __init__(self, settings: Settings, counter: TokenCounter, prompt: MemorizePrompt):
        self.settings = settings
        self.counter = counter
        self.prompt = prompt
        self.fmt = settings.format
        tools = chat_tools(self.fmt)
        self.tools = tools_json(tools)
        self._tool_tokens = counter.count(self.tools) if self.tools else 0
        stop = QWEN_AGENT_STOP if self.fmt == "qwen-agent" else ()
        self.params = SamplingParams(
            max_tokens=settings.max_tokens, temperature=settings.temperature, enable_thinking=False, stop=stop
        )

    def requests(self, items: Sequence[tuple[MemoryEnvironment, str, TurnStats]]) -> list[ReaderRequest]:
        """The prompts of one step, one per (memory, chunk, stats). Those over the cap are rendered again
        with the window of recent entries halved until they fit; all prompts of a round are counted in
        one batch (a Rust tokenizer counts a batch on all cores)."""
        cap, recent = self.settings.max_prompt_tokens, self.settings.recent
        windows = [recent] * len(items)
        messages = [self._messages(env, chunk, recent) for env, chunk, _ in items]
        todo = list(range(len(items))) if cap else []
        while todo:
            over = [i for i, size in zip(todo, self._tokens([messages[i] for i in todo]), strict=True) if size > cap]
            todo = []
            for i in over:
                if windows[i] == 0:  # sent as it is
                    items[i][2].over_limit_prompts += 1
                    continue
                windows[i] //= 2
                messages[i] = self._messages(items[i][0], items[i][1], windows[i])
                todo.append(i)
        for (_, _, stats), window in zip(items, windows, strict=True):
            stats.trimmed_prompts += window < recent
        return [ReaderRequest(m, self.params, self.tools) for m in messages]

    def _messages(self, env: MemoryEnvironment, chunk: str, recent: int) -> tuple[tuple[str, str], ...]:
        messages = self.prompt.build_messages(
            env, chunk, fmt=self.fmt, recent=recent, response_limit=self.settings.max_tokens
        )
        return tuple((m["role"], m["content"]) for m in messages)

    def _tokens(self, prompts: Sequence[tuple[tuple[str, str], ...]]) -> list[int]:
        counts = iter(self.counter.count_many([content for prompt in prompts for _, content in prompt]))
        return [sum(next(counts) for _ in prompt) + self._tool_tokens for prompt in prompts]

    def calls(self, response: ReaderResponse) -> list[ToolCall]:
        """The server's parsed calls when it returned any (qwen3 format), else the calls in the text."""
        if self.fmt == "qwen3" and response.tool_calls:
            return from_openai_tool_calls({"function": call} for call in response.tool_calls)
        return list(parse_response(response.raw_text, self.fmt).calls)


class MemAlphaSession(Session):
    """One instance: its memory environment and counts."""

    def __init__(self, agent: MemAlphaAgent, info: InstanceInfo):
        self.agent = agent
        self.info = info
        self.env = MemoryEnvironment(agent.counter)
        self.turn_stats = TurnStats()

    def request(self, chunk: str) -> ReaderRequest:
        [request] = self.agent.turn.requests([(self.env, chunk, self.turn_stats)])
        return request

    def absorb(self, response: ReaderResponse) -> None:
        """Execute the response's calls in order; bad calls fail inside the environment, harmlessly."""
        stats = self.turn_stats
        stats.generations += 1
        stats.prompt_tokens += response.prompt_tokens
        stats.completion_tokens += response.completion_tokens
        stats.cached += response.cached
        calls = self.agent.turn.calls(response)
        stats.without_calls += not calls
        self.env.execute_all(calls)

    def observe(self, chunk: str) -> None:
        [error] = self.agent.observe_batch([self], [chunk])
        if error is not None:
            raise error

    def memory(self) -> Memory:
        return self.env.snapshot()

    def stats(self) -> dict[str, Any]:
        tools = self.env.stats
        return {
            "tool_calls": tools.calls,
            "ok": tools.ok,
            "skipped": tools.skipped,
            "failed": tools.failed,
            **asdict(self.turn_stats),
        }


class MemAlphaAgent(Agent):
    """The reference agent. `MemAlphaAgent(reader, **options)` runs on a reader built elsewhere (the
    positional argument cannot be set from `--agent-opt`); the reader options are then not taken."""

    name = "memalpha"
    option_docs = (
        AgentOption("backend", "vllm", "the reader backend: openai, vllm or hf"),
        AgentOption("model", DEFAULT_MODEL, "model name, path or hub id"),
        AgentOption("base_url", None, "the server address, openai backend only (e.g. http://localhost:8000/v1)"),
        AgentOption(
            "format",
            "qwen3",
            "tool-call format: qwen3 (<tool_call> JSON, or the calls the server parsed) or qwen-agent (the "
            "markers the released Memalpha-4B was trained on)",
        ),
        AgentOption("max_tokens", "2048", "response limit (the prompt asks for 80% of it)"),
        AgentOption("temperature", "0", "0 is greedy, as at evaluation"),
        AgentOption("recent", "5", "semantic and episodic entries shown in the prompt"),
        AgentOption(
            "max_prompt_tokens",
            "6144",
            "as in training, `recent` is halved (5, 2, 1, 0) until the prompt fits; 0 means no cap",
        ),
        AgentOption("tokenizer", "qwen3", "token counter for the 512-token core cap and the prompt cap"),
        AgentOption("concurrency", "16", "parallel requests (openai) or batch size (hf)"),
        AgentOption("timeout", "600", "seconds per request, openai backend only"),
        AgentOption("max_retries", "5", "retries per request, openai backend only"),
        AgentOption(
            "cache", None, "a response cache (SQLite) of its own; by default the run's, RUN/.cache/agent.sqlite"
        ),
    )
    operational_options = frozenset({"base_url", "concurrency", "timeout", "max_retries", "cache"})

    def __init__(self, reader: Reader | None = None, /, **options: str):
        super().__init__(**options)
        self.settings, self.reader_settings = parse_options(self.options, self.name, with_reader=reader is None)
        self.counter = get_counter(self.settings.tokenizer)
        self.prompt = memorize_prompt()
        self.turn = MemorizeTurn(self.settings, self.counter, self.prompt)
        inner = reader if reader is not None else self.reader_settings.make()  # type: ignore[union-attr]
        self._cache = ResponseCache(self.settings.cache) if self.settings.cache else None
        self.reader: Reader = CachedReader(inner, self._cache) if self._cache is not None else inner
        # a server takes a failed step's requests again concurrently; an in-process model one at a time
        server = self.reader_settings is not None and self.reader_settings.backend == "openai"
        self._retry_workers = self.reader_settings.concurrency if server else 1  # type: ignore[union-attr]

    def describe(self) -> dict[str, Any]:
        """Every option (defaults filled in), the prompt's version and hash, the reader and the counter.
        An API key is never an option, and readers never describe one."""
        options = asdict(self.settings)
        if self.reader_settings is not None:
            options.update(asdict(self.reader_settings))
        return {
            "name": self.name,
            "options": options,
            "prompt_version": self.prompt.version,
            "prompt_sha256": self.prompt.sha256,
            "reader": self.reader.describe(),
            "tokenizer": self.counter.describe(),
        }

    def new_session(self, instance: InstanceInfo) -> MemAlphaSession:
        return MemAlphaSession(self, instance)

    def use_response_cache(self, cache: ResponseCache) -> None:
        """Answer from the run's cache, so a resumed run replays finished steps (a `cache` option wins)."""
        if self._cache is None:
            self.reader = CachedReader(self.reader, cache)

    def observe_batch(
        self, sessions: Sequence[Session], chunks: Sequence[str], concurrency: int = 1
    ) -> list[BaseException | None]:
        """One reader call for the whole step; per session, the error that stopped it or None.

        `concurrency` (the runner's) is not used: how many requests run at once is the reader's
        business (the `concurrency` option)."""
        ours = [_ours(s) for s in sessions]
        built = self.turn.requests([(s.env, c, s.turn_stats) for s, c in zip(ours, chunks, strict=True)])
        errors: list[BaseException | None] = [None] * len(ours)
        for i, answer in self._generate(dict(enumerate(built))).items():
            if isinstance(answer, BaseException):
                errors[i] = answer
            else:
                errors[i], _ = _attempt(lambda s=ours[i], a=answer: s.absorb(a))
        return errors

    def _generate(self, requests: dict[int, ReaderRequest]) -> dict[int, ReaderResponse | BaseException]:
        """A response or an error per request: all in one call, then one by one for the requests that
        call left unanswered (a failed call stops sending, so unanswered is not the same as failed)."""
        order = list(requests)
        if not order:
            return {}
        answers: dict[int, ReaderResponse | BaseException] = {}
        try:
            responses = self.reader.generate(
                [requests[i] for i in order], on_result=lambda j, r: answers.__setitem__(order[j], r)
            )
            return dict(zip(order, responses, strict=True))
        except Exception:  # any failure of the reader, vLLM's own included: told per request below
            missing = [i for i in order if i not in answers]
        with ThreadPoolExecutor(max_workers=max(1, min(self._retry_workers, len(missing)))) as pool:
            alone = pool.map(lambda i: _attempt(lambda: self.reader.generate([requests[i]])[0]), missing)
            for i, (error, response) in zip(missing, alone, strict=True):
                answers[i] = error if error is not None else response
        return answers

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def _ours(session: Session) -> MemAlphaSession:
    if not isinstance(session, MemAlphaSession):
        raise TypeError(f"the memalpha agent observes its own sessions, not {type(session).__name__}")
    return session


def _attempt(fn: Callable[[], Any]) -> tuple[BaseException | None, Any]:
    """(None, result) or (the error, None): an error belongs to one instance and is reported for it."""
    try:
        return None, fn()
    except Exception as exc:
        return exc, None
