"""The reward workers' reader and judge: one Ray actor per training job, on the head node.

verl runs `reward.num_workers` reward workers, spread over the nodes, and sends each finished rollout
to one of them at random. If every worker talked to the reader server itself, each would need its
own response cache (a SQLite file in WAL mode cannot be shared over a network file system) and the
same prompt, asked by rollouts scored on different workers at the same time, would be answered
once per worker. So every worker sends its reader and judge requests to this one actor instead. It
holds the response cache (a file on the head node's own disk, `memalpha.cache`) and answers each
distinct request once (`SingleFlightReader`), however the batches that ask for it overlap in time.
The workers keep the rest of the reward (retrieval, prompts, metrics) to themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmark.readers.base import OnResult, Reader, ReaderError, ReaderRequest, ReaderResponse

from .settings import RecipeSettings

SERVICE_NAME = "memalpha_reader_service"
HEAD_NODE = "node:__internal_head__"  # Ray's resource of the head node, where the trainer runs
MAX_CALLS = 64  # reward batches served at the same time (each call is a batch of many requests)
ROLES = ("reader", "judge")


class ReaderService:
    """The actor: the reader and the judge of the recipe's settings, behind the cache and single-flight."""

    def __init__(self, settings: RecipeSettings):
        self.readers = dict(zip(ROLES, settings.readers(), strict=True))

    def describe(self, role: str) -> dict:
        return self.readers[role].describe()

    def generate(
        self, role: str, requests: Sequence[ReaderRequest]
    ) -> tuple[list[tuple[int, ReaderResponse]], str | None]:
        """The answers that came back (index, response) and the failure, if there was one."""
        answered: list[tuple[int, ReaderResponse]] = []
        try:
            self.readers[role].generate(requests, on_result=lambda i, response: answered.append((i, response)))
        except ReaderError as exc:
            return answered, str(exc)
        return answered, None

    def stats(self) -> dict[str, dict[str, int]]:
        """Per role: distinct requests sent on (`sent`) and requests that joined one under way (`joined`)."""
        return {role: {"sent": r.sent, "joined": r.joined} for role, r in self.readers.items()}


class RemoteReader:
    """The Reader protocol over the service: what each worker's reward scorer calls."""

    def __init__(self, service: Any, role: str):
        self.service = service
        self.role = role
        self._description: dict | None = None

    def describe(self) -> dict:
        """Asked once, when first needed: scoring runs in a thread, so the wait blocks no event loop."""
        import ray

        if self._description is None:
            self._description = ray.get(self.service.describe.remote(self.role))
        return self._description

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        import ray

        answered, error = ray.get(self.service.generate.remote(self.role, list(requests)))
        results: list[ReaderResponse | None] = [None] * len(requests)
        for i, response in answered:
            results[i] = response
            if on_result is not None:
                on_result(i, response)
        if error is not None:
            raise ReaderError(error)
        return [r for r in results if r is not None]


def service_handle(settings: RecipeSettings) -> Any:
    """The job's reader service, started on the head node by whichever worker asks first."""
    import ray

    actor = ray.remote(ReaderService).options(
        name=SERVICE_NAME,
        get_if_exists=True,
        num_cpus=0,
        resources={HEAD_NODE: 0.001},
        max_concurrency=MAX_CALLS,
    )
    return actor.remote(settings)


def worker_readers(settings: RecipeSettings) -> tuple[Reader, Reader]:
    """(reader, judge) for a reward worker: inside a Ray job (verl's reward workers) both served by the
    job's reader service; outside Ray (a test, a script) this process's own."""
    import ray

    if not ray.is_initialized():
        return settings.readers()
    service = service_handle(settings)
    return RemoteReader(service, "reader"), RemoteReader(service, "judge")
