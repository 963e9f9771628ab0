"""A prompt held in one jinja2 file, one named block per message: `{% block system %}…{% endblock %}`,
`{% block user %}…{% endblock %}`.

The agents that take a `prompt_file` option read it with this class, and so do the prompts the
package ships for them: a user holding the original strings of a released checkpoint puts them in
such a file and runs the checkpoint under its own prompt. A block is sent exactly as written
between its two tags (newlines included), with the agent's variables filled in; a variable the
agent does not provide is an error naming the file. The file's sha256 goes into the run's config.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from .base import AgentOptionError

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


class PromptFile:
    """The message blocks of one prompt file. `required` blocks must be there; `optional` may be;
    any other block is an error (a misspelt name would otherwise be ignored)."""

    def __init__(self, path: str | Path, required: Sequence[str], optional: Sequence[str] = ()):
        self.path = Path(path)
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise AgentOptionError(f"prompt file {self.path}: cannot read it ({exc.strerror or exc})") from None
        self.sha256 = hashlib.sha256(raw).hexdigest()
        try:
            self.source = raw.decode("utf-8")
            self._template = _ENV.from_string(self.source)
        except UnicodeDecodeError as exc:
            raise AgentOptionError(f"prompt file {self.path}: not UTF-8 text ({exc})") from None
        except jinja2.TemplateSyntaxError as exc:
            raise AgentOptionError(f"prompt file {self.path}, line {exc.lineno}: {exc.message}") from None
        blocks = set(self._template.blocks)
        missing = [b for b in required if b not in blocks]
        unknown = sorted(blocks - set(required) - set(optional))
        if missing or unknown:
            allowed = ", ".join([*required, *(f"{o} (optional)" for o in optional)])
            problem = f"no block {', '.join(missing)}" if missing else f"unknown block {', '.join(unknown)}"
            raise AgentOptionError(f"prompt file {self.path}: {problem}; its blocks are {allowed}")
        self.parts = tuple(b for b in (*required, *optional) if b in blocks)

    def has(self, part: str) -> bool:
        return part in self.parts

    def render(self, part: str, **variables: Any) -> str:
        """The block `part` with `variables` filled in, exactly as written otherwise."""
        block = self._template.blocks[part]
        try:
            return "".join(block(self._template.new_context(variables)))
        except jinja2.UndefinedError as exc:
            given = ", ".join(sorted(variables))
            raise AgentOptionError(
                f"prompt file {self.path}, block {part}: {exc.message} (it may use {given})"
            ) from None

    def digest(self, *extra: str) -> str:
        """sha256 over the file and any `extra` text the prompt also depends on."""
        h = hashlib.sha256(self.source.encode("utf-8"))
        for text in extra:
            h.update(text.encode("utf-8"))
        return h.hexdigest()
