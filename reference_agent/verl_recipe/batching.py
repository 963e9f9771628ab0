"""Scoring rollouts together that finish together.

verl hands a reward worker one rollout (session) at a time, concurrently. `RolloutBatcher` collects
the rollouts that arrive within `window_s` of the first one (or until `max_rollouts`) and scores
them in one call, in a thread, so the reader sees one batch for all of them: equal prompts are
answered once and the server stays busy. The sync trainer waits for every rollout of a step
anyway, so the wait costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class RolloutBatcher(Generic[T, R]):
    """`await submit(x)` returns `score([..., x, ...])[i]` for the batch that `x` joined."""

    def __init__(self, score: Callable[[Sequence[T]], Sequence[R]], *, window_s: float, max_rollouts: int):
        if window_s < 0 or max_rollouts < 1:
            raise ValueError(f"need window_s >= 0 and max_rollouts >= 1, got {window_s} and {max_rollouts}")
        self.score = score
        self.window_s = window_s
        self.max_rollouts = max_rollouts
        self.batch_sizes: list[int] = []  # of every batch scored, for logs and tests
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_rollouts:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            results = await asyncio.to_thread(self.score, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"scored {len(results)} results for {len(batch)} rollouts")
        except Exception as exc:  # a bug, not a reader failure (those score 0): every waiter sees it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
