"""The data that crosses the line between the runtime's logic and its I/O.

The server turns an HTTP request into an `InboundRequest`; `ActivePolicy`
checks it and returns a `PreparedCall` whose `UpstreamRequest` the upstream
client sends as is. The errors (`Refusal` and the rest of `HttpError`) live
in `runtime/errors.py` and are importable from here too. Upstream requests
carry injected credentials as `Secret` values, revealed only when the
request head is written; their `repr` shows no header values, no query
values and no path (the caller's own may be sensitive too).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aivault_ops.runtime.errors import HttpError as HttpError
from aivault_ops.runtime.errors import Refusal as Refusal
from aivault_ops.runtime.response.headers import ResponseHeaderFilter
from aivault_ops.runtime.response.redaction import SecretRedactor, StreamRedactor
from aivault_ops.secret import Secret

if TYPE_CHECKING:
    from aivault_ops.runtime.auth.request_auth import ClientTls, RequestAuth
    from aivault_ops.runtime.response.blocklist import Blocklist

_MAX_ECHO = 120


def echo(value: str) -> str:
    """A caller-supplied value made safe to quote in a message (repr, truncated)."""
    if len(value) > _MAX_ECHO:
        value = value[:_MAX_ECHO] + "…"
    return repr(value)


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """What the caller asked for, before any policy check.

    `raw_path` is still percent-encoded and starts with "/"; `query` holds
    decoded pairs in order; `headers` are as received (for passthrough the
    server has already removed the header that carried the consumer token).
    """

    method: str
    raw_path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def __repr__(self) -> str:
        return (
            f"InboundRequest(method={self.method!r}, raw_path={echo(self.raw_path)}, "
            f"query_names={[name for name, _ in self.query]!r}, "
            f"header_names={[name for name, _ in self.headers]!r}, body_bytes={len(self.body)})"
        )


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """The exact request to send upstream (credentials already injected).

    `host` and `port` come from policy only; `path` is percent-encoded with
    the credential's path prefixes applied. Injected values (header and
    query values, a path prefix) are `Secret`s until the head is written
    (`upstream.client.request_target`). `repr` is safe.
    """

    method: str
    host: str
    port: int
    path: str | Secret
    query: tuple[tuple[str, str | Secret], ...]
    headers: tuple[tuple[str, str | Secret], ...]
    body: bytes
    timeout_s: float
    tls: ClientTls | None = None

    def __repr__(self) -> str:
        return (
            f"UpstreamRequest(method={self.method!r}, host={self.host!r}, port={self.port}, "
            f"query_params={len(self.query)}, headers={len(self.headers)}, "
            f"body_bytes={len(self.body)}, timeout_s={self.timeout_s})"
        )


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """A request that passed every policy rule, ready for the upstream client."""

    consumer: str
    capability: str
    credential: str
    upstream: UpstreamRequest
    max_response_body_bytes: int | None = None
    rate_limit_per_minute: int | None = None
    max_concurrent: int | None = None
    response_blocklist: Blocklist | None = None
    redactor: SecretRedactor = field(default_factory=SecretRedactor.empty)
    header_filter: ResponseHeaderFilter = field(default_factory=ResponseHeaderFilter.default)
    auth: RequestAuth | None = None

    def response_headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Upstream response headers minus hop-by-hop and auth-class ones, secrets redacted."""
        return self.header_filter.apply(headers, self.redactor)

    def body_redactor(self) -> StreamRedactor:
        """A fresh per-response redactor for the (decoded) upstream body."""
        return self.redactor.stream()
