"""Agents: the protocol, the registry, the built-in baselines and the HTTP bridge.

Third-party packages add agents through the `memalpha.agents` entry-point group, naming an `Agent`
subclass; the reference Mem-alpha agent registers itself the same way.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from tasks.errors import UnknownNameError

from .base import Agent, AgentOption, AgentOptionError, InstanceInfo, OptionReader, Session

BUILTIN = {
    "chunk-store": "benchmark.agents.baselines:ChunkStoreAgent",
    "long-context": "benchmark.agents.baselines:LongContextAgent",
    "http": "benchmark.agents.http:HTTPAgent",
    "memagent": "benchmark.agents.memagent:MemAgentAgent",
    "mem1": "benchmark.agents.mem1:Mem1Agent",
    "mem0": "benchmark.agents.mem0_agent:Mem0Agent",
    "langmem": "benchmark.agents.langmem_agent:LangMemAgent",
}
GROUP = "memalpha.agents"
TOKENIZER_OPTION = "tokenizer"


def available() -> dict[str, str]:
    """Agent name -> "module:Class", built-ins first, then entry points."""
    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def agent_class(name: str) -> type[Agent]:
    """The class of a registered agent, or of "package.module:Class"."""
    import importlib

    known = available()
    spec = known.get(name) or (name if ":" in name else None)
    if spec is None:
        raise UnknownNameError("agent", name, known)
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)


def make_agent(name: str, options: dict[str, str] | None = None, *, tokenizer: str | None = None) -> Agent:
    """The agent `name` with `options`. `tokenizer` (the harness's `--tokenizer`) fills the agent's
    `tokenizer` option when it declares one and the options do not set it, so that one flag governs
    builds, agents and scoring alike."""
    cls = agent_class(name)
    options = dict(options or {})
    if tokenizer and TOKENIZER_OPTION not in options and any(o.name == TOKENIZER_OPTION for o in cls.option_docs or ()):
        options[TOKENIZER_OPTION] = tokenizer
    return cls(**options)


__all__ = [
    "Agent",
    "AgentOption",
    "AgentOptionError",
    "InstanceInfo",
    "OptionReader",
    "Session",
    "agent_class",
    "available",
    "make_agent",
]
