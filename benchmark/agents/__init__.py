"""Agents: the protocol, the registry, the built-in baselines and the HTTP bridge.

Third-party packages add agents through the `memalpha.agents` entry-point group, naming an `Agent`
subclass; the reference Mem-alpha agent registers itself the same way.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from tasks.errors import UnknownNameError

from .base import Agent, AgentOptionError, InstanceInfo, Session

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


def available() -> dict[str, str]:
    """Agent name -> "module:Class", built-ins first, then entry points."""
    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def make_agent(name: str, options: dict[str, str] | None = None) -> Agent:
    import importlib

    known = available()
    spec = known.get(name) or (name if ":" in name else None)  # a name, or "package.module:Class"
    if spec is None:
        raise UnknownNameError("agent", name, known)
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)(**(options or {}))


__all__ = ["Agent", "AgentOptionError", "InstanceInfo", "Session", "available", "make_agent"]
