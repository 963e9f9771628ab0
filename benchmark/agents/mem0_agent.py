"""`mem0`: the mem0 library (`mem0ai`, open-source mode) as an agent. Needs the `mem0` extra.

Each instance gets its own `mem0.Memory` (its own local Qdrant folder and history database under
the agent's work folder), and each chunk goes in through mem0's own ingestion, `Memory.add` with
the chunk as a user message (`infer=True`: mem0's LLM extracts the facts and mem0 stores them). The
final memory is what mem0 reports holding for the instance (`Memory.get_all`): every memory a
semantic entry, in the order mem0 added them. mem0's open-source mode keeps no event time (its
`timestamp` is a platform feature) and no profile block, so episodic and core stay empty.

mem0's LLM calls go through the benchmark's reader (any backend) and the response cache (the run's,
unless `cache` names one), in place of its own OpenAI client; its `response_format={"type":
"json_object"}` hint is not sent (the readers send plain chat requests; mem0's prompt asks for JSON
itself). Its embeddings go to an OpenAI-compatible embeddings endpoint through mem0's own `openai`
embedder, uncached. A resumed run starts the instances that were open over (their stores are
removed) and replays their answered LLM steps from the run's cache.

Options, besides the reader options of `llm.py` (`backend` defaults to openai):

- `embedding_model` (text-embedding-3-small), `embedding_base_url` (default: `base_url`),
  `embedding_dims` (1536): the embedder;
- `max_tokens`, `temperature`, `top_p`: mem0's LLM settings (defaults: mem0's own);
- `workdir`: where the per-instance stores go (default: a temporary folder, removed at the end);
- `custom_instructions`: passed to mem0 (its extraction prompt's custom instructions).

mem0 is told not to send telemetry (`MEM0_TELEMETRY=False`, unless set otherwise) and keeps its
own settings folder under the benchmark's cache (`MEM0_DIR`, unless set otherwise).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ..cache import ResponseCache
from ..memory import Memory, MemoryEntry
from ..paths import cache_root
from ..readers import Reader, ReaderRequest, SamplingParams
from .base import Agent, AgentOption, AgentOptionError, InstanceInfo, Session, require
from .llm import OPERATIONAL_OPTIONS, GenerationCounts, ModelAccess, reader_option_docs

EXTRA = "mem0"


def _import_mem0() -> Any:
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    os.environ.setdefault("MEM0_DIR", str(cache_root() / "mem0"))
    return require("mem0", EXTRA, "the mem0 agent")


@dataclass(frozen=True)
class Mem0Settings:
    embedding_model: str
    embedding_base_url: str | None
    embedding_dims: int
    max_tokens: int
    temperature: float
    top_p: float
    custom_instructions: str | None


@dataclass
class Mem0Stats(GenerationCounts):
    added: int = 0  # ADD events mem0 reported over the instance
    held: int = 0  # memories mem0 holds at the end


def _reader_llm_class(mem0: Any) -> type:
    """A mem0 LLM (its `LLMBase`) that answers through the benchmark's reader."""
    from mem0.llms.base import LLMBase

    class ReaderLLM(LLMBase):
        def __init__(self, model: ModelAccess, params: SamplingParams, name: str, stats: Mem0Stats):
            super().__init__({"model": name})
            self.access, self.params, self.stats = model, params, stats

        def generate_response(self, messages, response_format=None, tools=None, tool_choice="auto", **kwargs):
            if tools:
                raise NotImplementedError("mem0 asked for tool calls; its add() pipeline does not, so neither do we")
            request = ReaderRequest(tuple((m["role"], m["content"]) for m in messages), self.params)
            response = self.access.generate_one(request)
            self.stats.count(response)
            return response.text

    return ReaderLLM


class Mem0Session(Session):
    """One instance's mem0 store."""

    def __init__(self, agent: Mem0Agent, info: InstanceInfo, folder: Path):
        self.agent, self.info, self.folder = agent, info, folder
        self.user_id = info.instance_id
        self.counts = Mem0Stats()
        self.library = agent.mem0.Memory.from_config(agent.library_config(folder))
        self.library.llm = agent.reader_llm(agent.model, agent.params, agent.model_name, self.counts)
        self.added_order: list[str] = []  # mem0 ids in the order mem0 reported adding them

    def observe(self, chunk: str) -> None:
        result = self.library.add([{"role": "user", "content": chunk}], user_id=self.user_id, infer=True)
        for event in result.get("results", []):
            if event.get("event") == "ADD":
                self.added_order.append(event["id"])
                self.counts.added += 1

    def held(self) -> list[dict[str, Any]]:
        """What mem0 reports holding for this instance, every memory of it."""
        found = self.library.get_all(filters={"user_id": self.user_id}, top_k=max(100, 2 * len(self.added_order)))
        return list(found["results"])

    def memory(self) -> Memory:
        held = self.held()
        self.counts.held = len(held)
        rank = {mem_id: i for i, mem_id in enumerate(self.added_order)}
        last = len(rank)
        ordered = sorted(held, key=lambda m: (rank.get(m["id"], last), m.get("created_at") or "", m["id"]))
        return Memory("", tuple(MemoryEntry(f"s{i}", m["memory"]) for i, m in enumerate(ordered)), ())

    def stats(self) -> dict[str, Any]:
        return asdict(self.counts)

    def close(self) -> None:
        self.library.close()


