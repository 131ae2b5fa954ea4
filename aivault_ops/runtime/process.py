"""The runtime process: sockets, workers, signals, and the wiring of its parts.

`serve` parses the options; this module turns them into a running runtime:
the listeners are bound first (a taken port fails before anything is
loaded), the policy is loaded, then one or more event loops serve until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aivault_ops.errors import AivaultError, UsageError
from aivault_ops.runtime.observe.log import StderrLog

if TYPE_CHECKING:
    from aivault_ops.runtime.auth.base import AuthServices
    from aivault_ops.runtime.bundles.reload import BundleWatcher
    from aivault_ops.runtime.bundles.state import RuntimeState
    from aivault_ops.runtime.http.connections import ConnectionLimits
    from aivault_ops.runtime.http.server import Runtime
    from aivault_ops.runtime.policy.rate_limit_redis import RedisRateLimitStore
    from aivault_ops.runtime.upstream.client import UpstreamSettings
    from aivault_ops.sops.identities import Identities

RATE_LIMIT_FILE: Final = "rate-limits.bin"
DEFAULT_DIR_POLL_S: Final = 2.0
DEFAULT_REGISTRY_POLL_S: Final = 10.0


def connection_limits(args: argparse.Namespace) -> ConnectionLimits:
    """The caller-side limits from the options (each must be positive)."""
    from aivault_ops.runtime.http.connections import ConnectionLimits, default_max_connections

    limits = ConnectionLimits(
        max_connections=args.max_connections or default_max_connections(),
        header_timeout_s=args.header_timeout,
        keepalive_timeout_s=args.keepalive_timeout,
        body_timeout_s=args.body_timeout,
        shutdown_grace_s=args.shutdown_grace,
    )
    if args.max_connections is not None and args.max_connections < 1:
        raise UsageError("--max-connections must be at least 1")
    for flag, value in (
        ("--header-timeout", limits.header_timeout_s),
        ("--keepalive-timeout", limits.keepalive_timeout_s),
        ("--body-timeout", limits.body_timeout_s),
        ("--shutdown-grace", limits.shutdown_grace_s),
    ):
        if not value > 0:
            raise UsageError(f"{flag} must be positive")
    return limits


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
            listeners.tcp = socket.create_server(listen, family=family, backlog=1024)
        except OSError as error:
            raise AivaultError(
                f"cannot listen on {listen[0]}:{listen[1]}: {error.strerror}"
            ) from None
    if socket_path is not None:
        remove_stale_socket(socket_path)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(str(socket_path))
        socket_path.chmod(0o600)
        unix.listen(1024)
        listeners.unix = unix
    return listeners


def run_workers(process: Process, listeners: Listeners, count: int) -> int:
    """Fork `count` workers on the shared listeners; forward SIGTERM/SIGINT; 0 if all exit 0.

    Each worker runs its own event loop, upstream pool and reload thread; the
    policy loaded at start is inherited. Rate limits use a table shared
    through the state dir, so limits hold across workers.
    """
    pids = [_fork_worker(process, listeners) for _ in range(count)]

    def forward(signum: int, frame: object) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    return 0 if all(code == 0 for code in codes) else 1


def _fork_worker(process: Process, listeners: Listeners) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        import uvloop

        from aivault_ops.runtime.policy.rate_limit import (
            InMemoryRateLimitStore,
            SharedFileRateLimitStore,
        )

        if isinstance(process.runtime.rate_limits, InMemoryRateLimitStore):  # not Redis
            store = SharedFileRateLimitStore(process.state_dir / RATE_LIMIT_FILE)
            process.runtime.rate_limits = store
        uvloop.run(serve_forever(process, listeners))
        code = 0
    finally:
        os._exit(code)


async def wait_for_signal() -> None:
    """Return on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


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


def build_process(args: argparse.Namespace, log: StderrLog, environ: dict[str, str]) -> Process:
    """Check every option, prepare the state dir, and load the newest valid bundle."""
    from aivault_ops.bundle.keys import resolve_public_key
    from aivault_ops.runtime.bundles.loader import BundleDirectory, Loader
    from aivault_ops.runtime.bundles.reload import Reloader, ReloadThread
    from aivault_ops.runtime.bundles.state import (
        RuntimeState,
        SerialFloor,
        default_state_dir,
        prepare_state_dir,
    )
    from aivault_ops.runtime.http.server import Runtime
    from aivault_ops.runtime.observe.audit import AuditLog
    from aivault_ops.runtime.observe.metrics import Metrics
    from aivault_ops.sops.identities import load_identities

    if (args.bundle_dir is None) == (args.bundle_source is None):
        raise UsageError("give either --bundle-dir or --bundle-source (one of them)")
    if args.bundle_dir is not None and not args.bundle_dir.is_dir():
        raise UsageError(f"--bundle-dir {args.bundle_dir}: not a directory")
    if args.bundle_source is not None:
        from aivault_ops.runtime.bundles.oci_source import source_reference

        source = source_reference(args.bundle_source, plain_http=args.plain_http)
    interval = poll_interval(args)
    settings = upstream_settings(args, log)
    limits = connection_limits(args)
    state_dir = prepare_state_dir(args.state_dir or default_state_dir(environ))
    trusted = [resolve_public_key(value) for value in args.trust]
    state, metrics = RuntimeState(), Metrics()
    runtime = Runtime(
        state=state,
        upstream=_Unstarted(),
        audit=AuditLog(state_dir, clock=_now),
        metrics=metrics,
        clock=_now,
        log=log,
        body_timeout_s=limits.body_timeout_s,
    )
    if args.rate_limit_store is not None:
        runtime.rate_limits = redis_rate_limits(args, environ, state, log)
    identities = load_identities(args.identity, environ)
    services = auth_services(runtime, identities, settings, state_dir)
    loader = Loader(trusted, identities, _now, services)
    reload_thread: BundleWatcher
    if args.bundle_source is not None:
        from aivault_ops.runtime.bundles.oci_source import registry_watcher

        reload_thread = registry_watcher(
            source,
            plain_http=args.plain_http,
            environ=environ,
            loader=loader,
            state=state,
            state_dir=state_dir,
            metrics=metrics,
            log=log,
            interval=interval,
        )
    else:
        reloader = Reloader(
            BundleDirectory(args.bundle_dir),
            loader,
            state,
            SerialFloor(state_dir),
            metrics,
            log,
            _now,
        )
        reloader.scan()
        reload_thread = ReloadThread(reloader, interval)
    if state.record.policy is None:
        log("no_policy", detail="no valid bundle yet: invokes get 503 until one arrives")
    return Process(runtime, reload_thread, settings, log, state_dir, limits)


