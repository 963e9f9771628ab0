"""The 90/10 train/validation split of the Mem-alpha sources, with the train side capped at 100, drawn
as the original drew it.

The original (`process_data.py`) split each processed source with `random.seed(42)`,
`random.shuffle(instances)` and a cut at `int(n * 0.9)`, then sampled each source's train part down to
100 with pandas' `df.sample(n=100, random_state=42)`, which is numpy's
`RandomState(42).choice(n, 100, replace=False)`. Both steps are reproduced here draw for draw, with
`--seed` in place of 42. TREC-coarse and NLU were one source there (`ttl_train`: 200 TREC-coarse
instances, then 200 NLU instances), so they share one split and one cap: `merged_train_validation`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def train_validation(
    items: Sequence[T], *, seed: int = 42, ratio: float = 0.9, train_cap: int | None = 100
) -> dict[str, list[T]]:
    """Shuffle with `seed`, cut at `int(n * ratio)`, then sample the train part down to `train_cap`.

    As in the original, only the train side is capped; validation keeps everything it gets, and the
    sampled train part keeps the order of the draw. Splitting happens on whole items, so the two sides
    never share an item. Unlike the original, a source of two or more items keeps at least one on
    each side (unless `ratio` is 1: `lme_train` is train-only, as the original's `train_ratio=1.0`).
    """
    order = list(items)
    random.Random(seed).shuffle(order)
    cut = int(len(order) * ratio)
    if len(order) > 1 and ratio < 1:
        cut = min(max(cut, 1), len(order) - 1)
    return {"train": capped(order[:cut], train_cap, seed=seed), "validation": order[cut:]}


def capped(items: Sequence[T], cap: int | None, *, seed: int = 42) -> list[T]:
    """At most `cap` of `items`, drawn as `df.sample(n=cap, random_state=seed)` draws rows, in draw order."""
    if cap is None or len(items) <= cap:
        return list(items)
    import numpy as np

    return [items[i] for i in np.random.RandomState(seed).choice(len(items), cap, replace=False)]


def merged_train_validation(
    members: Sequence[str], member: str, per_member: int, *, seed: int = 42, train_cap: int | None = 100
) -> dict[str, list[int]]:
    """The slots (0..per_member-1) of `member` on each side of the split of one source merged from
    several: `per_member` slots per member, members in the order given, split and capped together.

    Whichever member is built, alone or with the others, it gets the same slots, and the members' train
    sides add up to `train_cap`. With the original's `ttl_train` (TREC-coarse then NLU, 200 each) and
    seed 42 that is 51 TREC-coarse and 49 NLU training instances, the paper's Table 7.
    """
    if member not in members:
        raise ValueError(f"{member!r} is not one of the merged sources {list(members)}")
    offset = list(members).index(member) * per_member
    sides = train_validation(range(per_member * len(members)), seed=seed, train_cap=train_cap)
    return {side: [i - offset for i in slots if offset <= i < offset + per_member] for side, slots in sides.items()}


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
