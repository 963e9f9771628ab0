"""The content judge of reward r4: is one memory write a valid entry for its memory type?

One prompt per memory type (our own wording, in versioned jinja2 templates): core is a compact
summary paragraph, semantic a self-contained piece of knowledge, episodic an event with its time.
The judge ends its reply with ``Verdict: valid`` or ``Verdict: invalid``; a reply without a verdict
counts as invalid, as the original counted anything but an explicit VALID.
"""

from __future__ import annotations

import re
from functools import cache, cached_property
from pathlib import Path

from benchmark.metrics import strip_think
from benchmark.templating import TemplateSet

TEMPLATE_VERSION = "v1"
TEMPLATES = Path(__file__).parent / "templates"
_VERDICT = re.compile(r"verdict\s*:\W*(valid|invalid)\b", re.IGNORECASE)


class ContentJudgePrompt:
    """Renders the judge conversation for one memory write."""

    def __init__(self, version: str = TEMPLATE_VERSION):
        self.version = version
        self._templates = TemplateSet(TEMPLATES, "content_judge", version)

    @cached_property
    def sha256(self) -> str:
        return self._templates.digest()

    def messages(self, memory_type: str, content: str) -> tuple[tuple[str, str], ...]:
        """(role, content) pairs for judging `content` as a `memory_type` entry (core/semantic/episodic)."""
        if memory_type not in ("core", "semantic", "episodic"):
            raise ValueError(f"no judge prompt for memory type {memory_type!r}")
        system = self._templates.render("system", memory_type=memory_type)
        user = self._templates.render("user", memory_type=memory_type, content=content)
        return (("system", system), ("user", user))


@cache
def content_judge_prompt(version: str = TEMPLATE_VERSION) -> ContentJudgePrompt:
    return ContentJudgePrompt(version)


def parse_content_verdict(reply: str) -> float:
    """1.0 if the judge's last verdict line (after any think block) says valid, else 0.0."""
    verdicts = _VERDICT.findall(strip_think(reply))
    return float(bool(verdicts) and verdicts[-1].lower() == "valid")