def redis_rate_limits(
    args: argparse.Namespace, environ: dict[str, str], state: RuntimeState, log: StderrLog
) -> RedisRateLimitStore:
    """`--rate-limit-store redis://…`: buckets in Redis, shown in /status as rateLimitStore."""
    from aivault_ops.runtime.policy.rate_limit_redis import open_shared_store

    def environment() -> str | None:
        policy = state.record.policy
        return policy.environment if policy is not None else None

    store = open_shared_store(
        args.rate_limit_store,
        fallback=args.rate_limit_fallback,
        password_file=args.rate_limit_store_password_file,
        ca_file=args.rate_limit_store_ca_cert,
        environ=environ,
        environment=environment,
        log=log,
        clock=_now,
    )
    state.components.register("rateLimitStore", store.health)
    return store


def poll_interval(args: argparse.Namespace) -> float:
    """--poll-interval, else 2 s for a directory and 10 s for a registry; must be positive."""
    if args.poll_interval is None:
        return DEFAULT_REGISTRY_POLL_S if args.bundle_source is not None else DEFAULT_DIR_POLL_S
    if not args.poll_interval > 0:
        raise UsageError("--poll-interval must be positive")
    return float(args.poll_interval)


def auth_services(
    runtime: Runtime, identities: Identities, settings: UpstreamSettings, state_dir: Path
) -> AuthServices:
    """I/O for the per-request auth strategies.

    Token endpoints are reached through the runtime's own (SSRF-checked)
    upstream client; o_auth2 tokens are cached encrypted to the runtime's own
    x25519 identity; mTLS contexts start from the runtime's upstream trust.
    """
    from aivault_ops.runtime.auth.base import AuthServices
    from aivault_ops.runtime.auth.oauth2.token_endpoint import TokenEndpoint
    from aivault_ops.runtime.upstream.client import ssl_context

    own = next((key for key in identities.keys if hasattr(key, "to_public")), None)
    return AuthServices(
        state_dir=state_dir,
        identity=own,
        post_form=TokenEndpoint(lambda: runtime.upstream).post_form,
        tls_context=lambda: ssl_context(settings),
    )


def upstream_settings(args: argparse.Namespace, log: StderrLog) -> UpstreamSettings:
    """Upstream settings; each dev_ option is announced with a warning."""
    from aivault_ops.runtime.upstream.client import DevResolve, UpstreamSettings

    dev_resolve = DevResolve.parse(args.dev_resolve)
    for host, (ip, port) in sorted(dev_resolve.targets.items()):
        log("warning", detail=f"DEVELOPMENT ONLY: --dev-resolve sends {host} to {ip}:{port}")
    if args.dev_ca_cert is not None:
        log("warning", detail=f"DEVELOPMENT ONLY: --dev-ca-cert trusts {args.dev_ca_cert}")
    from aivault_ops.runtime.http.connections import default_max_connections
    from aivault_ops.runtime.upstream.client import ssl_context

    if not args.upstream_body_timeout > 0:
        raise UsageError("--upstream-body-timeout must be positive")
    settings = UpstreamSettings(
        dev_resolve=dev_resolve,
        dev_ca_cert=args.dev_ca_cert,
        max_connections=min(UpstreamSettings.max_connections, default_max_connections()),
        body_timeout_s=args.upstream_body_timeout,
    )
    ssl_context(settings)
    return settings


def _now() -> datetime:
    return datetime.now(UTC)


class _Unstarted:
    """Placeholder until the event loop runs (the upstream pool needs a loop)."""

    async def open(self, request: Any) -> Any:
        """Never called: `serve_forever` installs the real client first."""
        raise RuntimeError("upstream client not started")

    async def aclose(self) -> None:
        """Nothing to close."""


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

    process.runtime.upstream = Http1Upstream(process.settings)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_loop_errors(process.log))
    server = GuardedServer(process.runtime.handle, limits=process.limits, log=process.log)
    servers = []
    if listeners.tcp is not None:
        servers.append(await loop.create_server(server, sock=listeners.tcp))
        host, port = listeners.tcp.getsockname()[:2]
        process.log("listening", address=f"{host}:{port}", pid=os.getpid())
    if listeners.unix is not None:
        servers.append(await loop.create_unix_server(server, sock=listeners.unix))
        process.log("listening", socket=listeners.unix.getsockname(), pid=os.getpid())
    process.reload_thread.start()
    try:
        await (until or wait_for_signal)()
    finally:
        process.log("stopping")
        process.reload_thread.stop()
        for listening in servers:
            listening.close()
        server.pre_shutdown()  # idle keep-alive connections close now, busy ones after
        await server.shutdown(timeout=process.limits.shutdown_grace_s)
        await process.runtime.upstream.aclose()
        await process.runtime.rate_limits.aclose()
