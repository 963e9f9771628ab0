"""The 90/10 train/validation split of the Mem-alpha sources (seed 42, train capped at 100)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def train_validation(
    items: Sequence[T], *, seed: int = 42, ratio: float = 0.9, train_cap: int | None = 100
) -> dict[str, list[T]]:
    """Shuffle with `seed`, split at `ratio`, then sample the train part down to `train_cap`.

    As in the original, only the train side is capped; validation keeps everything it gets.
    Splitting happens on whole items, so the two sides never share an item.
    """
    order = list(items)
    random.Random(seed).shuffle(order)
    cut = round(len(order) * ratio)
    if len(order) > 1:
        cut = min(max(cut, 1), len(order) - 1)
    train, validation = order[:cut], order[cut:]
    if train_cap is not None and len(train) > train_cap:
        train = random.Random(seed + 1).sample(train, train_cap)
    return {"train": train, "validation": validation}


def partition_by_key(keys: Sequence[str], fractions: dict[str, float], *, salt: str) -> dict[str, list[int]]:
    """Assign each key to a named pool by a stable hash, so equal keys (duplicate texts) share a pool.

    Used to keep example pools disjoint between tasks and splits that draw from one source file.
    """
    import hashlib

    names = list(fractions)
    bounds, total = [], 0.0
    for name in names:
        total += fractions[name]
        bounds.append(total)
    out: dict[str, list[int]] = {n: [] for n in names}
    for i, key in enumerate(keys):
        h = int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "big") / 2**64 * total
        for name, bound in zip(names, bounds, strict=True):
            if h < bound:
                out[name].append(i)
                break
        else:
            out[names[-1]].append(i)
    return out
