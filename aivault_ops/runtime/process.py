"""The runtime process: sockets, workers, signals.

`serve` parses the options and binds the listeners first (a taken port
fails before anything is loaded); `wiring.build_process` assembles the
parts and loads the policy; then one or more event loops serve here until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aivault_ops.errors import AivaultError, UsageError
from aivault_ops.runtime.observe.log import StderrLog

if TYPE_CHECKING:
    from aivault_ops.runtime.bundles.reload import BundleWatcher
    from aivault_ops.runtime.http.connections import ConnectionLimits
    from aivault_ops.runtime.http.server import Runtime
    from aivault_ops.runtime.upstream.client import UpstreamSettings

RATE_LIMIT_FILE: Final = "rate-limits.bin"
# Connections the kernel completes and queues for accept, per listener (capped by
# net.core.somaxconn). The event loop listens again when it starts serving a socket,
# with 100 unless told; a connect that finds the queue full waits for its SYN to be
# sent again (1 s, then 3 s), so a burst of new callers stalls.
LISTEN_BACKLOG: Final = 1024
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


@dataclass
class Listeners:
    """Sockets bound before any worker starts (so every worker accepts on them)."""

    tcp: socket.socket | None = None
    unix: socket.socket | None = None

    def close(self) -> None:
        """Close both sockets (a unix socket's file stays until the next start)."""
        for sock in (self.tcp, self.unix):
            if sock is not None:
                sock.close()


def open_listeners(listen: tuple[str, int] | None, socket_path: Path | None) -> Listeners:
    """Bind the TCP address and/or the unix socket (mode 0600)."""
    listeners = Listeners()
    if listen is not None:
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        try:
            listeners.tcp = socket.create_server(listen, family=family, backlog=LISTEN_BACKLOG)
        except OSError as error:
            raise AivaultError(
                f"cannot listen on {listen[0]}:{listen[1]}: {error.strerror}"
            ) from None
    if socket_path is not None:
        remove_stale_socket(socket_path)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(str(socket_path))
        socket_path.chmod(0o600)
        unix.listen(LISTEN_BACKLOG)
        listeners.unix = unix
    return listeners


def run_workers(process: Process, listeners: Listeners, count: int) -> int:
    """Fork `count` workers on the shared listeners; forward SIGTERM/SIGINT; 0 if all exit 0.

    Each worker runs its own event loop, upstream pool and reload thread; the
    policy loaded at start is inherited. Rate limits use a table shared
    through the state dir, so limits hold across workers; so do the metrics.
    """
    # Stop signals wait (blocked) until someone can act on them: the workers unblock
    # once their event loop handles them, this process once it forwards them. A
    # SIGTERM in between is delivered then, never lost and never the default kill.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    pids = [_fork_worker(process, listeners) for _ in range(count)]
    process.runtime.metrics.process_gone(os.getpid())

    def forward(signum: int, frame: object) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    codes: list[int] = []
    while len(codes) < len(pids):
        pid, status = os.waitpid(-1, 0)
        if pid in pids:
            process.runtime.metrics.process_gone(pid)
            codes.append(os.waitstatus_to_exitcode(status))
    return 0 if all(code == 0 for code in codes) else 1


def _fork_worker(process: Process, listeners: Listeners) -> int:
    pid = os.fork()
    if pid:
        return pid
    # From here on only the forked child runs, and it leaves with os._exit, so no
    # coverage data of it is ever written: the `--workers` subprocess tests
    # (tests/runtime/test_auth_serve_workers.py, observe/test_metrics_workers.py) run it.
    code = 1  # pragma: no cover
    try:  # pragma: no cover
        import uvloop

        from aivault_ops.runtime.policy.rate_limit import (
            InMemoryRateLimitStore,
            SharedFileRateLimitStore,
        )

        if isinstance(process.runtime.rate_limits, InMemoryRateLimitStore):  # not Redis
            store = SharedFileRateLimitStore(process.state_dir / RATE_LIMIT_FILE)
            process.runtime.rate_limits = store
        process.runtime.metrics.worker_started()
        uvloop.run(serve_forever(process, listeners))
        code = 0
    finally:
        os._exit(code)


def stop_on_signal() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, from now on.

    A stop signal that arrived while they were blocked (a worker between its
    fork and here, see `run_workers`) is delivered now and sets the event.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return stop


def remove_stale_socket(path: Path) -> None:
    """Remove a leftover unix socket at `path`; refuse to remove anything else."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise UsageError(f"--socket {path}: exists and is not a socket")
    path.unlink()


@dataclass
class Process:
    """The assembled runtime: request handler, reload thread, upstream settings."""

    runtime: Runtime
    reload_thread: BundleWatcher
    settings: UpstreamSettings
    log: StderrLog
    state_dir: Path
    limits: ConnectionLimits


def quiet_loop_errors(log: StderrLog) -> Callable[[Any, dict[str, Any]], None]:
    """The event loop's handler for errors nobody awaited: one structured line with the
    exception's class, never a traceback (a frame could hold request bytes)."""

    def handle(loop: Any, context: dict[str, Any]) -> None:
        error = context.get("exception")
        log("loop_error", error=type(error).__name__ if error is not None else None)

    return handle


async def serve_forever(
    process: Process,
    listeners: Listeners,
    until: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve on `listeners`, start reloading, until `until()` returns (default: a signal)."""
    from aivault_ops.runtime.http.connections import GuardedServer
    from aivault_ops.runtime.upstream.client import Http1Upstream

    wait = until or stop_on_signal().wait  # the signal handlers before the first connection
    process.runtime.upstream = Http1Upstream(process.settings)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_loop_errors(process.log))
    server = GuardedServer(process.runtime.handle, limits=process.limits, log=process.log)
    servers = []
    if listeners.tcp is not None:
        servers.append(await loop.create_server(server, sock=listeners.tcp, backlog=LISTEN_BACKLOG))
        host, port = listeners.tcp.getsockname()[:2]
        process.log("listening", address=f"{host}:{port}", pid=os.getpid())
    if listeners.unix is not None:
        servers.append(
            await loop.create_unix_server(server, sock=listeners.unix, backlog=LISTEN_BACKLOG)
        )
        process.log("listening", socket=listeners.unix.getsockname(), pid=os.getpid())
    process.reload_thread.start()
    process.runtime.audit.start_maintenance()  # compress and prune what earlier runs left
    try:
        await wait()
    finally:
        process.log("stopping")
        process.reload_thread.stop()
        for listening in servers:
            listening.close()
        server.pre_shutdown()  # idle keep-alive connections close now, busy ones after
        await server.shutdown(timeout=process.limits.shutdown_grace_s)
        await process.runtime.upstream.aclose()
        await process.runtime.rate_limits.aclose()
