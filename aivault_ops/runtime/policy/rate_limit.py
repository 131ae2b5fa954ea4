"""`rateLimitPerMinute`: a token bucket per (consumer, capability).

Each bucket holds at most `limit` tokens (the capability's
`rateLimitPerMinute`) and refills continuously at `limit / 60` tokens per
second; a request takes one token or is refused with the seconds until one
is available (the server answers 429 with `Retry-After`). A fresh bucket is
full, so a burst of `limit` requests passes at once.

Stores sit behind `RateLimitStore`; the server awaits them as a
`RateLimiter`, so a store across the network (Redis, in
`rate_limit_redis.py`) drops in without blocking the event loop. `now` is
always passed in (seconds, any epoch; every process sharing a store must
use the same clock, `time.time()` in production), so decisions are
deterministic and tests need no real time. A `now` slightly behind a
bucket's time (workers racing to the lock) refills nothing and
leaves the bucket's time alone, so no interval is counted twice; a `now`
more than `CLOCK_STEP_BACK` seconds behind is a clock that was set back,
and restarts the bucket's time so refilling resumes.

- `InMemoryRateLimitStore`: one runtime process. Memory stays bounded: once
  the table reaches its sweep size, buckets that have refilled to full (idle
  ones, indistinguishable from a fresh bucket) are dropped, and the next
  sweep waits until the table has doubled.
- `SharedFileRateLimitStore`: several runtime worker processes on one host.
  A fixed-size table in one file of the state dir, mapped with `mmap`; each
  decision holds a POSIX byte-range lock (`fcntl.lockf`) on the few slots
  the key may live in, so workers never grant more than the bucket holds.
  Files and byte-range locks were chosen over a lock server or SQLite: no
  extra process, no dependency, and contention limited to one key's slots.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from aivault_ops.errors import AivaultError

RateKey = tuple[str, str]
SECONDS_PER_WINDOW: Final = 60.0
CLOCK_STEP_BACK: Final = 1.0


@dataclass(frozen=True)
class Decision:
    """Whether a request may proceed; when not, how long until a token is available."""

    allowed: bool
    retry_after_seconds: float = 0.0

    def retry_after_header(self) -> str:
        """`Retry-After` value: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after_seconds)))


@dataclass(frozen=True)
class Bucket:
    """A bucket's state: tokens left at time `updated`, for capacity `limit`."""

    tokens: float
    updated: float
    limit: int

    def level(self, now: float) -> float:
        """Tokens available at `now` (refilled, capped at `limit`)."""
        elapsed = max(0.0, now - self.updated)
        return min(float(self.limit), self.tokens + elapsed * self.limit / SECONDS_PER_WINDOW)


def take(bucket: Bucket | None, limit: int, now: float) -> tuple[Bucket, Decision]:
    """Take one token from `bucket` (None is a fresh, full bucket): new state and decision."""
    if limit < 1:
        raise ValueError("rate limit must be at least 1 per minute")
    level = float(limit) if bucket is None else min(float(limit), bucket.level(now))
    updated = now
    if bucket is not None and bucket.updated - CLOCK_STEP_BACK <= now < bucket.updated:
        updated = bucket.updated
    if level >= 1.0:
        return Bucket(level - 1.0, updated, limit), Decision(True)
    wait = (1.0 - level) * SECONDS_PER_WINDOW / limit
    return Bucket(level, updated, limit), Decision(False, wait)


class RateLimitStore(Protocol):
    """Where buckets live; `check` must be atomic per key."""

    def check(self, key: RateKey, limit: int, now: float) -> Decision:
        """Take one token from `key`'s bucket of capacity `limit` at time `now`."""
        ...


class RateLimiter(Protocol):
    """What the server awaits once per rate-limited request: a local store, or a shared
    one over the network (runtime/policy/rate_limit_redis.py) that must not block the loop."""

    async def check_async(self, key: RateKey, limit: int, now: float) -> Decision:
        """Take one token from `key`'s bucket (raise an `HttpError` when undecidable)."""
        ...

    async def aclose(self) -> None:
        """Release connections at shutdown."""
        ...


class _LocalAsync:
    """The `RateLimiter` face of a local store: its `check` is quick and never blocks."""

    def check(self, key: RateKey, limit: int, now: float) -> Decision:
        raise NotImplementedError

    async def check_async(self, key: RateKey, limit: int, now: float) -> Decision:
        """`check`, awaited."""
        return self.check(key, limit, now)

    async def aclose(self) -> None:
        """Nothing to release."""


