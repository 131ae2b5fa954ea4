"""Connections to upstream APIs: pooled keep-alive HTTP/1.1 over TLS, SSRF-checked.

`Http1Upstream` sends through `http1` pools (see that module for why the
runtime has its own small client). Every name is resolved by
`GuardedResolver`, and the addresses it returns are the ones connected to,
so the SSRF rule is checked on the connected address, not on a name; IP
literals are checked the same way. No cookies are kept (a jar would be
shared by every consumer), bodies are never decompressed here (the runtime
decodes them itself, before redaction) and redirects are never followed: a
3xx goes back to the caller as is. The target is sent exactly as policy
built it, so what a signer signed is what goes on the wire.

`UpstreamResponse` is the small part of a response the server reads;
`httpx.Response` satisfies it too, which unit tests use.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import quote

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from aivault_ops.errors import UsageError
from aivault_ops.runtime.errors import UpstreamBusy, UpstreamForbidden
from aivault_ops.runtime.errors import UpstreamFailure as UpstreamFailure
from aivault_ops.runtime.hop_by_hop import NOT_FORWARDED
from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.policy.checks.ssrf import is_forbidden_address
from aivault_ops.runtime.upstream import http1, http1_pool
from aivault_ops.runtime.upstream.dev_resolve import DevResolve as DevResolve
from aivault_ops.secret import Secret, wire_text

if TYPE_CHECKING:
    from aivault_ops.runtime.auth.request_auth import ClientTls

HTTPS_PORT: Final = 443
_QUERY_SAFE: Final = "-._~"


class AddressRefused(OSError):
    """Raised by the resolver for an address the SSRF rule forbids."""


class GuardedResolver(AbstractResolver):
    """Resolve upstream names, refusing any answer the SSRF rule forbids.

    Prevents SSRF and DNS rebinding: the addresses returned are exactly the
    ones the connector connects to, and a name with any forbidden address is
    refused as a whole. Only port 443 is reachable, except for hosts named
    in `--dev-resolve`, which go to the given address and port unchecked.
    """

    def __init__(self, dev_resolve: DevResolve, inner: AbstractResolver | None = None) -> None:
        self._dev = dev_resolve
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The checked addresses of `host` (or its dev-resolve target)."""
        target = self._dev.targets.get(host.lower())
        if target is not None:
            return [_result(host, target[0], target[1])]
        if port != HTTPS_PORT:
            raise AddressRefused(f"port {port} is not allowed (only {HTTPS_PORT})")
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if is_forbidden_address(ipaddress.ip_address(result["host"])):
                raise AddressRefused(f"{host} resolves to a forbidden address")
        return results

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


def _result(host: str, ip: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return ResolveResult(
        hostname=host, host=ip, port=port, family=family, proto=0, flags=socket.AI_NUMERICHOST
    )


def check_literal_host(host: str, dev_resolve: DevResolve) -> None:
    """Refuse a policy host that is a forbidden IP literal.

    Prevents SSRF through IP-literal hosts, which are connected to without
    asking the resolver.
    """
    if host.lower() in dev_resolve.targets:
        return
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if is_forbidden_address(address):
        raise UpstreamForbidden(f"upstream {host} is a forbidden address")


class ResponseHeaders(Protocol):
    """Case-insensitive response headers."""

    def get(self, key: str, default: Any = None) -> Any:
        """The first value of `key`, or `default`."""
        ...

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value), repeated names included, in order."""
        ...


class UpstreamResponse(Protocol):
    """What the server reads of an upstream response (`httpx.Response` fits too)."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def headers(self) -> ResponseHeaders:
        """The response headers."""
        ...

    def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as received (still content-encoded), as it arrives."""
        ...

    async def aread(self) -> bytes:
        """The whole body as received."""
        ...

    async def aclose(self) -> None:
        """Release the connection (closed, not pooled, if the body was not read)."""
        ...


class UpstreamClient(Protocol):
    """What the server needs from an upstream client (swap the transport behind it)."""

    async def open(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send `request`; return the response with its body still streaming."""
        ...

    async def aclose(self) -> None:
        """Close every pooled connection."""
        ...


