"""What-if variants of the runtime: one hot-path change patched in at start, to measure it.

    python -m benchmarks.variants VARIANT[+VARIANT…] serve ARGS…

Used by the proxy benchmark to put a number on a proposed change before
anyone makes it; never a way to run the runtime (`audit-off` drops the
audit trail). Variants:

- `audit-off`: the audit line is built but never written (`AuditLog._write`
  does nothing) — the upper bound of what a cheaper audit append could gain.
- `reuseport`: with `--workers N`, each worker binds its own listening
  socket with SO_REUSEPORT (the kernel spreads connections over them)
  instead of all workers accepting on one inherited socket.
- `lean-server`: the runtime's handler behind `benchmarks/lean_server.py`,
  a minimal httptools server (what-if only: whole answers, no request
  bodies, no limits), instead of aiohttp's low-level server.
- `malloc-trim`: after each bundle load, `gc.collect()` and glibc's
  `malloc_trim(0)` hand the load's transient memory back to the OS.

Earlier variants measured changes that have since become the runtime's own
code, so they are gone from here: `raw-aiohttp` (aiohttp's client called
directly instead of httpx + httpx-aiohttp: 1.33× less CPU per request),
`small-body` (one `aread` for a small identity body) and `lean-client` (a
minimal uvloop + httptools client instead of aiohttp's: 1.65× less CPU per
request than aiohttp's client called directly, and 0.29 ms instead of
0.40 ms at one connection; it became `aivault_ops/runtime/upstream/http1.py`).
"""

from __future__ import annotations

import ctypes
import gc
import socket
import sys
from collections.abc import Callable
from typing import Any

from aivault_ops.runtime.bundles import loader
from aivault_ops.runtime.observe import audit


def _audit_off() -> None:
    def write(self: audit.AuditLog, entries: Any) -> None:
        return None

    audit.AuditLog._write = write  # type: ignore[method-assign]


def _malloc_trim() -> None:
    original = loader.Loader.load
    libc = ctypes.CDLL("libc.so.6")

    def load(self: loader.Loader, *args: Any, **kwargs: Any) -> loader.Loaded:
        loaded = original(self, *args, **kwargs)
        gc.collect()
        libc.malloc_trim(0)
        return loaded

    loader.Loader.load = load  # type: ignore[method-assign]


def _reuseport() -> None:
    from aivault_ops.runtime import process as serve

    original_open, original_serve, original_run = (
        serve.open_listeners, serve.serve_forever, serve.run_workers,
    )  # fmt: skip
    address: dict[str, Any] = {}

    def open_listeners(listen: Any, socket_path: Any) -> Any:
        listeners = original_open(listen, socket_path)
        if listeners.tcp is not None:
            address["tcp"] = (listeners.tcp.getsockname()[:2], listeners.tcp.family)
        return listeners

    def run_workers(process: Any, listeners: Any, count: int) -> int:
        if listeners.tcp is not None:
            listeners.tcp.close()
            listeners.tcp = None
        return original_run(process, listeners, count)

    async def serve_forever(process: Any, listeners: Any, until: Any = None) -> None:
        if listeners.tcp is None and "tcp" in address:
            where, family = address["tcp"]
            listeners.tcp = socket.create_server(
                where, family=family, backlog=1024, reuse_port=True
            )
        await original_serve(process, listeners, until)

    serve.open_listeners = open_listeners
    serve.run_workers = run_workers
    serve.serve_forever = serve_forever


def _lean_server() -> None:
    from benchmarks import lean_server

    lean_server.install()


VARIANTS: dict[str, Callable[[], None]] = {
    "lean-server": _lean_server,
    "reuseport": _reuseport,
    "audit-off": _audit_off,
    "malloc-trim": _malloc_trim,
}


def main(argv: list[str]) -> int:
    """Apply the variants named in argv[0], then run `aivault-ops` with the rest, as
    the command line does (`serve` restarts itself once, variants and all: see
    `aivault_ops.runtime.heap`)."""
    for name in argv[0].split("+"):
        VARIANTS[name]()
    from aivault_ops.main import main as aivault_main

    sys.argv = [sys.argv[0], *argv[1:]]
    return aivault_main()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
