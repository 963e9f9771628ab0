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
`MemAlphaAgent.option_docs` (`memalpha agents list` shows them); the reader options are shared with
the other model-backed agents (`benchmark/agents/llm.py`). `format=qwen-agent` renders the tool
block with the qwen-agent package (the `qwen-agent` extra); `prompt_file` is a jinja2 file with a
`system` and a `user` block that replaces our memorising prompt (see `prompts.py`; its sha256 goes
into the run's config).

In the qwen3 format the tools go to the server as `tools=`; a vLLM server must be started with
`--enable-auto-tool-choice --tool-call-parser hermes` to take them (and then parses the calls).

The prompt is counted as its two messages plus, in the qwen3 format, the tool schemas as JSON (the
chat template adds them); the few tokens of chat markup are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmark.agents.base import Agent, AgentOption, InstanceInfo, OptionReader, Session
from benchmark.agents.llm import OPERATIONAL_OPTIONS, GenerationCounts, ModelAccess, reader_option_docs
from benchmark.cache import ResponseCache
from benchmark.memory import Memory
from benchmark.readers import Reader, ReaderRequest, ReaderResponse, SamplingParams
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
    prompt_file: str | None


def parse_settings(opts: OptionReader) -> Settings:
    """Typed, checked options (the reader's are read by `ModelAccess`)."""
    return Settings(
        format=opts.choice("format", "qwen3", FORMATS),  # type: ignore[arg-type]
        max_tokens=opts.integer("max_tokens", 2048, 1),
        temperature=opts.number("temperature", 0.0, 0.0),
        recent=opts.integer("recent", 5, 0),
        max_prompt_tokens=opts.integer("max_prompt_tokens", 6144, 0),
        tokenizer=opts.get("tokenizer") or "qwen3",
        prompt_file=opts.get("prompt_file") or None,
    )


@dataclass
class TurnStats(GenerationCounts):
    """Counts over an instance's generations (tool-call counts live in the environment)."""

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
        stats.count(response)
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
    """The reference Mem-α agent: one tool-calling generation per chunk writes core, semantic and
    episodic memory.

    From Python, `MemAlphaAgent(reader, **options)` runs on a reader built elsewhere (the positional
    argument cannot be set from `--agent-opt`); the reader options are then not taken."""

    name = "memalpha"
    option_docs = (
        AgentOption(
            "format",
            "qwen3",
            "tool-call format: qwen3 (<tool_call> JSON, or the calls the server parsed) or qwen-agent (the "
            "markers the released Memalpha-4B was trained on; the tool block rendered by the qwen-agent extra)",
        ),
        AgentOption("prompt_file", None, "a jinja2 file (system and user blocks) replacing our memorising prompt"),
        AgentOption("max_tokens", "2048", "response limit (the prompt asks for 80% of it)"),
        AgentOption("temperature", "0", "0 is greedy, as at evaluation"),
        AgentOption("recent", "5", "semantic and episodic entries shown in the prompt"),
        AgentOption(
            "max_prompt_tokens",
            "6144",
            "as in training, `recent` is halved (5, 2, 1, 0) until the prompt fits; 0 means no cap",
        ),
        AgentOption("tokenizer", "qwen3", "token counter for the 512-token core cap and the prompt cap"),
        *reader_option_docs("vllm", DEFAULT_MODEL),
    )
    operational_options = OPERATIONAL_OPTIONS

    def __init__(self, reader: Reader | None = None, /, **options: str):
        super().__init__(**options)
        opts = self.option_reader()
        self.settings = parse_settings(opts)
        file = self.settings.prompt_file
        self.prompt = MemorizePrompt(prompt_file=file) if file else memorize_prompt()
        self.prompt_sha256 = self.prompt.sha256_for(self.settings.format)  # needs qwen-agent for that format
        self.model = ModelAccess(reader, opts, default_backend="vllm", default_model=DEFAULT_MODEL)
        self.counter = get_counter(self.settings.tokenizer)
        self.turn = MemorizeTurn(self.settings, self.counter, self.prompt)

    def describe(self) -> dict[str, Any]:
        """Every option (defaults filled in), the prompt's version and hash, the reader and the counter.
        An API key is never an option, and readers never describe one."""
        described = {
            "name": self.name,
            "options": {**asdict(self.settings), **self.model.options()},
            "prompt_version": self.prompt.version,
            "prompt_sha256": self.prompt_sha256,
            "reader": self.model.describe(),
            "tokenizer": self.counter.describe(),
        }
        if self.prompt.prompt_file is not None:
            described["prompt_file_sha256"] = self.prompt.prompt_file.sha256
        return described

    def identity(self) -> dict[str, Any]:
        """The options that change memories, and the prompt's hash (a prompt file may change in place)."""
        return {**super().identity(), "prompt_sha256": self.prompt_sha256}

    def new_session(self, instance: InstanceInfo) -> MemAlphaSession:
        return MemAlphaSession(self, instance)

    def use_response_cache(self, cache: ResponseCache) -> None:
        self.model.use_response_cache(cache)

    def observe_batch(
        self, sessions: Sequence[Session], chunks: Sequence[str], concurrency: int = 1
    ) -> list[BaseException | None]:
        """One reader call for the whole step; per session, the error that stopped it or None.

        `concurrency` (the runner's) is not used: how many requests run at once is the reader's
        business (the `concurrency` option)."""
        ours = [_ours(s) for s in sessions]
        built = self.turn.requests([(s.env, c, s.turn_stats) for s, c in zip(ours, chunks, strict=True)])
        return self.model.step(built, [s.absorb for s in ours])

    def close(self) -> None:
        self.model.close()


def _ours(session: Session) -> MemAlphaSession:
    if not isinstance(session, MemAlphaSession):
        raise TypeError(f"the memalpha agent observes its own sessions, not {type(session).__name__}")
    return session