@dataclass(frozen=True)
class UpstreamSettings:
    """How upstream connections are made; the `dev_` fields weaken checks for tests.

    `body_timeout_s` bounds a whole response body, from the end of its head
    (a capability's own timeout bounds the head, and each wait for body bytes).
    `max_per_host` (None: half of `max_connections`) is each host's bulkhead and
    `queue_timeout_s` the longest wait for a connection (see `http1_pool`).
    """

    dev_resolve: DevResolve = field(default_factory=DevResolve)
    dev_ca_cert: Path | None = None
    max_connections: int = 256
    max_per_host: int | None = None
    queue_timeout_s: float = http1_pool.DEFAULT_QUEUE_TIMEOUT_S
    keepalive_s: float = 30.0
    body_timeout_s: float = http1.DEFAULT_BODY_TIMEOUT_S


def ssl_context(settings: UpstreamSettings) -> ssl.SSLContext:
    """System trust store, plus `--dev-ca-cert` when given; hostname checks always on."""
    context = ssl.create_default_context()
    if settings.dev_ca_cert is not None:
        try:
            context.load_verify_locations(cafile=str(settings.dev_ca_cert))
        except (OSError, ssl.SSLError) as error:
            raise UsageError(f"--dev-ca-cert {settings.dev_ca_cert}: {error}") from None
    return context


