"""The memorising prompt: one fresh system + user pair per chunk, from versioned jinja2 templates.

The system message holds the role, the memorising instructions and the current memory (core in
full, the last `recent` semantic and episodic entries with their ids); in the qwen-agent format the
qwen-agent package appends its tool block to it, as in the original. The user message holds the
chunk and the response limit. In the qwen3 format the tools go to the chat template (``tools=``)
instead: see `chat_tools`.

The wording is ours (`templates/memorize_*_v1.jinja`). A user holding the original strings gives
them as a prompt file (`MemorizePrompt(prompt_file=...)`, the agent's `prompt_file` option): one
jinja2 file with a `system` and a `user` block, which get the variables listed in
`MemorizePrompt.build_messages`.

`MemorizePrompt.sha256_for(fmt)` covers everything fixed the model sees (both templates or the
prompt file, the tool schemas, and in the qwen-agent format the tool block the package renders), so
a run records exactly which prompt it used.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from benchmark.agents.prompt_file import PromptFile
from benchmark.templating import TemplateSet

from .environment import TOOL_SCHEMAS, MemoryEnvironment
from .toolcalls import FORMATS, Format, qwen_agent_messages, qwen_agent_version

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
    """Renders the per-chunk messages: our templates at one version, or the user's prompt file.

    Our templates are stripped of surrounding whitespace when rendered; a prompt file's blocks are
    sent exactly as written."""

    def __init__(self, version: str = TEMPLATE_VERSION, prompt_file: str | Path | None = None):
        self.prompt_file = PromptFile(prompt_file, ("system", "user")) if prompt_file else None
        self.version = "file" if self.prompt_file else version
        self._templates: TemplateSet | PromptFile = self.prompt_file or TemplateSet(TEMPLATES, "memorize", version)
        self._sha256: dict[str, str] = {}

    @property
    def sha256(self) -> str:
        """The hash of the prompt in the default (qwen3) format."""
        return self.sha256_for("qwen3")

    def sha256_for(self, fmt: Format) -> str:
        """sha256 over the templates, the tool schemas and, in the qwen-agent format, the tool block as
        the installed qwen-agent renders it (with its version)."""
        _check_format(fmt)
        if fmt not in self._sha256:
            extra = [json.dumps(TOOL_SCHEMAS, sort_keys=True, ensure_ascii=False)]
            if fmt == "qwen-agent":
                [system] = qwen_agent_messages([{"role": "system", "content": ""}], TOOL_SCHEMAS)
                extra.append(f"qwen-agent {qwen_agent_version()}\n{system['content']}")
            self._sha256[fmt] = self._templates.digest(*extra)
        return self._sha256[fmt]

    def build_messages(
        self,
        env: MemoryEnvironment,
        chunk: str,
        *,
        fmt: Format = "qwen3",
        recent: int = RECENT_ENTRIES,
        response_limit: int = RESPONSE_LIMIT,
    ) -> list[dict[str, str]]:
        """The system message gets `core`, `core_limit`, `semantic` and `episodic` (the entries shown,
        each with `id`, `content` and `timestamp`), `semantic_total` and `episodic_total` (how many
        there are); the user message gets `chunk` and `max_new_tokens`."""
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
        )
        user = self._templates.render("user", chunk=chunk, max_new_tokens=max_new_tokens(response_limit))
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return qwen_agent_messages(messages, TOOL_SCHEMAS) if fmt == "qwen-agent" else messages


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
