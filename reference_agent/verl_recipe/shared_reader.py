"""One answer per distinct request, however many reward batches ask for it at the same time.

A response cache answers a prompt asked before; it cannot help two batches that ask the same prompt
while neither has its answer yet. In training that is common: the rollouts of one instance finish
at different moments, land in different reward batches that are scored concurrently, and rollouts
that end with equal memories ask the reader identical questions. `SingleFlightReader` sends such a
request once and hands the answer to every caller waiting for it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

from benchmark.cache import ResponseCache
from benchmark.readers.base import OnResult, Reader, ReaderError, ReaderRequest, ReaderResponse


class SingleFlightReader:
    """A Reader whose concurrent `generate` calls (from any thread) share identical requests.

    Requests are identical when their response-cache keys are (model, messages, sampling settings,
    tools). Counters: `sent`, distinct requests passed to the inner reader; `joined`, requests that
    waited for an identical one already under way instead.
    """

    def __init__(self, reader: Reader):
        self.reader = reader
        self.sent = 0
        self.joined = 0
        self._lock = threading.Lock()
        self._in_flight: dict[str, Future[ReaderResponse]] = {}

    def describe(self) -> dict:
        return self.reader.describe()

    def generate(self, requests: Sequence[ReaderRequest], on_result: OnResult | None = None) -> list[ReaderResponse]:
        model = self.reader.describe()
        indices: dict[str, list[int]] = {}  # key -> the requests of this call it answers
        for i, request in enumerate(requests):
            indices.setdefault(ResponseCache.key(model, request), []).append(i)
        own: dict[str, Future[ReaderResponse]] = {}
        joined: dict[str, Future[ReaderResponse]] = {}
        with self._lock:
            for key in indices:
                running = self._in_flight.get(key)
                if running is None:
                    own[key] = self._in_flight[key] = Future()
                else:
                    joined[key] = running
            self.sent += len(own)
            self.joined += len(joined)
        results: list[ReaderResponse | None] = [None] * len(requests)

        def deliver(key: str, response: ReaderResponse) -> None:
            for i in indices[key]:
                results[i] = response
                if on_result is not None:
                    on_result(i, response)

        own_keys = list(own)

        def store(j: int, response: ReaderResponse) -> None:
            key = own_keys[j]
            with self._lock:
                self._in_flight.pop(key, None)
            own[key].set_result(response)
            deliver(key, response)

        error: BaseException | None = None
        try:
            if own_keys:
                self.reader.generate([requests[indices[k][0]] for k in own_keys], on_result=store)
        except BaseException as exc:  # re-raised below, once every waiter has been released
            error = exc
        finally:
            with self._lock:
                for key, future in own.items():
                    if not future.done():
                        self._in_flight.pop(key, None)
                        future.set_exception(ReaderError(f"the request was not answered: {error}"))
        for key, future in joined.items():
            try:
                deliver(key, future.result())
            except ReaderError as exc:
                error = error or exc
        if error is not None:
            raise error
        answered = [r for r in results if r is not None]
        if len(answered) != len(requests):
            raise ReaderError(f"reader {model} returned without reporting every answer through on_result")
        return answered
