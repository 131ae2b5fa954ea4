"""`maxConcurrent`: how many requests of one capability may be in flight at once.

Prevents one capability from taking every connection and every worker slot
when its upstream slows down: a request over its capability's limit is
refused at once with 503 `E-CONCURRENCY-LIMIT` (a `deny`, with
`Retry-After`), before anything is sent, instead of queueing behind the
slow ones. A request holds its place from the moment its policy checks pass
until its answer has been passed on (a stream to its end).

Counted per capability name in this worker process (not per consumer, not
shared across `--workers` or runtimes): the count survives a reload, so
requests still in flight on the old policy count against the new limit.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Final

from aivault_ops.runtime.errors import ConcurrencyLimited

UNLIMITED: Final = contextlib.nullcontext()  # no `maxConcurrent`: nothing to hold


class _Place:
    """One request's place in its capability's count; given back on exit."""

    __slots__ = ("_capability", "_gate")

    def __init__(self, gate: ConcurrencyGate, capability: str) -> None:
        self._gate = gate
        self._capability = capability

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._gate.leave(self._capability)


class ConcurrencyGate:
    """Requests in flight per capability, in this process."""

    def __init__(self) -> None:
        self._in_flight: dict[str, int] = {}

    def enter(self, capability: str, limit: int | None) -> AbstractContextManager[None]:
        """A place for one more request of `capability` (exit it when the answer is
        passed on); `ConcurrencyLimited` when `limit` are in flight already."""
        if limit is None:
            return UNLIMITED
        count = self._in_flight.get(capability, 0)
        if count >= limit:
            raise ConcurrencyLimited(limit, capability)
        self._in_flight[capability] = count + 1
        return _Place(self, capability)

    def leave(self, capability: str) -> None:
        """Give one place of `capability` back."""
        count = self._in_flight[capability] - 1
        if count:
            self._in_flight[capability] = count
        else:
            del self._in_flight[capability]

    def in_flight(self, capability: str) -> int:
        """Requests of `capability` holding a place now."""
        return self._in_flight.get(capability, 0)
