"""Versioned prompt templates: a set of jinja2 files `<stem>_<part>_<version>.jinja` and their sha256.

Every prompt a result depends on (the reader prompt, the memorising prompt, the content judge) is
rendered from such a set, and its hash goes into the records, so a score always names its prompts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


class TemplateSet:
    """The parts (e.g. system, user) of one prompt at one version."""

    def __init__(self, directory: Path, stem: str, version: str, parts: Sequence[str] = ("system", "user")):
        self.version, self.parts = version, tuple(parts)
        self.sources = {p: (directory / f"{stem}_{p}_{version}.jinja").read_text("utf-8") for p in self.parts}
        self._templates = {p: _ENV.from_string(src) for p, src in self.sources.items()}

    def render(self, part: str, **variables: Any) -> str:
        return self._templates[part].render(**variables).strip()

    def digest(self, *extra: str) -> str:
        """sha256 over every part (and any `extra` text the prompt also depends on)."""
        h = hashlib.sha256()
        for part in self.parts:
            h.update(f"{part}\n{self.sources[part]}\n".encode())
        for text in extra:
            h.update(text.encode())
        return h.hexdigest()
