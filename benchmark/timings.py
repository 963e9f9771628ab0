"""Where a scoring run's time went: wall and CPU seconds per phase, for report.md.

Phases may nest: time spent in an inner phase (prompts built while the reader phase runs, a window at a
time) counts for the inner phase only, so the phases add up to the run.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

PHASES = ("load", "retrieval and prompts", "reader", "judge", "metrics")


@dataclass
class Phase:
    wall: float = 0.0
    cpu: float = 0.0


class Timings:
    """Seconds per phase (`PHASES` first, in that order, then any other phase by first use)."""

    def __init__(self) -> None:
        self.phases: dict[str, Phase] = {name: Phase() for name in PHASES}
        self._open: list[list[float]] = []  # per open phase: wall and CPU time spent in its inner phases

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        self._open.append([0.0, 0.0])
        try:
            yield
        finally:
            inner_wall, inner_cpu = self._open.pop()
            spent_wall, spent_cpu = time.perf_counter() - wall, time.process_time() - cpu
            phase = self.phases.setdefault(name, Phase())
            phase.wall += spent_wall - inner_wall
            phase.cpu += spent_cpu - inner_cpu
            if self._open:
                self._open[-1][0] += spent_wall
                self._open[-1][1] += spent_cpu

    def rows(self) -> list[tuple[str, float, float]]:
        """(phase, wall seconds, CPU seconds) for every phase, and the total."""
        out = [(name, p.wall, p.cpu) for name, p in self.phases.items()]
        out.append(("total", sum(p.wall for p in self.phases.values()), sum(p.cpu for p in self.phases.values())))
        return out


def peak_memory_bytes() -> int:
    """The process's peak resident memory so far: Linux's VmHWM (getrusage's figure there also holds the
    peak of the process that started this one, kept across exec), else getrusage (bytes on macOS)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
