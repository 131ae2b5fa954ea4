"""Per-request auth: signing (hmac, aws_sig_v4), fresh tokens (o_auth2), client TLS (mtls).

Static strategies are rendered once per load; these compute something from
the final request just before it is sent: `send_authorized` signs the
upstream request (path, query, headers and body exactly as they go on the
wire), sends it, and on an upstream 401 lets the strategy decide on one
retry (o_auth2 drops the refused token and fetches a new one). The decision
is taken on the status line, before any byte of the body reaches the
caller, so streaming requests are retried the same way. A request that is
not idempotent (POST, PATCH …) is sent again only when the 401 says the
token is invalid or expired (`WWW-Authenticate: Bearer error="invalid_token"`):
otherwise the upstream may already have acted on it. The time `sign` takes
(an o_auth2 token request) counts against the request's own timeout.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from aivault_ops.secret import Secret

if TYPE_CHECKING:
    import ssl

    from aivault_ops.runtime.model import PreparedCall, UpstreamRequest
    from aivault_ops.runtime.response.redaction import SecretRedactor
    from aivault_ops.runtime.upstream.client import UpstreamResponse

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_INVALID_TOKEN = re.compile(r'\bbearer\b.*\berror\s*=\s*"?invalid_token\b', re.I | re.S)


@dataclass(frozen=True)
class Signed:
    """What a strategy adds to one request.

    `headers` are appended (each value carrying a credential is a `Secret`,
    revealed only when the request head is written); `redactor`, when set,
    replaces the credential's redactor for this call (it covers a token
    obtained after the load); `token` is the bearer token used, handed back
    on a 401.
    """

    headers: tuple[tuple[str, str | Secret], ...]
    redactor: SecretRedactor | None = None
    token: Secret | None = None


class RequestAuth(Protocol):
    """A strategy that works on every request."""

    def added_header_names(self) -> frozenset[str]:
        """Lower-case names it sets (callers may not send them; stripped from responses)."""
        ...

    async def sign(self, request: UpstreamRequest, now: datetime) -> Signed:
        """The headers for this final request at `now`."""
        ...

    def unauthorized(self, signed: Signed) -> bool:
        """The upstream answered 401 to `signed`: True to send the request once more."""
        ...


@dataclass(frozen=True, repr=False)
class ClientTls:
    """An mTLS credential's TLS context; `key` identifies its connection pool."""

    key: str
    context: ssl.SSLContext

    def __repr__(self) -> str:
        return "ClientTls([secret])"


class Opener(Protocol):
    """The part of `UpstreamClient` used here."""

    async def open(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send `request`; the response's body still streams."""
        ...


async def sign_call(call: PreparedCall, now: datetime) -> tuple[PreparedCall, Signed | None]:
    """`call` with the strategy's headers (and per-call redactor) applied."""
    if call.auth is None:
        return call, None
    started = time.monotonic()
    signed = await call.auth.sign(call.upstream, now)
    left = max(call.upstream.timeout_s - (time.monotonic() - started), 0.001)
    upstream = replace(
        call.upstream, headers=(*call.upstream.headers, *signed.headers), timeout_s=left
    )
    return replace(call, upstream=upstream, redactor=signed.redactor or call.redactor), signed


async def send_authorized(
    client: Opener, call: PreparedCall, clock: Callable[[], datetime]
) -> tuple[PreparedCall, UpstreamResponse]:
    """Sign and send `call`; after a 401 the strategy may ask for exactly one retry.

    Returns the call as sent (its redactor covers the token used) and the
    response, whose body has not been read.
    """
    sent, signed = await sign_call(call, clock())
    response = await client.open(sent.upstream)
    if response.status_code != 401 or signed is None or call.auth is None:
        return sent, response
    if not call.auth.unauthorized(signed) or not may_resend(call.upstream.method, response):
        return sent, response
    await response.aclose()
    sent, _ = await sign_call(call, clock())
    return sent, await client.open(sent.upstream)


def may_resend(method: str, response: UpstreamResponse) -> bool:
    """After a 401: an idempotent request always, any other only for an invalid token."""
    if method.upper() in IDEMPOTENT:
        return True
    challenge = response.headers.get("www-authenticate")
    return isinstance(challenge, str) and _INVALID_TOKEN.search(challenge) is not None