class Mem0Agent(Agent):
    """mem0 (open-source mode, local Qdrant) ingesting each chunk; its memories as semantic entries."""

    name = "mem0"
    option_docs = (
        AgentOption("embedding_model", "text-embedding-3-small", "the embeddings model"),
        AgentOption("embedding_base_url", None, "the embeddings server (OpenAI-compatible); default: base_url"),
        AgentOption("embedding_dims", "1536", "the embeddings' size"),
        AgentOption("max_tokens", None, "mem0's LLM reply limit; default: mem0's own (2000 in mem0 2.2)"),
        AgentOption("temperature", None, "mem0's LLM temperature; default: mem0's own (0.1 in mem0 2.2)"),
        AgentOption("top_p", None, "mem0's LLM top_p; default: mem0's own (0.1 in mem0 2.2)"),
        AgentOption(
            "workdir", None, "where the per-instance stores go; default: a temporary folder, removed at the end"
        ),
        AgentOption("custom_instructions", None, "mem0's custom extraction instructions"),
        *reader_option_docs("openai", "Qwen/Qwen3-32B"),
    )
    operational_options = OPERATIONAL_OPTIONS | {"workdir"}

    def __init__(self, reader: Reader | None = None, /, **options: str):
        super().__init__(**options)
        self.mem0 = _import_mem0()
        from mem0.configs.llms.base import BaseLlmConfig

        own = BaseLlmConfig()  # mem0's own LLM defaults
        opts = self.option_reader()
        self.settings = Mem0Settings(
            embedding_model=opts.get("embedding_model") or "text-embedding-3-small",
            embedding_base_url=opts.get("embedding_base_url") or opts.options.get("base_url") or None,
            embedding_dims=opts.integer("embedding_dims", 1536, 1),
            max_tokens=opts.integer("max_tokens", own.max_tokens, 1),
            temperature=opts.number("temperature", own.temperature, 0.0),
            top_p=opts.number("top_p", own.top_p, 0.0),
            custom_instructions=opts.get("custom_instructions") or None,
        )
        workdir = opts.get("workdir")
        if self.settings.embedding_base_url is None:
            raise AgentOptionError(
                "agent mem0: the embedder needs a server: embedding_base_url=URL (or base_url, used for both)"
            )
        self.model = ModelAccess(reader, opts, default_backend="openai", default_model="Qwen/Qwen3-32B")
        self.model_name = str(self.model.describe().get("model", "reader"))
        self.params = SamplingParams(
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            enable_thinking=False,
        )
        self.reader_llm = _reader_llm_class(self.mem0)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="memalpha-mem0-"))
        self._sessions: list[Mem0Session] = []
        self._lock = threading.Lock()

    def library_config(self, folder: Path) -> dict[str, Any]:
        """mem0's configuration for one instance: a local Qdrant folder, a history database, the
        embedder on the OpenAI-compatible server. The LLM entry is replaced by the reader."""
        s = self.settings
        config: dict[str, Any] = {
            "vector_store": {
                "provider": "qdrant",
                "config": {
                    "collection_name": "memalpha",
                    "path": str(folder / "qdrant"),
                    "embedding_model_dims": s.embedding_dims,
                    "on_disk": True,
                },
            },
            "embedder": {
                "provider": "openai",
                "config": {
                    "model": s.embedding_model,
                    "openai_base_url": s.embedding_base_url,
                    "embedding_dims": s.embedding_dims,
                    "api_key": os.environ.get("OPENAI_API_KEY") or "EMPTY",
                },
            },
            "llm": {"provider": "openai", "config": {"model": self.model_name, "api_key": "unused"}},
            "history_db_path": str(folder / "history.db"),
        }
        if s.custom_instructions:
            config["custom_instructions"] = s.custom_instructions
        return config

    def describe(self) -> dict[str, Any]:
        """The options (defaults filled in), mem0's version and the settings it ran with, the reader."""
        settings = self.library_config(Path("<workdir>/<instance>"))
        settings["embedder"]["config"].pop("api_key")
        settings["llm"] = {
            "through": "the memalpha reader (see `reader`)",
            **{k: getattr(self.settings, k) for k in ("max_tokens", "temperature", "top_p")},
        }
        return {
            "name": self.name,
            "options": {
                **asdict(self.settings),
                **self.model.options(),
                "workdir": None if self._own_workdir else str(self.workdir),
            },
            "library": {"package": "mem0ai", "version": version("mem0ai"), "settings": settings},
            "reader": self.model.describe(),
        }

    def use_response_cache(self, cache: ResponseCache) -> None:
        self.model.use_response_cache(cache)

    def new_session(self, instance: InstanceInfo) -> Mem0Session:
        folder = self.workdir / f"{instance.task}-{instance.instance_id}"
        if folder.exists():  # left by a killed run: this instance starts over
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        session = Mem0Session(self, instance, folder)
        with self._lock:
            self._sessions.append(session)
        return session

    def close(self) -> None:
        for session in self._sessions:
            session.close()
        self.model.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