class Http1Upstream:
    """The default `UpstreamClient`: `http1` keep-alive pools.

    One pool for every credential without a client certificate, and one per
    mTLS credential (its own TLS context), so a client certificate is only
    ever presented on that credential's connections. Within a pool each
    upstream host has its own bulkhead of connections and its own queue.
    An mTLS pool is dropped once its last connection is gone (made again on
    the next request): a certificate rotated away leaves nothing behind.
    """

    def __init__(self, settings: UpstreamSettings) -> None:
        self._settings = settings
        self._context = ssl_context(settings)
        self._pools: dict[str, http1_pool.Pool] = {}
        self._resolver = GuardedResolver(settings.dev_resolve)

    def _pool(self, tls: ClientTls | None) -> http1_pool.Pool:
        key = "" if tls is None else "mtls:" + tls.key
        pool = self._pools.get(key)
        if pool is None:
            context = self._context if tls is None else tls.context
            settings = self._settings
            pool = self._pools[key] = http1_pool.Pool(
                context, settings.max_connections, settings.keepalive_s,
                per_host=settings.max_per_host, queue_timeout_s=settings.queue_timeout_s,
            )  # fmt: skip
            if tls is not None:
                pool.on_unused = functools.partial(self._drop_pool, key)
        return pool

    def _drop_pool(self, key: str, pool: http1_pool.Pool) -> None:
        if self._pools.get(key) is pool:
            del self._pools[key]

    def connections(self) -> tuple[int, int]:
        """(connections in use, idle connections) over every pool."""
        usage = [pool.usage() for pool in self._pools.values()]
        return sum(used for used, _ in usage), sum(idle for _, idle in usage)

    async def _addresses(self, host: str, port: int) -> list[tuple[str, int]]:
        """Where to connect: the SSRF-checked resolver's answer (an IP literal, already
        checked by `check_literal_host`, is its own answer)."""
        if host.lower() not in self._settings.dev_resolve.targets and _is_ip_literal(host):
            if port != HTTPS_PORT:
                raise AddressRefused(f"port {port} is not allowed (only {HTTPS_PORT})")
            return [(host.strip("[]"), port)]
        results = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        return [(result["host"], result["port"]) for result in results]

    async def open(self, request: UpstreamRequest) -> http1.Response:
        """Send `request` over https; UpstreamFailure on any connection-level failure.

        `request.timeout_s` bounds everything up to the whole response head: the
        wait for a pool slot (`queue_timeout_s` too, then E-UPSTREAM-BUSY), the
        connect, the write, a retry, the head itself."""
        check_literal_host(request.host, self._settings.dev_resolve)
        deadline = asyncio.get_running_loop().time() + request.timeout_s
        try:
            head = _head(request)
            for attempt in (1, 2):
                pool = self._pool(request.tls)  # again for a retry: it may have been dropped
                connection, reused = await pool.checkout(
                    request.host, request.port, self._addresses, deadline
                )
                try:
                    await connection.send(
                        head + request.body,
                        head_request=request.method == "HEAD",
                        deadline=deadline,
                    )
                except http1.UpstreamClosed:
                    pool.release(connection)
                    if attempt == 1 and _retryable(request, connection, reused):
                        continue
                    raise
                except BaseException:
                    pool.release(connection)
                    raise
                timeouts = (request.timeout_s, self._settings.body_timeout_s)
                return http1.Response(connection, pool.release, timeouts, classify_error)
        except Exception as error:
            raise classify_error(error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close every pool."""
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
        await self._resolver.close()


def _retryable(request: UpstreamRequest, connection: http1.Connection, reused: bool) -> bool:
    """A kept-alive connection the upstream had closed before answering anything:
    safe to send again on a new one, for idempotent methods only."""
    return reused and not connection.received_any and request.method in http1.IDEMPOTENT


def _head(request: UpstreamRequest) -> bytes:
    authority = request.host if request.port == HTTPS_PORT else f"{request.host}:{request.port}"
    return http1.request_head(
        request.method,
        authority,
        request_target(request),
        outgoing_headers(request.headers),
        len(request.body),
    )


def request_target(request: UpstreamRequest) -> str:
    """`path?query` as sent: the path as built, each query name and value percent-encoded.

    One of the places an injected path prefix or query value is revealed
    (the head writer `http1.request_head` reveals header values).
    """
    target = wire_text(request.path)
    if request.query:
        target += "?" + "&".join(
            f"{quote(name, safe=_QUERY_SAFE)}={quote(wire_text(value), safe=_QUERY_SAFE)}"
            for name, value in request.query
        )
    return target


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def outgoing_headers(
    headers: Iterable[tuple[str, str | Secret]],
) -> tuple[tuple[str, str | Secret], ...]:
    """The headers sent upstream: every `NOT_FORWARDED` name dropped (the client writes
    `host` and `content-length` itself), identity encoding asked for.

    The caller's headers were sanitised already; this also holds for the
    injected and signed ones. Signers sign exactly these, so what is signed
    is what goes on the wire.
    """
    kept = [(k, v) for k, v in headers if k.lower() not in NOT_FORWARDED]
    return (*kept, ("accept-encoding", "identity"))


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        nested = getattr(current, "os_error", None)
        current = current.__cause__ or current.__context__ or nested
    return seen


_TLS = (ssl.SSLError, ssl.CertificateError)


def classify_error(error: BaseException) -> UpstreamFailure:
    """Map a transport error to a stable code; messages name no secret and no traceback."""
    chain = _chain(error)
    if any(isinstance(e, UpstreamFailure) for e in chain):
        return next(e for e in chain if isinstance(e, UpstreamFailure))
    if any(isinstance(e, AddressRefused) for e in chain):
        return UpstreamForbidden("the upstream address is forbidden")
    if busy := next((e for e in chain if isinstance(e, http1_pool.PoolBusy)), None):
        return UpstreamBusy(str(busy))
    if any(isinstance(e, http1.UnsendableRequest) for e in chain):
        return UpstreamFailure(
            502, "E-UPSTREAM-REQUEST", "the upstream request has a header that cannot be sent"
        )
    violation = next((e for e in chain if isinstance(e, http1.ProtocolViolation)), None)
    if violation is not None:
        message = f"the upstream's response is not valid HTTP/1.1: {violation.reason}"
        return UpstreamFailure(502, "E-UPSTREAM-PROTOCOL", message)
    if any(isinstance(e, _TLS) for e in chain):
        return UpstreamFailure(502, "E-UPSTREAM-TLS", "TLS handshake with the upstream failed")
    body_timeout = next((e for e in chain if isinstance(e, http1.BodyTimeout)), None)
    if body_timeout is not None:
        return UpstreamFailure(504, "E-UPSTREAM-TIMEOUT", str(body_timeout))
    if any(isinstance(e, TimeoutError) for e in chain):
        return UpstreamFailure(504, "E-UPSTREAM-TIMEOUT", "the upstream did not answer in time")
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return UpstreamFailure(502, "E-UPSTREAM-RESET", "the upstream closed the connection")
    return UpstreamFailure(502, "E-UPSTREAM-UNREACHABLE", "the upstream could not be reached")
