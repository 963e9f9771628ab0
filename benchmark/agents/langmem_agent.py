"""`langmem`: LangMem (LangChain's memory library) as an agent. Needs the `langmem` extra.

Each instance gets its own LangMem store managers (`create_memory_store_manager`) over LangGraph
`InMemoryStore`s, and each chunk goes in through LangMem's own ingestion, `manager.invoke` with the
chunk as a user message: LangMem searches its store for related memories, its LLM answers with tool
calls (through trustcall) that insert new memories or patch the ones shown, and LangMem writes the
result back to the store. Two managers, as LangMem's guides lay out its memory types:

- a collection, searched by embeddings, of LangMem's own `Memory` schema (facts: **semantic**) and
  our `Event` schema (what happened and when: **episodic**, `when` as the entry's timestamp);
- a profile, one document of our `Core` schema updated in place (`enable_inserts=False`): **core**.

The final memory is what the managers report holding for the instance (`manager.search`,
`manager.get`), in the order LangMem first wrote each memory.

LangMem talks to the model through its own LangChain client (`langchain_openai.ChatOpenAI`), pointed
at the user's OpenAI-compatible server: its requests carry tool schemas, a forced tool choice and,
on a failed validation, tool-call turns, which the benchmark's readers do not carry. So its calls are
not in the response cache (a cache could not replay them anyway: LangMem's prompt holds a fresh
uuid on every call). The API key is $OPENAI_API_KEY (else "EMPTY", for local servers). Embeddings
go to an OpenAI-compatible `/v1/embeddings` endpoint through `langchain_openai.OpenAIEmbeddings`.

Options (`--agent-opt key=value`):

- `model` (Qwen/Qwen3-32B), `base_url` (required), `timeout` (600), `max_retries` (5): the LLM;
- `temperature` (0), `max_tokens` (2048): its sampling (LangMem sets neither);
- `embedding_model` (text-embedding-3-small), `embedding_base_url` (default: `base_url`),
  `embedding_dims` (unset: the server's own size; when set, sent as `dimensions`);
- `kinds` (semantic,episodic,core): which memory types to keep (see above);
- `instructions`: the collection's extraction instructions (default: LangMem's own);
- `query_limit` (5, LangMem's default; at least 4), `max_steps` (1), `enable_deletes` (false):
  LangMem's manager settings;
- `template_kwargs` (auto): whether requests carry `chat_template_kwargs` with Qwen3's thinking
  switch off (`send`, `omit`; `auto` sends it except to api.openai.com, which rejects it).
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from ..cache import ResponseCache
from ..memory import Memory, MemoryEntry
from ..readers.openai_reader import HOSTS_WITHOUT_TEMPLATE_KWARGS, TEMPLATE_KWARGS_MODES
from .base import Agent, AgentOption, AgentOptionError, InstanceInfo, OptionReader, Session, require
from .llm import GenerationCounts

EXTRA = "langmem"
KINDS = ("semantic", "episodic", "core")
PACKAGES = ("langmem", "trustcall", "langgraph", "langchain-core", "langchain-openai")
# LangMem searches its store once per window of the conversation, with `query_limit // 4` windows:
# below 4 it searches nothing, so it never sees (or updates) a memory it already holds.
MIN_QUERY_LIMIT = 4


class Event(BaseModel):
    """Record one event the text tells of: something that happened, with the time the text gives
    for it. Call this tool once per event; use parallel calls for several."""

    when: str = Field(
        description="The date or time of the event as the text gives it (or the time of the message "
        "that tells of it); empty if the text gives none."
    )
    what: str = Field(description="What happened, as a standalone sentence: who did what, where, with what result.")


class Core(BaseModel):
    """The core notes: a short text kept up to date with what matters most in everything read so far."""

    notes: str = Field(
        default="",
        description="A short text with the standing facts that later questions are most likely to need: "
        "the main people, places, subjects and how they relate. Rewrite it as new text arrives.",
    )


CORE_INSTRUCTIONS = (
    "Keep the core notes current. Fold in what the new text adds about its main people, places and "
    "subjects, correct what it contradicts, and keep the notes short: details belong elsewhere."
)


def _import_libraries() -> Any:
    """LangMem and the LangChain pieces the agent builds on, or the install hint."""
    langmem = require("langmem", EXTRA, "the langmem agent")
    require("langchain_openai", EXTRA, "the langmem agent")
    require("langgraph.store.memory", EXTRA, "the langmem agent")
    return langmem


def _usage_counter_class() -> type:
    """A LangChain callback that counts each LLM call and its tokens (the server's usage)."""
    from langchain_core.callbacks import BaseCallbackHandler

    class UsageCounter(BaseCallbackHandler):
        def __init__(self, counts: LangMemStats):
            self.counts = counts
            self._lock = threading.Lock()

        def on_llm_end(self, response, **kwargs: Any) -> None:
            with self._lock:
                for generation in response.generations[0]:
                    usage = getattr(getattr(generation, "message", None), "usage_metadata", None) or {}
                    self.counts.generations += 1
                    self.counts.prompt_tokens += usage.get("input_tokens", 0)
                    self.counts.completion_tokens += usage.get("output_tokens", 0)

    return UsageCounter


@dataclass(frozen=True)
class LangMemSettings:
    model: str
    base_url: str
    timeout: float
    max_retries: int
    temperature: float
    max_tokens: int
    embedding_model: str
    embedding_base_url: str
    embedding_dims: int | None
    kinds: tuple[str, ...]
    instructions: str | None  # None: LangMem's own
    query_limit: int
    max_steps: int
    enable_deletes: bool
    template_kwargs: str

    def sends_template_kwargs(self) -> bool:
        if self.template_kwargs == "auto":
            return urlsplit(self.base_url).hostname not in HOSTS_WITHOUT_TEMPLATE_KWARGS
        return self.template_kwargs == "send"

    @classmethod
    def parse(cls, opts: OptionReader) -> LangMemSettings:
        if opts.get("cache"):
            raise AgentOptionError(
                "agent langmem: its LLM calls go through LangMem's own client, not the benchmark's readers, "
                "so there is no response cache to give (see docs/agents.md)"
            )
        base_url = opts.get("base_url")
        if not base_url:
            raise AgentOptionError("agent langmem: base_url=URL is required (an OpenAI-compatible server)")
        kinds = tuple(k.strip() for k in (opts.get("kinds") or ",".join(KINDS)).split(",") if k.strip())
        wrong = [k for k in kinds if k not in KINDS]
        if wrong or not kinds:
            raise AgentOptionError(
                f"agent langmem: option kinds={opts.options.get('kinds')!r}; give one or more of {', '.join(KINDS)}"
            )
        dims = opts.get("embedding_dims")
        settings = cls(
            model=opts.get("model") or "Qwen/Qwen3-32B",
            base_url=base_url,
            timeout=opts.number("timeout", 600.0, 1.0),
            max_retries=opts.integer("max_retries", 5, 0),
            temperature=opts.number("temperature", 0.0, 0.0),
            max_tokens=opts.integer("max_tokens", 2048, 1),
            embedding_model=opts.get("embedding_model") or "text-embedding-3-small",
            embedding_base_url=opts.get("embedding_base_url") or base_url,
            embedding_dims=None if dims is None else opts.integer("embedding_dims", 0, 1),
            kinds=tuple(k for k in KINDS if k in kinds),
            instructions=opts.get("instructions") or None,
            query_limit=opts.integer("query_limit", 5, MIN_QUERY_LIMIT),
            max_steps=opts.integer("max_steps", 1, 1),
            enable_deletes=opts.flag("enable_deletes", False),
            template_kwargs=opts.choice("template_kwargs", "auto", TEMPLATE_KWARGS_MODES),
        )
        opts.finish()
        return settings


@dataclass
class LangMemStats(GenerationCounts):
    writes: int = 0  # memories LangMem wrote (inserted or changed) over the instance, core included
    blank: int = 0  # memories held with no text, left out of the export


class LangMemSession(Session):
    """One instance's LangMem stores and managers."""

    def __init__(self, agent: LangMemAgent, info: InstanceInfo):
        from langgraph.store.memory import InMemoryStore

        self.agent, self.info = agent, info
        self.counts = LangMemStats()
        self.config = {
            "configurable": {"langgraph_user_id": info.instance_id},
            "callbacks": [agent.usage_counter(self.counts)],
        }
        self.first_written: dict[str, int] = {}  # store key -> order of LangMem's first write
        self.collection = self.profile = None
        schemas = agent.collection_schemas()
        if schemas:
            self.collection = agent.manager(
                schemas=schemas,
                store=InMemoryStore(index=agent.index_config()),
                **agent.collection_settings(),
            )
        if "core" in agent.settings.kinds:
            self.profile = agent.manager(schemas=[Core], store=InMemoryStore(), **agent.profile_settings())

    def managers(self) -> list[Any]:
        return [m for m in (self.collection, self.profile) if m is not None]

    def observe(self, chunk: str) -> None:
        messages = [{"role": "user", "content": chunk}]
        for manager in self.managers():
            written = manager.invoke({"messages": messages, "max_steps": self.agent.settings.max_steps}, self.config)
            self._check_held(manager, written)
            for put in written:
                self.first_written.setdefault(put["key"], len(self.first_written))
            self.counts.writes += len(written)

    def _check_held(self, manager: Any, written: list[dict[str, Any]]) -> None:
        """LangMem's synchronous `invoke` writes to its store in a thread pool and drops any error of
        those writes (an embeddings request that failed, say): a write it reports must be held."""
        for put in written:
            item = manager.store.get(put["namespace"], put["key"])
            if item is None or item.value != put["value"]:
                raise RuntimeError(
                    f"instance {self.info.instance_id}: LangMem reported writing memory {put['key']!r} "
                    "but its store does not hold it (the store write failed; LangMem does not say why: "
                    "check the embeddings endpoint)"
                )

    def held(self) -> list[Any]:
        """What LangMem reports holding in the instance's collection (its own `search`)."""
        if self.collection is None:
            return []
        found = self.collection.search(limit=len(self.first_written) + 1, config=self.config)
        if len(found) > len(self.first_written):
            raise RuntimeError(f"instance {self.info.instance_id}: LangMem holds memories it never reported writing")
        return found

    def core(self) -> str:
        if self.profile is None:
            return ""
        return self.profile.get("default", config=self.config).value.notes

    def memory(self) -> Memory:
        from langmem.knowledge.extraction import Memory as LangMemMemory

        last = len(self.first_written)
        ordered = sorted(self.held(), key=lambda item: (self.first_written.get(item.key, last), item.key))
        semantic: list[MemoryEntry] = []
        episodic: list[MemoryEntry] = []
        for item in ordered:
            value = item.value
            if isinstance(value, Event):
                entry = MemoryEntry(f"e{len(episodic)}", value.what.strip(), value.when.strip() or None)
                target = episodic
            elif isinstance(value, LangMemMemory):
                entry, target = MemoryEntry(f"s{len(semantic)}", value.content.strip()), semantic
            else:
                raise RuntimeError(
                    f"instance {self.info.instance_id}: LangMem holds a memory of no known kind: {value!r}"
                )
            if entry.content:
                target.append(entry)
            else:
                self.counts.blank += 1
        return Memory(self.core(), tuple(semantic), tuple(episodic))

    def stats(self) -> dict[str, Any]:
        return asdict(self.counts)


class LangMemAgent(Agent):
    """LangMem's store managers fed chunk by chunk; facts, events and a core profile as the memory."""

    name = "langmem"
    option_docs = (
        AgentOption("model", "Qwen/Qwen3-32B", "the LLM"),
        AgentOption("base_url", None, "the LLM's OpenAI-compatible server (required)"),
        AgentOption("timeout", "600", "seconds per request"),
        AgentOption("max_retries", "5", "retries per request"),
        AgentOption("temperature", "0", "the LLM's temperature (LangMem sets none)"),
        AgentOption("max_tokens", "2048", "the LLM's reply limit (LangMem sets none)"),
        AgentOption("embedding_model", "text-embedding-3-small", "the embeddings model"),
        AgentOption("embedding_base_url", None, "the embeddings server; default: base_url"),
        AgentOption("embedding_dims", None, "sent as `dimensions` when set; default: the server's own size"),
        AgentOption("kinds", ",".join(KINDS), "which memory types to keep"),
        AgentOption("instructions", None, "the collection's extraction instructions; default: LangMem's own"),
        AgentOption("query_limit", "5", f"LangMem's search limit (LangMem's default; at least {MIN_QUERY_LIMIT})"),
        AgentOption("max_steps", "1", "LangMem's extraction rounds per chunk"),
        AgentOption("enable_deletes", "false", "let LangMem delete memories"),
        AgentOption(
            "template_kwargs",
            "auto",
            "send chat_template_kwargs (Qwen3's thinking switch off): send, omit, or auto (all but api.openai.com)",
        ),
    )
    operational_options = frozenset({"base_url", "embedding_base_url", "timeout", "max_retries"})

    def __init__(self, **options: str):
        super().__init__(**options)
        self.langmem = _import_libraries()
        self.settings = LangMemSettings.parse(self.option_reader())
        import httpx
        from langchain_openai import ChatOpenAI, OpenAIEmbeddings

        s = self.settings
        api_key = os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._http = httpx.Client(timeout=s.timeout)  # one connection pool for both clients, closed at the end
        self.llm = ChatOpenAI(
            model=s.model,
            base_url=s.base_url,
            api_key=api_key,
            temperature=s.temperature,
            max_tokens=s.max_tokens,
            timeout=s.timeout,
            max_retries=s.max_retries,
            extra_body={"chat_template_kwargs": {"enable_thinking": False}} if s.sends_template_kwargs() else None,
            http_client=self._http,
        )
        self.embeddings = OpenAIEmbeddings(
            model=s.embedding_model,
            base_url=s.embedding_base_url,
            api_key=api_key,
            dimensions=s.embedding_dims,
            check_embedding_ctx_length=False,  # send text, not tiktoken ids: any server's model
            timeout=s.timeout,
            max_retries=s.max_retries,
            http_client=self._http,
        )
        self.usage_counter = _usage_counter_class()

    def manager(self, **settings: Any) -> Any:
        return self.langmem.create_memory_store_manager(self.llm, **settings)

    def collection_schemas(self) -> list[type[BaseModel]]:
        from langmem.knowledge.extraction import Memory as LangMemMemory

        kinds = self.settings.kinds
        return [s for s, k in ((LangMemMemory, "semantic"), (Event, "episodic")) if k in kinds]

    def collection_settings(self) -> dict[str, Any]:
        s = self.settings
        own = {"instructions": s.instructions} if s.instructions else {}
        return {**own, "query_limit": s.query_limit, "enable_deletes": s.enable_deletes}

    def profile_settings(self) -> dict[str, Any]:
        return {
            "instructions": CORE_INSTRUCTIONS,
            "default": Core(),
            "enable_inserts": False,
            "query_limit": self.settings.query_limit,
        }

    def index_config(self) -> dict[str, Any]:
        return {"dims": self.settings.embedding_dims, "embed": self.embeddings}

    def describe(self) -> dict[str, Any]:
        """The options (defaults filled in), LangMem's version (and its LangChain pieces'), the settings
        it ran with."""
        from langmem.knowledge.extraction import _MEMORY_INSTRUCTIONS

        s = self.settings
        schema = {"semantic": "Memory (LangMem's own)", "episodic": "Event", "core": "Core"}
        collection = {
            "schemas": [schema[k] for k in s.kinds if k != "core"],
            "instructions": s.instructions or _MEMORY_INSTRUCTIONS,
            "enable_inserts": True,
            "store": "langgraph InMemoryStore, embeddings index",
            **{k: v for k, v in self.collection_settings().items() if k != "instructions"},
        }
        profile = {
            "schemas": ["Core"],
            "instructions": CORE_INSTRUCTIONS,
            "enable_inserts": False,
            "store": "langgraph InMemoryStore",
            "query_limit": s.query_limit,
        }
        settings = {
            "managers": {
                **({"collection": collection} if collection["schemas"] else {}),
                **({"profile": profile} if "core" in s.kinds else {}),
            },
            "max_steps": s.max_steps,
            "llm": {
                "client": "langchain_openai.ChatOpenAI",
                "model": s.model,
                "base_url": s.base_url,
                "temperature": s.temperature,
                "max_tokens": s.max_tokens,
                "chat_template_kwargs": {"enable_thinking": False} if s.sends_template_kwargs() else None,
            },
            "embedder": {
                "client": "langchain_openai.OpenAIEmbeddings",
                "model": s.embedding_model,
                "base_url": s.embedding_base_url,
                "dimensions": s.embedding_dims,
            },
        }
        return {
            "name": self.name,
            "options": {**asdict(self.settings), "kinds": ",".join(s.kinds)},
            "library": {
                "package": "langmem",
                "version": version("langmem"),
                "versions": {p: version(p) for p in PACKAGES},
                "settings": settings,
            },
        }

    def use_response_cache(self, cache: ResponseCache) -> None:
        """Not taken: LangMem asks the model through its own LangChain client, which no reader cache
        sits in front of (and its prompts carry a fresh uuid each call, so nothing could be replayed).
        A resumed run starts the instances that were open over, asking the model again for them."""

    def new_session(self, instance: InstanceInfo) -> LangMemSession:
        return LangMemSession(self, instance)

    def close(self) -> None:
        self._http.close()
