"""`aivault-ops serve`: the long-running runtime (HTTP on loopback and/or a unix socket)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import socket
import stat
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from aivault_ops.errors import AivaultError, UsageError

if TYPE_CHECKING:
    from aivault_ops.runtime.auth.base import AuthServices
    from aivault_ops.runtime.connections import ConnectionLimits
    from aivault_ops.runtime.reload import ReloadThread
    from aivault_ops.runtime.server import Runtime
    from aivault_ops.runtime.upstream import UpstreamSettings
    from aivault_ops.sops.identities import Identities

DEFAULT_LISTEN: Final = "127.0.0.1:8787"
RATE_LIMIT_FILE: Final = "rate-limits.bin"


def register(subparsers: Any) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser("serve", help="run the runtime: watch bundles, broker calls")
    parser.add_argument("--bundle-dir", type=Path, required=True, metavar="T", help="bundle dir")
    parser.add_argument(
        "--identity", type=Path, metavar="AGEKEY", help="age identity file (else sops' sources)"
    )
    parser.add_argument(
        "--trust", action="extend", nargs="+", required=True, metavar="PUB",
        help="trusted signing key: 'ed25519:<base64>' or a file holding one (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help=f"HOST:PORT to listen on (default {DEFAULT_LISTEN})"
    )
    parser.add_argument(
        "--socket", type=Path, metavar="PATH", help="also (or only) listen on this unix socket"
    )
    parser.add_argument("--state-dir", type=Path, metavar="D", help="serial floor and audit log")
    parser.add_argument(
        "--listen-public", action="store_true", help="allow a non-loopback --listen"
    )
    parser.add_argument(
        "--dev-resolve", action="append", default=[], metavar="HOST=IP:PORT",
        help="DEVELOPMENT ONLY: send HOST to IP:PORT, skipping the SSRF check",
    )  # fmt: skip
    parser.add_argument(
        "--dev-ca-cert", type=Path, metavar="PEM", help="DEVELOPMENT ONLY: extra upstream CA"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=2.0, metavar="S",
        help="seconds between bundle dir polls (default 2)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="worker processes sharing the listeners (default 1; metrics are per worker)",
    )  # fmt: skip
    parser.add_argument("--log-format", choices=["json", "text"], default="json")
    _add_connection_limits(parser)
    parser.set_defaults(func=run_serve)


def _add_connection_limits(parser: Any) -> None:
    from aivault_ops.runtime import connections as c

    parser.add_argument(
        "--max-connections", type=int, metavar="N",
        help="concurrent caller connections per worker; more are refused with a 503"
        f" (default: half the free file descriptors, at most {c.MAX_DEFAULT_CONNECTIONS})",
    )  # fmt: skip
    parser.add_argument(
        "--header-timeout", type=float, default=c.DEFAULT_HEADER_TIMEOUT_S, metavar="S",
        help="seconds a new connection has to send a complete request head"
        f" (default {c.DEFAULT_HEADER_TIMEOUT_S:g})",
    )  # fmt: skip
    parser.add_argument(
        "--keepalive-timeout", type=float, default=c.DEFAULT_KEEPALIVE_TIMEOUT_S, metavar="S",
        help="seconds an idle kept-alive connection stays open"
        f" (default {c.DEFAULT_KEEPALIVE_TIMEOUT_S:g})",
    )  # fmt: skip
    parser.add_argument(
        "--body-timeout", type=float, default=c.DEFAULT_BODY_TIMEOUT_S, metavar="S",
        help=f"seconds to receive a request body (default {c.DEFAULT_BODY_TIMEOUT_S:g})",
    )  # fmt: skip
    parser.add_argument(
        "--upstream-body-timeout", type=float, default=600.0, metavar="S",
        help="seconds an upstream response body may take in all, streams included"
        " (default 600; the capability's timeoutMs bounds the head)",
    )  # fmt: skip
    parser.add_argument(
        "--shutdown-grace", type=float, default=c.DEFAULT_SHUTDOWN_GRACE_S, metavar="S",
        help="on SIGTERM, seconds in-flight requests get to finish"
        f" (default {c.DEFAULT_SHUTDOWN_GRACE_S:g})",
    )  # fmt: skip


def connection_limits(args: argparse.Namespace) -> ConnectionLimits:
    """The caller-side limits from the options (each must be positive)."""
    from aivault_ops.runtime.connections import ConnectionLimits, default_max_connections

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
class StderrLog:
    """Structured log lines on stderr; callers pass names and codes, never secret values."""

    json_lines: bool = True
    stream: TextIO = field(default_factory=lambda: sys.stderr)

    def __call__(self, event: str, **fields: Any) -> None:
        """Write one line."""
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self.json_lines:
            line = json.dumps({"ts": ts, "event": event, **fields}, default=str)
        else:
            line = " ".join([ts, event, *(f"{k}={v}" for k, v in fields.items())])
        self.stream.write(line + "\n")
        self.stream.flush()


def parse_listen(value: str, *, public: bool) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets); refuse a non-loopback host unless `public`.

    Prevents exposing the broker to the network by accident: only loopback
    (or `localhost`) is accepted without `--listen-public`.
    """
    host, colon, port_text = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"--listen {value!r}: expected HOST:PORT")
    if not public and not _is_loopback(host):
        raise UsageError(
            f"--listen {value!r} is not a loopback address",
            hint="pass --listen-public to listen on the network (callers still need tokens)",
        )
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    """Load the newest valid bundle, then serve until SIGTERM/SIGINT."""
    import uvloop

    log = StderrLog(json_lines=args.log_format == "json")
    listen = None
    if args.listen is not None or args.socket is None:
        listen = parse_listen(args.listen or DEFAULT_LISTEN, public=args.listen_public)
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    listeners = open_listeners(listen, args.socket)  # a taken port fails before any load
    try:
        process = build_process(args, log, dict(os.environ))
    except BaseException:
        listeners.close()
        raise
    if args.workers == 1:
        uvloop.run(serve_forever(process, listeners))
        return 0
    return run_workers(process, listeners, args.workers)


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

        from aivault_ops.runtime.rate_limit import SharedFileRateLimitStore

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
    reload_thread: ReloadThread
    settings: UpstreamSettings
    log: StderrLog
    state_dir: Path
    limits: ConnectionLimits


