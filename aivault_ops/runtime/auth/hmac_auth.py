"""`hmac`: an HMAC of each request in one header (see `runtime/auth/signing/hmac_signer.py`)."""

from __future__ import annotations

from datetime import datetime

from aivault_ops.runtime.auth.base import AuthContext, AuthUnavailable, Injection
from aivault_ops.runtime.auth.request_auth import Signed
from aivault_ops.runtime.auth.signing.hmac_signer import HmacSigner
from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.upstream.client import request_target
from aivault_ops.secret import Secret


class HmacAuth:
    """Signs the final method, path, query and body; the key itself is never sent."""

    def __init__(self, signer: HmacSigner) -> None:
        self._signer = signer

    def added_header_names(self) -> frozenset[str]:
        """The signature header."""
        return self._signer.added_header_names()

    async def sign(self, request: UpstreamRequest, now: datetime) -> Signed:
        """`header_name: <value_template>` over this request at `now` (the path and query
        revealed to be signed exactly as sent; the header value a `Secret` like every
        injected value)."""
        path, _, query = request_target(request).partition("?")
        name, value = self._signer.sign(
            request.method, path, request.body, now.timestamp(), query=query
        )
        return Signed(((name, Secret(value)),))

    def unauthorized(self, signed: Signed) -> bool:
        """A signature is not refreshed: a 401 goes to the caller."""
        return False

    def __repr__(self) -> str:
        return f"HmacAuth({self._signer!r})"


def build(context: AuthContext) -> Injection:
    """An `HmacSigner` over the `secret` variable; the key is redacted from responses."""
    secret = context.variables.get("secret")
    if secret is None:
        raise AuthUnavailable("auth.hmac needs the credential's 'secret' placeholder")
    signer = HmacSigner.from_config(context.config, secret)
    return Injection(secret_values=(secret,), request_auth=HmacAuth(signer))
