"""The wiring of a runtime process: options → checked parts → `Process`.

`build_process` checks every option, prepares the state dir, builds the
request handler, the audit log, the metrics, the rate-limit store and the
bundle watcher (a directory or a registry), and loads the newest valid
bundle. `process.py` then serves it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aivault_ops.errors import UsageError
from aivault_ops.runtime.observe.log import StderrLog
from aivault_ops.runtime.process import Process

if TYPE_CHECKING:
    from aivault_ops.runtime.auth.base import AuthServices
    from aivault_ops.runtime.bundles.reload import BundleWatcher
    from aivault_ops.runtime.bundles.state import RuntimeState
    from aivault_ops.runtime.http.connections import ConnectionLimits
    from aivault_ops.runtime.http.server import Runtime
    from aivault_ops.runtime.observe.audit import AuditHealth, AuditLog
    from aivault_ops.runtime.observe.metrics import Metrics
    from aivault_ops.runtime.options import RuntimeOptions
    from aivault_ops.runtime.policy.rate_limit_redis import RedisRateLimitStore
    from aivault_ops.runtime.upstream.client import UpstreamSettings
    from aivault_ops.sops.identities import Identities

METRICS_DIR: Final = "metrics"
DEFAULT_DIR_POLL_S: Final = 2.0
DEFAULT_REGISTRY_POLL_S: Final = 10.0


def connection_limits(args: RuntimeOptions) -> ConnectionLimits:
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


def build_process(
    args: RuntimeOptions, log: StderrLog, environ: dict[str, str], *, workers: int = 1
) -> Process:
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
    state, audit = RuntimeState(), AuditLog(state_dir, clock=_now, settings=args.audit)
    metrics = process_metrics(workers, state_dir, state, audit)
    runtime = Runtime(
        state=state,
        upstream=_Unstarted(),
        audit=audit,
        metrics=metrics,
        clock=_now,
        log=log,
        body_timeout_s=limits.body_timeout_s,
    )
    if args.rate_limit_store is not None:
        runtime.rate_limits = redis_rate_limits(args.rate_limit_store, args, environ, state, log)
    identities = load_identities(args.identity, environ)
    services = auth_services(runtime, identities, settings, state_dir)
    loader = Loader(trusted, identities, _now, services)
    reload_thread: BundleWatcher
    if args.bundle_dir is None:  # exactly one of the two is given (checked above)
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


def process_metrics(workers: int, state_dir: Path, state: RuntimeState, audit: AuditLog) -> Metrics:
    """This process's metrics, or with `--workers` > 1 metrics summed over the workers."""
    from aivault_ops.runtime.observe.metrics import Metrics

    if workers == 1:
        return Metrics()

    def snapshot() -> tuple[int | None, AuditHealth]:
        policy = state.record.policy
        return policy.serial if policy is not None else None, audit.health()

    return Metrics.for_workers(state_dir / METRICS_DIR, snapshot)


def redis_rate_limits(
    url: str, args: RuntimeOptions, environ: dict[str, str], state: RuntimeState, log: StderrLog
) -> RedisRateLimitStore:
    """`--rate-limit-store redis://…`: buckets in Redis, shown in /status as rateLimitStore."""
    from aivault_ops.runtime.policy.rate_limit_redis import open_shared_store

    def environment() -> str | None:
        policy = state.record.policy
        return policy.environment if policy is not None else None

    store = open_shared_store(
        url,
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


def poll_interval(args: RuntimeOptions) -> float:
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
    x25519 identity (or to a key made now, before the workers fork); mTLS
    contexts start from the runtime's upstream trust.
    """
    from aivault_ops.runtime.auth.base import AuthServices
    from aivault_ops.runtime.auth.oauth2.cache import cache_identity
    from aivault_ops.runtime.auth.oauth2.token_endpoint import TokenEndpoint
    from aivault_ops.runtime.upstream.client import ssl_context

    return AuthServices(
        state_dir=state_dir,
        identity=cache_identity(identities.keys),
        post_form=TokenEndpoint(lambda: runtime.upstream).post_form,
        tls_context=lambda: ssl_context(settings),
    )


def upstream_settings(args: RuntimeOptions, log: StderrLog) -> UpstreamSettings:
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
    _check_upstream_limits(args)
    settings = UpstreamSettings(
        dev_resolve=dev_resolve,
        dev_ca_cert=args.dev_ca_cert,
        max_connections=args.upstream_max_connections
        or min(UpstreamSettings.max_connections, default_max_connections()),
        max_per_host=args.upstream_max_per_host,
        queue_timeout_s=args.upstream_queue_timeout or UpstreamSettings.queue_timeout_s,
        body_timeout_s=args.upstream_body_timeout,
    )
    ssl_context(settings)
    return settings


def _check_upstream_limits(args: RuntimeOptions) -> None:
    """The upstream bulkhead options, when given: counts at least 1, a positive wait."""
    for flag, count in (
        ("--upstream-max-connections", args.upstream_max_connections),
        ("--upstream-max-per-host", args.upstream_max_per_host),
    ):
        if count is not None and count < 1:
            raise UsageError(f"{flag} must be at least 1")
    if args.upstream_queue_timeout is not None and not args.upstream_queue_timeout > 0:
        raise UsageError("--upstream-queue-timeout must be positive")


def _now() -> datetime:
    return datetime.now(UTC)


class _Unstarted:
    """Placeholder until the event loop runs (the upstream pool needs a loop)."""

    async def open(self, request: Any) -> Any:
        """Never called: `serve_forever` installs the real client first."""
        raise RuntimeError("upstream client not started")

    async def aclose(self) -> None:
        """Nothing to close."""
