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


class FileTemplateSet(TemplateSet):
    """The parts of a prompt as the blocks of one user-given jinja2 file (`{% block system %}...{% endblock %}`
    and so on); its digest is the file's own sha256, so `sha256sum FILE` checks a record."""

    def __init__(self, path: str | Path, parts: Sequence[str] = ("system", "user")):
        from tasks.errors import TaskError

        self.path, self.parts = Path(path), tuple(parts)
        try:
            raw = self.path.read_bytes()
            source = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TaskError(f"{self.path}: cannot read the template ({exc})") from exc
        try:
            self._template = _ENV.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TaskError(f"{self.path}, line {exc.lineno}: not a valid jinja2 template ({exc.message})") from exc
        missing = [p for p in self.parts if p not in self._template.blocks]
        if missing:
            needed = ", ".join(f"{{% block {p} %}}" for p in missing)
            raise TaskError(f"{self.path}: the template has no {needed} (it needs one block per part: {self.parts})")
        self.version = f"file:{self.path.name}"
        self.sources = {"file": source}
        self._sha256 = hashlib.sha256(raw).hexdigest()

    def render(self, part: str, **variables: Any) -> str:
        context = self._template.new_context(variables)
        try:
            return "".join(self._template.blocks[part](context)).strip()
        except jinja2.TemplateError as exc:
            from tasks.errors import TaskError

            raise TaskError(f"{self.path}, block {part!r}: {exc}") from exc

    def digest(self, *extra: str) -> str:
        if extra:
            return hashlib.sha256((self._sha256 + "".join(extra)).encode()).hexdigest()
        return self._sha256