def build_process(args: argparse.Namespace, log: StderrLog, environ: dict[str, str]) -> Process:
    """Check every option, prepare the state dir, and load the newest valid bundle."""
    from aivault_ops.bundle.keys import resolve_public_key
    from aivault_ops.runtime.audit import AuditLog
    from aivault_ops.runtime.loader import BundleDirectory, Loader
    from aivault_ops.runtime.metrics import Metrics
    from aivault_ops.runtime.reload import Reloader, ReloadThread
    from aivault_ops.runtime.server import Runtime
    from aivault_ops.runtime.state import (
        RuntimeState,
        SerialFloor,
        default_state_dir,
        prepare_state_dir,
    )
    from aivault_ops.sops.identities import load_identities

    if not args.bundle_dir.is_dir():
        raise UsageError(f"--bundle-dir {args.bundle_dir}: not a directory")
    if args.poll_interval <= 0:
        raise UsageError("--poll-interval must be positive")
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
    identities = load_identities(args.identity, environ)
    services = auth_services(runtime, identities, settings, state_dir)
    loader = Loader(trusted, identities, _now, services)
    reloader = Reloader(
        BundleDirectory(args.bundle_dir), loader, state, SerialFloor(state_dir), metrics, log, _now
    )
    reloader.scan()
    if state.record.policy is None:
        log("no_policy", detail="no valid bundle yet: invokes get 503 until one arrives")
    reload_thread = ReloadThread(reloader, args.poll_interval)
    return Process(runtime, reload_thread, settings, log, state_dir, limits)


def auth_services(
    runtime: Runtime, identities: Identities, settings: UpstreamSettings, state_dir: Path
) -> AuthServices:
    """I/O for the per-request auth strategies.

    Token endpoints are reached through the runtime's own (SSRF-checked)
    upstream client; o_auth2 tokens are cached encrypted to the runtime's own
    x25519 identity; mTLS contexts start from the runtime's upstream trust.
    """
    from aivault_ops.runtime.auth.base import AuthServices
    from aivault_ops.runtime.token_endpoint import TokenEndpoint
    from aivault_ops.runtime.upstream import ssl_context

    own = next((key for key in identities.keys if hasattr(key, "to_public")), None)
    return AuthServices(
        state_dir=state_dir,
        identity=own,
        post_form=TokenEndpoint(lambda: runtime.upstream).post_form,
        tls_context=lambda: ssl_context(settings),
    )


def upstream_settings(args: argparse.Namespace, log: StderrLog) -> UpstreamSettings:
    """Upstream settings; each dev_ option is announced with a warning."""
    from aivault_ops.runtime.upstream import DevResolve, UpstreamSettings

    dev_resolve = DevResolve.parse(args.dev_resolve)
    for host, (ip, port) in sorted(dev_resolve.targets.items()):
        log("warning", detail=f"DEVELOPMENT ONLY: --dev-resolve sends {host} to {ip}:{port}")
    if args.dev_ca_cert is not None:
        log("warning", detail=f"DEVELOPMENT ONLY: --dev-ca-cert trusts {args.dev_ca_cert}")
    from aivault_ops.runtime.connections import default_max_connections
    from aivault_ops.runtime.upstream import ssl_context

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
    from aivault_ops.runtime.connections import GuardedServer
    from aivault_ops.runtime.upstream import Http1Upstream

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
