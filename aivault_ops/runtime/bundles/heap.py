"""Hand the memory a bundle load or a burst freed back to the operating system.

A load allocates and frees tens of MiB: the bundle, the decoded
`policy.json`, every decrypted SOPS file. A burst of connections does too:
buffers, TLS state, the upstream connections it opened (closed once idle
past the keep-alive). glibc keeps freed heap pages mapped (and counted in
the process's RSS) unless they sit at the top of the heap; `malloc_trim(0)`
returns every free page. It takes well under a millisecond on a runtime's
heap and releases the GIL while it runs. On a C library without
`malloc_trim` (musl, macOS) this is a no-op.

The bundle watchers trim after every load, and `PeriodicTrim` from their
poll loops at most every `TRIM_EVERY_S`: a 20 s burst of 256 connections
left RSS 8.5 MB up, 6 MB of which a trim returned (benchmarks/soak.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import Final

TRIM_EVERY_S: Final = 10.0


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes

    try:
        libc = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no dynamic loader
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


def release_free_memory() -> bool:
    """Return freed heap pages to the OS; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class PeriodicTrim:
    """`release_free_memory` when `tick` is called at least `every_s` after the last trim."""

    def __init__(
        self, every_s: float = TRIM_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last = clock()

    def tick(self) -> bool:
        """Trim if due; True when it trimmed."""
        now = self._clock()
        if now - self._last < self._every_s:
            return False
        self._last = now
        return release_free_memory()
