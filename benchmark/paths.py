"""Where memalpha-bench keeps its caches: `$MEMALPHA_CACHE`, else `$XDG_CACHE_HOME/memalpha-bench`,
else `~/.cache/memalpha-bench`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    if os.environ.get("MEMALPHA_CACHE"):
        return Path(os.environ["MEMALPHA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "memalpha-bench"
