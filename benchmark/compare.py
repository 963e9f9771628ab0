"""Where two recorded settings differ, named field by field: what a refused resume or re-score says."""

from __future__ import annotations

import json
from typing import Any

_SHOWN = 80  # characters of a value quoted in a message


def as_json(value: Any) -> Any:
    """The value as it reads back from a JSON file (tuples become lists, keys strings), for comparing a
    setting made now with one recorded before."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def differences(before: Any, now: Any, *, ignore: frozenset[str] = frozenset(), path: str = "") -> list[str]:
    """Every leaf where `before` and `now` differ, as "path: before -> now" (dotted paths; keys named in
    `ignore` are skipped at any depth)."""
    if isinstance(before, dict) and isinstance(now, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(now), key=str):
            if key in ignore:
                continue
            where = f"{path}.{key}" if path else str(key)
            if key not in before:
                out.append(f"{where}: not set before, {_shown(now[key])} now")
            elif key not in now:
                out.append(f"{where}: {_shown(before[key])} before, not set now")
            else:
                out += differences(before[key], now[key], ignore=ignore, path=where)
        return out
    if before == now:
        return []
    return [f"{path or 'value'}: {_shown(before)} before, {_shown(now)} now"]


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
