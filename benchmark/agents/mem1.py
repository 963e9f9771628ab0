"""`mem1`: MEM1's internal-state agent (Zhou et al., arXiv 2506.15841): at each chunk the model
consolidates its previous internal state and the new chunk into a new state, written inside
`<think>…</think>`; everything else is dropped. The final state is the core.

Defaults follow how Mem-α's authors ran the released checkpoint as a baseline: the model
`Mem-Lab/Qwen2.5-7B-RL-RAG-Q2-EM-Release`, 1024 reply tokens, temperature 0.01, top_p 0.95, the
first `<think>` block of the reply as the new state (a reply without one keeps the previous state).
One difference: the original put the previous state at the start of the assistant's reply for
the model to continue (a completions-API prefill); the readers here send chat messages, so the
state goes into the user message instead (the prompt file decides where).

Own option: `state_tag` (think), the tag around the state. With a Qwen3 model whose server splits
out `<think>` as reasoning, or whose chat template pre-fills it, use another tag (e.g. `state`).
The prompt gets it as `tag`.
"""

from __future__ import annotations

import re
from typing import Any

from ..readers import ReaderResponse
from .base import AgentOption, AgentOptionError, OptionReader
from .recurrent import RecurrentAgent


class Mem1Agent(RecurrentAgent):
    """MEM1: each step folds the previous internal state and the chunk into a new state; the final
    state is the core."""

    name = "mem1"
    default_model = "Mem-Lab/Qwen2.5-7B-RL-RAG-Q2-EM-Release"
    default_template = "mem1_v1.jinja"
    default_memory_tokens = 1024
    default_temperature = 0.01
    default_top_p = 0.95
    own_option_docs = (
        AgentOption(
            "state_tag", "think", "the tag around the state (another one for a Qwen3 server that splits out <think>)"
        ),
    )

    def _own_options(self, opts: OptionReader) -> None:
        self.tag = opts.get("state_tag") or "think"
        if not re.fullmatch(r"[A-Za-z][\w-]*", self.tag):
            raise AgentOptionError(f"agent {self.name}: option state_tag={self.tag!r} must be a plain tag name")
        self._state = re.compile(rf"<{re.escape(self.tag)}>(.*?)</{re.escape(self.tag)}>", re.S)

    def own_settings(self) -> dict[str, Any]:
        return {"tag": self.tag}

    def next_memory(self, response: ReaderResponse) -> str | None:
        """The first complete `<tag>…</tag>` of the raw reply (the raw text: `<think>` is the state here)."""
        found = self._state.search(response.raw_text)
        return found.group(1).strip() if found else None
