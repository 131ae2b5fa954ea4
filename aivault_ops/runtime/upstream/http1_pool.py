"""Keep-alive connections of the upstream client, per TLS context, in bulkheads.

Two limits, so one slow upstream never takes another's connections:

- **per host** (a bulkhead): at most `per_host` connections to one (host,
  port) are in use or being opened at once, each host with its own
  first-come-first-served queue. A host whose answers are slow fills only
  its own bulkhead; requests to every other host never wait behind it.
- **per pool** (the last resort): at most `limit` connections in all,
  counting those in use, those being opened and the idle ones. A checkout
  that has its host's permit takes a fresh idle connection to the same
  (host, port) if there is one (the most recently used), else a free slot;
  with none free it closes the oldest idle connection to another host and
  takes its slot, and only when every slot is in use does it wait.

Every wait (for the host's permit, then for a slot) ends by the request's
deadline or `queue_timeout_s`, whichever comes first, with `PoolBusy`
(`E-UPSTREAM-BUSY`): a request is refused rather than queued without end.
Idle connections are closed by a timer once `keepalive_s` has passed, when
the upstream closes them, or when they receive anything; none is reused
after `keepalive_s` idle. The pool keeps no per-request timer: one reaper
timer runs while anything is idle.

An mTLS credential has a pool of its own (its TLS context), so its client
certificate is presented on its own connections only, and its bulkheads are
its own. Such a pool tells its owner when it has no connection left
(`on_unused`), so a rotated certificate's pool, and the key in its context,
do not outlive their last connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from aivault_ops.runtime.upstream.http1 import Connection

Resolve = Callable[[str, int], Awaitable[list[tuple[str, int]]]]
Key = tuple[str, int]
DEFAULT_QUEUE_TIMEOUT_S: Final = 5.0


class PoolBusy(Exception):
    """No connection to the host came free within the wait for one."""


def busy(key: Key) -> PoolBusy:
    """`PoolBusy` naming the host (never a path, never a secret)."""
    return PoolBusy(f"no connection to {key[0]} came free in time; retry later")


def default_per_host(limit: int) -> int:
    """Half the pool: one host never holds more than half of the connections."""
    return max(1, limit // 2)


async def _handed_over(
    waiter: asyncio.Future[Connection | None],
    wait_until: float,
    key: Key,
    give_back: Callable[[Connection | None], None],
) -> Connection | None:
    """What a release hands `waiter` (a connection, or None for a permit or slot), by
    `wait_until`, else `PoolBusy`. Handed over just as the wait gave up (a timeout or a
    cancellation), it goes to `give_back` so that nothing handed over is lost."""
    try:
        async with asyncio.timeout_at(wait_until):
            return await waiter
    except BaseException as error:
        if waiter.done() and not waiter.cancelled():
            give_back(waiter.result())
        if isinstance(error, TimeoutError):
            raise busy(key) from None
        raise


@dataclass(slots=True)
class _Bulkhead:
    """One (host, port): connections in use or being opened, and who waits for one."""

    busy: int = 0
    waiters: deque[asyncio.Future[Connection | None]] = field(default_factory=deque)


class Pool:
    """Keep-alive connections for one TLS context: at most `per_host` in use per host,
    at most `limit` in use or idle in all."""

    def __init__(
        self,
        context: ssl.SSLContext,
        limit: int,
        keepalive_s: float,
        *,
        per_host: int | None = None,
        queue_timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S,
    ) -> None:
        self._context = context
        self._keepalive_s = keepalive_s
        self._per_host = per_host or default_per_host(limit)
        self._queue_timeout_s = queue_timeout_s
        self._limit = limit
        self._free = limit
        self._in_use = 0
        self._idle_count = 0
        self._bulkheads: dict[Key, _Bulkhead] = {}
        self._waiters: deque[tuple[asyncio.Future[Connection | None], Key]] = deque()
        self._idle: dict[Key, list[Connection]] = {}
        self._reaper: asyncio.TimerHandle | None = None
        self._closed = False
        self.on_unused: Callable[[Pool], None] | None = None

    def usage(self) -> tuple[int, int]:
        """(connections in use, idle connections)."""
        return self._in_use, self._idle_count

    def _tell_if_unused(self) -> None:
        """Call `on_unused` when no connection is in use, being opened or idle."""
        if self.on_unused is None or self._free < self._limit:
            return
        if not any(bulkhead.busy for bulkhead in self._bulkheads.values()):
            self.on_unused(self)

    async def checkout(
        self, host: str, port: int, resolve: Resolve, deadline: float
    ) -> tuple[Connection, bool]:
        """A fresh idle connection to (host, port), else a new one, by `deadline`; and
        whether it was reused. `PoolBusy` when none came free in time."""
        loop = asyncio.get_running_loop()
        key = (host, port)
        wait_until = min(deadline, loop.time() + self._queue_timeout_s)
        bulkhead = self._bulkheads.get(key)
        if bulkhead is None:
            bulkhead = self._bulkheads[key] = _Bulkhead()
        if bulkhead.busy < self._per_host:
            bulkhead.busy += 1
        else:
            handed = await self._wait(bulkhead, loop, wait_until, key)
            if handed is not None:
                self._in_use += 1
                return handed, True
        try:
            connection = self._take_idle(key, loop.time())
            if connection is None:
                connection = await self._slot(loop, key, wait_until)
        except BaseException:
            self._pass_permit(bulkhead)
            self._tell_if_unused()
            raise
        if connection is not None:
            self._in_use += 1
            return connection, True
        try:
            connection = await self._connect(host, port, resolve, deadline)
        except BaseException:
            self._free_slot()
            self._pass_permit(bulkhead)
            self._tell_if_unused()
            raise
        connection.key = key
        self._in_use += 1
        return connection, False

    async def _wait(
        self, bulkhead: _Bulkhead, loop: asyncio.AbstractEventLoop, wait_until: float, key: Key
    ) -> Connection | None:
        """Wait in the host's queue for its permit (None), or for a connection to it a
        release hands over with the permit. `PoolBusy` at `wait_until`."""
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        bulkhead.waiters.append(waiter)

        def give_back(handed: Connection | None) -> None:
            if handed is None:
                self._pass_permit(bulkhead)
            else:
                self._in_use += 1
                self.release(handed)

        return await _handed_over(waiter, wait_until, key, give_back)

    def _pass_permit(self, bulkhead: _Bulkhead) -> None:
        """Hand the host's permit to its first live waiter, or put it back."""
        while bulkhead.waiters:
            waiter = bulkhead.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        bulkhead.busy -= 1

    def _take_idle(self, key: Key, now: float) -> Connection | None:
        """The most recently pooled idle connection to `key` still fresh; stale or
        closed ones met on the way are closed and their slots freed."""
        idle = self._idle.get(key)
        while idle:
            connection = self._unpool(idle, len(idle) - 1)
            if not connection.closed and now - connection.idle_since < self._keepalive_s:
                return connection
            connection.close()
            self._free_slot()
        return None

    def _unpool(self, idle: list[Connection], index: int) -> Connection:
        connection = idle.pop(index)
        connection.on_idle_lost = None
        self._idle_count -= 1
        return connection

    async def _slot(
        self, loop: asyncio.AbstractEventLoop, key: Key, wait_until: float
    ) -> Connection | None:
        """Take a slot (None), or the idle connection to `key` a release hands over;
        the caller holds the host's permit already. `PoolBusy` at `wait_until`."""
        if self._free > 0:
            self._free -= 1
            return None
        if self._evict_oldest():
            return None
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        self._waiters.append((waiter, key))

        def give_back(handed: Connection | None) -> None:
            if handed is None:
                self._free_slot()
            else:
                self._pass_connection(handed)

        return await _handed_over(waiter, wait_until, key, give_back)

    def _evict_oldest(self) -> bool:
        """Close the idle connection that has waited longest; its slot is the caller's."""
        oldest: list[Connection] | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest[0].idle_since):
                oldest = idle
        if oldest is None:
            return False
        self._unpool(oldest, 0).close()
        return True

    def _free_slot(self) -> None:
        """Hand the slot to the first live waiter, or put it back."""
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    async def _connect(self, host: str, port: int, resolve: Resolve, deadline: float) -> Connection:
        loop = asyncio.get_running_loop()
        error: BaseException | None = None
        async with asyncio.timeout_at(deadline):
            for address, target_port in await resolve(host, port):
                try:
                    _, connection = await loop.create_connection(
                        lambda: Connection(loop), address, target_port,
                        ssl=self._context, server_hostname=host.strip("[]"),
                    )  # fmt: skip
                    return connection
                except OSError as failed:
                    error = failed
        raise error or OSError(f"{host} has no address")

    def release(self, connection: Connection) -> None:
        """Pool `connection` again if it may be reused, else close it. A connection
        kept goes with its permit to the host's first waiter, else to a waiter for a
        slot (as it is if that one wants the same host), else into the idle pool; a
        closed one's slot and permit go to the first waiters or back."""
        self._in_use -= 1
        connection.active = False
        bulkhead = self._bulkheads[connection.key]
        if not connection.reusable or self._closed:
            connection.close()
            self._free_slot()
            self._pass_permit(bulkhead)
            self._tell_if_unused()
            return
        while bulkhead.waiters:
            waiter = bulkhead.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        bulkhead.busy -= 1
        self._pass_connection(connection)

    def _pass_connection(self, connection: Connection) -> None:
        """A kept connection whose permit is given back already: to the first waiter for a
        slot (as it is if that one wants the same host, else closed), else idle."""
        if self._closed:
            connection.close()
            self._free_slot()
            return
        while self._waiters:
            slot_waiter, key = self._waiters.popleft()
            if slot_waiter.done():
                continue
            if key == connection.key:
                slot_waiter.set_result(connection)
            else:
                connection.close()
                slot_waiter.set_result(None)
            return
        self._keep_idle(connection)

    def _keep_idle(self, connection: Connection) -> None:
        loop = asyncio.get_running_loop()
        connection.idle_since = loop.time()
        connection.on_idle_lost = self._lost_idle
        self._idle.setdefault(connection.key, []).append(connection)
        self._idle_count += 1
        if self._reaper is None:
            self._reaper = loop.call_at(connection.idle_since + self._keepalive_s, self._reap)

    def _lost_idle(self, connection: Connection) -> None:
        """An idle connection closed (by the upstream, or for sending unasked bytes)."""
        idle = self._idle.get(connection.key, [])
        if connection in idle:
            self._unpool(idle, idle.index(connection))
            self._free_slot()
            self._tell_if_unused()

    def _reap(self) -> None:
        """Close every connection idle for `keepalive_s`; run again at the next expiry."""
        self._reaper = None
        loop = asyncio.get_running_loop()
        expired = loop.time() - self._keepalive_s
        next_expiry: float | None = None
        for idle in self._idle.values():
            while idle and idle[0].idle_since <= expired:
                self._unpool(idle, 0).close()
                self._free_slot()
            if idle and (next_expiry is None or idle[0].idle_since < next_expiry):
                next_expiry = idle[0].idle_since
        if next_expiry is not None:
            self._reaper = loop.call_at(next_expiry + self._keepalive_s, self._reap)
        self._tell_if_unused()

    async def aclose(self, grace_s: float = 2.0) -> None:
        """Close every idle connection and wait (at most `grace_s`) until they are
        closed; busy ones close when released."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle = [connection for pooled in self._idle.values() for connection in pooled]
        self._idle.clear()
        self._idle_count = 0
        for connection in idle:
            connection.on_idle_lost = None
            connection.close()
        if idle:
            await asyncio.wait([connection.lost for connection in idle], timeout=grace_s)
