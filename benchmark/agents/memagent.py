"""`memagent`: MemAgent's memory loop (Yu et al., arXiv 2507.02259): at each chunk the model reads
the task, its memory and the chunk, and its whole reply overwrites the memory. The reply limit
(`memory_tokens`, 1024 as MemAgent trained and the paper's authors ran it) keeps the memory at a
fixed size. The final memory is the core.

Defaults follow how Mem-α's authors ran the released checkpoints as a baseline: the model
`BytedTsinghua-SIA/RL-MemoryAgent-14B` (or -7B), temperature 0.1, top_p 0.95, the task's own chunks
as the sections, and a query-agnostic task (not the question). The prompt wording is ours; to run a
checkpoint under its own prompt, put the original strings in a prompt file (`prompt_file`, see
docs/agents.md). A reply with no text left once its thinking is removed keeps the previous memory
(MemAgent would store the empty reply).
"""

from __future__ import annotations

from ..readers import ReaderResponse
from .recurrent import RecurrentAgent


class MemAgentAgent(RecurrentAgent):
    """MemAgent: each reply rewrites a memory of fixed size; the final memory is the core."""

    name = "memagent"
    default_model = "BytedTsinghua-SIA/RL-MemoryAgent-14B"
    default_template = "memagent_v1.jinja"
    default_memory_tokens = 1024
    default_temperature = 0.1
    default_top_p = 0.95

    def next_memory(self, response: ReaderResponse) -> str | None:
        return response.text or None
