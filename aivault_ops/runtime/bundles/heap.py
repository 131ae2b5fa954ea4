"""Hand the memory a bundle load freed back to the operating system.

A load allocates and frees tens of MiB: the bundle, the decoded
`policy.json`, every decrypted SOPS file. glibc keeps freed heap pages
mapped (and counted in the process's RSS) unless they sit at the top of the
heap; `malloc_trim(0)` returns every free page. It takes about a millisecond
and releases the GIL while it runs. On a C library without `malloc_trim`
(musl, macOS) this is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache


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