class InMemoryRateLimitStore(_LocalAsync):
    """Buckets in a dict, for one process (thread-safe)."""

    def __init__(self, *, sweep_size: int = 1024) -> None:
        self._buckets: dict[RateKey, Bucket] = {}
        self._lock = threading.Lock()
        self._min_sweep = sweep_size
        self._sweep_at = sweep_size

    def check(self, key: RateKey, limit: int, now: float) -> Decision:
        """Take one token from `key`'s bucket."""
        with self._lock:
            bucket, decision = take(self._buckets.get(key), limit, now)
            self._buckets[key] = bucket
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
        return decision

    def _sweep(self, now: float) -> None:
        full = [key for key, b in self._buckets.items() if b.level(now) >= b.limit]
        for key in full:
            del self._buckets[key]
        self._sweep_at = max(self._min_sweep, 2 * len(self._buckets))

    def __len__(self) -> int:
        return len(self._buckets)


_MAGIC: Final = b"AVRL0001"
_HEADER: Final = struct.Struct("<8sII")
_HEADER_SIZE: Final = 64
_SLOT: Final = struct.Struct("<16sddI4x")
_EMPTY: Final = bytes(16)
PROBE: Final = 8


def key_digest(key: RateKey) -> bytes:
    """A 32-byte digest of the key: 16 bytes identify it, the rest choose its slots."""
    return hashlib.sha256("\0".join(key).encode("utf-8")).digest()


class SharedFileRateLimitStore(_LocalAsync):
    """Buckets in a fixed-size table in a file shared by the processes of one host.

    A key lives in one of `PROBE` consecutive slots chosen by its hash; the
    whole window is locked while deciding. A slot is reused when its bucket
    is idle (full again). When every slot of a window holds an active bucket
    of another key, the request is refused (fail closed) with a 1 s retry:
    size the table well above the number of (consumer, capability) pairs.
    Use one instance per process (POSIX locks belong to the process).
    """

    def __init__(self, path: Path, *, slots: int = 16384) -> None:
        if slots < PROBE:
            raise ValueError(f"the table needs at least {PROBE} slots")
        self.path = path
        self.slots = slots
        self._size = _HEADER_SIZE + slots * _SLOT.size
        self._thread_lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._initialize()
            self._map = mmap.mmap(self._fd, self._size)
        except BaseException:
            os.close(self._fd)
            raise

    def _initialize(self) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_EX, _HEADER_SIZE, 0)
        try:
            expected = _HEADER.pack(_MAGIC, self.slots, _SLOT.size)
            if os.fstat(self._fd).st_size == 0:
                os.ftruncate(self._fd, self._size)
                os.pwrite(self._fd, expected, 0)
            elif os.pread(self._fd, _HEADER.size, 0) != expected or (
                os.fstat(self._fd).st_size != self._size
            ):
                raise AivaultError(
                    f"{self.path}: rate-limit table has another layout",
                    hint="stop every runtime worker using this state dir and remove the file",
                )
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, _HEADER_SIZE, 0)

    def check(self, key: RateKey, limit: int, now: float) -> Decision:
        """Take one token from `key`'s bucket, atomically across processes."""
        digest = key_digest(key)
        first = int.from_bytes(digest[16:24], "big") % (self.slots - PROBE + 1)
        start, length = _HEADER_SIZE + first * _SLOT.size, PROBE * _SLOT.size
        with self._thread_lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, length, start)
            try:
                return self._check_window(digest[:16], start, limit, now)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, length, start)

    def _check_window(self, ident: bytes, start: int, limit: int, now: float) -> Decision:
        free: int | None = None
        for offset in range(start, start + PROBE * _SLOT.size, _SLOT.size):
            owner, tokens, updated, slot_limit = _SLOT.unpack_from(self._map, offset)
            if owner == ident:
                return self._take(offset, ident, Bucket(tokens, updated, slot_limit), limit, now)
            idle = owner == _EMPTY or Bucket(tokens, updated, slot_limit).level(now) >= slot_limit
            if free is None and idle:
                free = offset
        if free is None:
            return Decision(False, 1.0)
        return self._take(free, ident, None, limit, now)

    def _take(
        self, offset: int, ident: bytes, bucket: Bucket | None, limit: int, now: float
    ) -> Decision:
        state, decision = take(bucket, limit, now)
        _SLOT.pack_into(self._map, offset, ident, state.tokens, state.updated, state.limit)
        return decision

    def close(self) -> None:
        """Unmap and close the table file."""
        self._map.close()
        os.close(self._fd)
