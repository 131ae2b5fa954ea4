"""`aivault-ops serve`: options and checks; `runtime/wiring.py` assembles the runtime and
`runtime/process.py` runs it."""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from aivault_ops.errors import UsageError

if TYPE_CHECKING:
    from aivault_ops.runtime.observe.audit_settings import AuditSettings
    from aivault_ops.runtime.options import RuntimeOptions

DEFAULT_LISTEN: Final = "127.0.0.1:8787"


def register(subparsers: Any) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser("serve", help="run the runtime: watch bundles, broker calls")
    parser.add_argument("--bundle-dir", type=Path, metavar="T", help="bundle dir to watch")
    parser.add_argument(
        "--bundle-source", metavar="oci://HOST/REPO:TAG",
        help="or: poll this OCI registry tag instead of a directory (docs/fleet.md)",
    )  # fmt: skip
    parser.add_argument(
        "--plain-http", action="store_true",
        help="plain HTTP to a --bundle-source registry on a loopback address",
    )  # fmt: skip
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
        "--poll-interval", type=float, metavar="S",
        help="seconds between polls of the bundle dir (default 2) or the registry (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="worker processes sharing the listeners (default 1; /metrics sums them all)",
    )  # fmt: skip
    parser.add_argument("--log-format", choices=["json", "text"], default="json")
    _add_rate_limit_store(parser)
    _add_connection_limits(parser)
    _add_audit_options(parser)
    parser.set_defaults(func=from_args)


def _add_rate_limit_store(parser: Any) -> None:
    parser.add_argument(
        "--rate-limit-store", metavar="redis://HOST:PORT/DB",
        help="share rate limits across runtimes in Redis (rediss:// for TLS; the password"
        " from AIVAULT_OPS_REDIS_PASSWORD or --rate-limit-store-password-file)",
    )  # fmt: skip
    parser.add_argument(
        "--rate-limit-fallback", choices=["closed", "local"], default="closed",
        help="when Redis is unreachable: refuse rate-limited calls with 503 (closed, the"
        " default) or use this runtime's own buckets (local)",
    )  # fmt: skip
    parser.add_argument(
        "--rate-limit-store-password-file", type=Path, metavar="F", help="the Redis password"
    )
    parser.add_argument(
        "--rate-limit-store-ca-cert", type=Path, metavar="PEM", help="CA for a rediss:// store"
    )


def _add_connection_limits(parser: Any) -> None:
    from aivault_ops.runtime.http import connections as c

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
        "--upstream-max-connections", type=int, metavar="N",
        help="upstream connections per worker, in use or idle, over every host (default 256,"
        " fewer when file descriptors are scarce)",
    )  # fmt: skip
    parser.add_argument(
        "--upstream-max-per-host", type=int, metavar="N",
        help="upstream connections in use per host (a bulkhead: a slow host cannot take"
        " another's; default half of --upstream-max-connections)",
    )  # fmt: skip
    parser.add_argument(
        "--upstream-queue-timeout", type=float, metavar="S",
        help="seconds a request may wait for an upstream connection before a 503"
        " E-UPSTREAM-BUSY (default 5; never past the capability's timeoutMs)",
    )  # fmt: skip
    parser.add_argument(
        "--shutdown-grace", type=float, default=c.DEFAULT_SHUTDOWN_GRACE_S, metavar="S",
        help="on SIGTERM, seconds in-flight requests get to finish"
        f" (default {c.DEFAULT_SHUTDOWN_GRACE_S:g})",
    )  # fmt: skip


