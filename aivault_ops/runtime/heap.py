"""Keep the runtime's heap from creeping, and hand freed memory back to the OS.

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

Trimming cannot undo fragmentation, and glibc's own tuning causes some.
`pin_allocator` sets three of its parameters at start (`mallopt(3)`):

- **The mmap threshold, fixed at 64 KiB.** On its own, glibc raises the
  size above which a block gets its own `mmap` (128 KiB) to the size of
  every larger mmapped block freed, up to 32 MiB. A bundle load frees
  blocks of a few MiB, an upstream TLS connection frees a 256 KiB read
  buffer when it closes; after that, every block below the raised
  threshold comes from the heap, in between long-lived small objects, and
  the heap grows in steps it can never give back (0.9 MB in eight minutes
  of the soak). Fixed, that tuning is off.
- **The trim threshold, fixed at its 128 KiB default** (the same tuning
  raises it too).
- **No top pad** (glibc adds 128 KiB to every heap it makes or grows).
  Each helper thread (the bundle watcher's inotify reader, the reloader,
  audit maintenance) gets an arena of its own, and `malloc_trim` never
  shrinks the top of such an arena. The inotify reader asks for a 64 KiB
  buffer per read and shrinks it to the bytes read; carved from the top of
  a 132 KiB arena each time, a little further along while the last buffer
  is still queued, it left that arena's pages resident one after another:
  about 16 KiB a minute in the soak, 204 KiB after 30 minutes. Without the pad
  the arena has no room for 64 KiB, and with the threshold at 64 KiB the
  buffer gets its own mapping, returned when it is freed. Publishing 400
  bundles one after another, the arena stayed at 8 KiB (44 KiB with
  glibc's pad and threshold); 900 bundles at 20 a second: 8 KiB, and
  104–116 KiB with either setting alone.

An operator's own setting of any of them (`MALLOC_MMAP_THRESHOLD_`,
`MALLOC_TRIM_THRESHOLD_`, `MALLOC_TOP_PAD_`, or its `glibc.malloc.*`
tunable in `GLIBC_TUNABLES`) wins over that one. Tried in soaks and not
set: `MALLOC_ARENA_MAX=1` (every thread in the main heap: RSS stepped up
about 0.45 MB early in both runs, slopes +0.0089 and +0.0306 MB/min, and
fewer requests a second, about 4,400 against 4,900).

**No per-thread cache.** glibc keeps up to seven freed blocks of each size
up to 1 KiB in a cache per thread (tcache), whichever arena they came
from; to the arena they stay in use, and nothing but the thread's end
empties the cache. A helper thread that lives as long as the runtime
(audit maintenance, the reloader) keeps those blocks, and the pages under
them, for good: a thread that frees seven blocks of each size keeps about
230 KiB in use while it lives, none with the cache off. In the soak, the
bytes in use in the audit-maintenance thread's arena grew from 6 to about
95 KiB over the first 15 minutes and the RSS floor rose about 0.07 MB
before it settled (+0.0061 MB/min over 12 minutes); with the cache off it
was flat from the second minute on (−0.0019 MB/min) and about 0.3 MB
lower. The cache's size can only be set before the process starts
(`GLIBC_TUNABLES=glibc.malloc.tcache_count=0`), so `serve`, run from the
command line, replaces itself once with the tunable added
(`restart_without_tcache`: `exec`, so the same pid, arguments and the
descriptors it was started with). An operator's own
`glibc.malloc.tcache_count` (7 is glibc's default) keeps the process as
started.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Final

TRIM_EVERY_S: Final = 10.0
TCACHE_TUNABLE: Final = "glibc.malloc.tcache_count"
# Set in the restarted process: a C library that drops the tunable (a set-user-ID
# start) must not make it restart again and again.
RESTARTED_MARK: Final = "AIVAULT_OPS_TCACHE_RESTARTED"


@dataclass(frozen=True)
class AllocatorSetting:
    """One `mallopt(3)` parameter the runtime sets, and how an operator sets it instead."""

    tunable: str  # glibc.malloc.<tunable> in GLIBC_TUNABLES
    parameter: int  # M_* from malloc.h
    value: int
    variable: str  # the environment variable

    def set_by_operator(self, environ: Mapping[str, str]) -> bool:
        """Whether the environment sets this parameter itself."""
        tunables = environ.get("GLIBC_TUNABLES", "")
        return self.variable in environ or f"glibc.malloc.{self.tunable}=" in tunables


ALLOCATOR_SETTINGS: Final = (
    AllocatorSetting("mmap_threshold", -3, 64 * 1024, "MALLOC_MMAP_THRESHOLD_"),
    AllocatorSetting("trim_threshold", -1, 128 * 1024, "MALLOC_TRIM_THRESHOLD_"),
    AllocatorSetting("top_pad", -2, 0, "MALLOC_TOP_PAD_"),
)


@cache
def _libc_function(name: str) -> Callable[..., int] | None:
    import ctypes

    try:
        libc = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no dynamic loader
        return None
    function: Callable[..., int] | None = getattr(libc, name, None)
    return function


def pin_allocator(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Set glibc's malloc parameters (see the module docstring) but those the operator
    set; the tunables' names of those set. Nothing where the C library has no `mallopt`.
    Process-wide: call once, before any thread starts and before forking workers."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return ()
    return tuple(
        setting.tunable
        for setting in ALLOCATOR_SETTINGS
        if not setting.set_by_operator(environ) and mallopt(setting.parameter, setting.value) == 1
    )


def tunables_without_tcache(environ: Mapping[str, str]) -> str | None:
    """`GLIBC_TUNABLES` with the per-thread cache off and the operator's other tunables
    kept; None when the operator sized the cache or this process is the restarted one."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    if RESTARTED_MARK in environ or f"{TCACHE_TUNABLE}=" in tunables:
        return None
    return ":".join(filter(None, (tunables, f"{TCACHE_TUNABLE}=0")))


def restart_without_tcache(environ: Mapping[str, str]) -> None:
    """Replace this process by the same command with glibc's per-thread cache off (see
    the module docstring); return when there is nothing to do or it cannot (no glibc, a
    frozen executable, `exec` refused). Call first thing, before any thread starts."""
    tunables = tunables_without_tcache(environ)
    if tunables is None or not sys.executable or getattr(sys, "frozen", False):
        return
    if not _is_glibc():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    restarted = {**environ, "GLIBC_TUNABLES": tunables, RESTARTED_MARK: "1"}
    try:
        os.execve(sys.executable, sys.orig_argv, restarted)  # noqa: S606 - this very command
    except OSError:
        return


def _is_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):  # not a glibc system
        return False


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, classes, functions: about 50,000) out of
    the garbage collector's sight for good: a full collection then walks the policy
    and the requests in flight, not those (about 9 ms on their own), and forked
    workers stop copying the pages a collection would touch. Call once, after the
    imports and before the first load (a frozen policy's cycles would never be freed)."""
    gc.freeze()


def release_free_memory() -> bool:
    """Collect garbage, then return freed heap pages to the OS; False where the C
    library cannot. The full collection frees cycles that outlived the young
    generations and empties the interpreter's free lists, which otherwise wait for
    the rare automatic full collection (between them, in the soak, about 30 KB a
    minute piled up); after `freeze_startup_objects` it walks only what the
    runtime made since, so it stays short."""
    gc.collect()
    trim = _libc_function("malloc_trim")
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
