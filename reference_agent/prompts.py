"""The memorising prompt: one fresh system + user pair per chunk, from versioned jinja2 templates.

The system message holds the role, the memorising instructions and the current memory (core in
full, the last `recent` semantic and episodic entries with their ids); in the qwen-agent format it
also holds the tool block. The user message holds the chunk and the response limit. In the qwen3
format the tools go to the chat template (``tools=``) instead: see `chat_tools`.

`MemorizePrompt.sha256` covers everything fixed the model sees (both templates, the qwen-agent tool
block template and the tool schemas), so a run records exactly which prompt it used.
"""

from __future__ import annotations

import copy
import json
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from benchmark.templating import TemplateSet

from .environment import TOOL_SCHEMAS, MemoryEnvironment
from .toolcalls import FORMATS, QWEN_AGENT_TOOLS_TEMPLATE, Format, render_qwen_agent_tool_block

TEMPLATE_VERSION = "v1"
TEMPLATES = Path(__file__).parent / "templates"
RECENT_ENTRIES = 5
RESPONSE_LIMIT = 2048


def max_new_tokens(response_limit: int) -> int:
    """The length the prompt asks for: 80% of the real limit, leaving some slack (as the original)."""
    return int(0.8 * response_limit)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown tool-call format {fmt!r}; use one of {', '.join(FORMATS)}")


def chat_tools(fmt: Format) -> list[dict[str, Any]] | None:
    """The `tools=` for the chat template: the schemas in the qwen3 format, None in qwen-agent."""
    _check_format(fmt)
    return copy.deepcopy(TOOL_SCHEMAS) if fmt == "qwen3" else None


class MemorizePrompt:
    """Renders the per-chunk messages for one template version."""

    def __init__(self, version: str = TEMPLATE_VERSION):
        self.version = version
        self._templates = TemplateSet(TEMPLATES, "memorize", version)
        self._tool_block = render_qwen_agent_tool_block(TOOL_SCHEMAS)

    @cached_property
    def sha256(self) -> str:
        return self._templates.digest(
            f"qwen-agent tools\n{QWEN_AGENT_TOOLS_TEMPLATE.read_text('utf-8')}\n",
            json.dumps(TOOL_SCHEMAS, sort_keys=True, ensure_ascii=False),
        )

    def build_messages(
        self,
        env: MemoryEnvironment,
        chunk: str,
        *,
        fmt: Format = "qwen3",
        recent: int = RECENT_ENTRIES,
        response_limit: int = RESPONSE_LIMIT,
    ) -> list[dict[str, str]]:
        _check_format(fmt)
        semantic, semantic_total = env.recent("semantic", recent)
        episodic, episodic_total = env.recent("episodic", recent)
        system = self._templates.render(
            "system",
            core=env.core,
            core_limit=env.core_limit,
            semantic=semantic,
            semantic_total=semantic_total,
            episodic=episodic,
            episodic_total=episodic_total,
            tool_block=self._tool_block if fmt == "qwen-agent" else "",
        )
        user = self._templates.render("user", chunk=chunk, max_new_tokens=max_new_tokens(response_limit))
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@cache
def memorize_prompt(version: str = TEMPLATE_VERSION) -> MemorizePrompt:
    return MemorizePrompt(version)


def build_messages(
    env: MemoryEnvironment,
    chunk: str,
    *,
    fmt: Format = "qwen3",
    recent: int = RECENT_ENTRIES,
    response_limit: int = RESPONSE_LIMIT,
) -> list[dict[str, str]]:
    """The system and user messages for memorising `chunk` into `env` (current template version)."""
    return memorize_prompt().build_messages(env, chunk, fmt=fmt, recent=recent, response_limit=response_limit)