def _byte_size(text: str) -> int:
    from aivault_ops.runtime.observe.audit_settings import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_audit_options(parser: Any) -> None:
    from aivault_ops.runtime.observe import audit_settings as a

    parser.add_argument(
        "--audit-max-file-bytes", type=_byte_size, default=a.DEFAULT_MAX_FILE_BYTES, metavar="N",
        help="rotate the audit file before it grows past N bytes (suffixes K, M, G; default 64M)",
    )  # fmt: skip
    parser.add_argument(
        "--audit-rotate", choices=list(a.ROTATE_PERIODS), default="daily",
        help="also rotate when the UTC day (or hour) changes, or only by size (default daily)",
    )  # fmt: skip
    parser.add_argument(
        "--audit-gzip", action=argparse.BooleanOptionalAction, default=True,
        help="gzip closed audit files, all but the newest (default on)",
    )  # fmt: skip
    parser.add_argument(
        "--audit-retain-bytes", type=_byte_size, metavar="N",
        help="prune the oldest closed audit files while all of them take more than N bytes"
        " (default: keep everything)",
    )  # fmt: skip
    parser.add_argument(
        "--audit-retain-days", type=float, metavar="D",
        help="prune closed audit files last written more than D days ago (default: keep all)",
    )  # fmt: skip
    parser.add_argument(
        "--audit-warn-free-bytes", type=_byte_size, default=a.DEFAULT_WARN_FREE_BYTES, metavar="N",
        help="below N bytes free on the audit filesystem /status turns degraded (default 512M)",
    )  # fmt: skip
    parser.add_argument(
        "--audit-min-free-bytes", type=_byte_size, default=a.DEFAULT_MIN_FREE_BYTES, metavar="N",
        help="below N bytes free every invoke is refused: 503 E-AUDIT-UNAVAILABLE (default 8M)",
    )  # fmt: skip


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


def from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_serve`."""
    from aivault_ops.runtime.heap import restart_without_tcache
    from aivault_ops.runtime.options import RuntimeOptions

    if getattr(args, "command_line", False):
        restart_without_tcache(os.environ)

    options = RuntimeOptions(
        bundle_dir=args.bundle_dir,
        trust=args.trust,
        poll_interval=args.poll_interval,
        header_timeout=args.header_timeout,
        keepalive_timeout=args.keepalive_timeout,
        body_timeout=args.body_timeout,
        shutdown_grace=args.shutdown_grace,
        upstream_body_timeout=args.upstream_body_timeout,
        identity=args.identity,
        state_dir=args.state_dir,
        max_connections=args.max_connections,
        dev_resolve=args.dev_resolve,
        dev_ca_cert=args.dev_ca_cert,
        audit=_audit_settings(args),
        bundle_source=args.bundle_source,
        plain_http=args.plain_http,
        rate_limit_store=args.rate_limit_store,
        rate_limit_fallback=args.rate_limit_fallback,
        rate_limit_store_password_file=args.rate_limit_store_password_file,
        rate_limit_store_ca_cert=args.rate_limit_store_ca_cert,
        upstream_max_connections=args.upstream_max_connections,
        upstream_max_per_host=args.upstream_max_per_host,
        upstream_queue_timeout=args.upstream_queue_timeout,
    )
    return run_serve(
        options=options,
        listen=args.listen,
        socket=args.socket,
        listen_public=args.listen_public,
        workers=args.workers,
        log_format=args.log_format,
    )


def _audit_settings(args: argparse.Namespace) -> AuditSettings:
    """The `--audit-*` options as one checked value (a bad combination: usage error)."""
    from aivault_ops.runtime.observe.audit_settings import AuditSettings

    try:
        return AuditSettings(
            max_file_bytes=args.audit_max_file_bytes,
            rotate=args.audit_rotate,
            gzip=args.audit_gzip,
            retain_bytes=args.audit_retain_bytes,
            retain_days=args.audit_retain_days,
            min_free_bytes=args.audit_min_free_bytes,
            warn_free_bytes=args.audit_warn_free_bytes,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def run_serve(
    *,
    options: RuntimeOptions,
    listen: str | None = None,
    socket: Path | None = None,
    listen_public: bool = False,
    workers: int = 1,
    log_format: Literal["json", "text"] = "json",
) -> int:
    """Load the newest valid bundle, then serve until SIGTERM/SIGINT.

    `listen` None: the default address, unless only `socket` is given.
    """
    import uvloop

    from aivault_ops.runtime.heap import freeze_startup_objects, pin_allocator
    from aivault_ops.runtime.observe.log import StderrLog
    from aivault_ops.runtime.process import open_listeners, run_workers, serve_forever
    from aivault_ops.runtime.wiring import build_process

    pin_allocator(os.environ)  # before any thread and the first load; inherited by workers
    freeze_startup_objects()
    log = StderrLog(json_lines=log_format == "json")
    address = None
    if listen is not None or socket is None:
        address = parse_listen(listen or DEFAULT_LISTEN, public=listen_public)
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    listeners = open_listeners(address, socket)  # a taken port fails before any load
    try:
        process = build_process(options, log, dict(os.environ), workers=workers)
    except BaseException:
        listeners.close()
        raise
    if workers == 1:
        uvloop.run(serve_forever(process, listeners))
        return 0
    return run_workers(process, listeners, workers)
