"""`aws_sig_v4`: AWS Signature Version 4 per request (see `runtime/auth/signing/sigv4.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from aivault_ops.runtime.auth.base import AuthContext, AuthUnavailable, Injection, check_redactable
from aivault_ops.runtime.auth.request_auth import Signed
from aivault_ops.runtime.auth.signing.sigv4 import AwsCredentials, SigV4Request, SigV4Signer
from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.upstream.client import outgoing_headers
from aivault_ops.secret import Secret, wire_text

_CREDENTIALS: Final = frozenset({"Authorization", "X-Amz-Security-Token"})


class SigV4Auth:
    """Signs the request exactly as sent: path, query, headers, body hash."""

    def __init__(self, signer: SigV4Signer) -> None:
        self._signer = signer

    def added_header_names(self) -> frozenset[str]:
        """Authorization and the X-Amz-* headers."""
        return self._signer.added_header_names()

    async def sign(self, request: UpstreamRequest, now: datetime) -> Signed:
        """The SigV4 headers for this request at `now`; the ones carrying the access key id
        or the session token as `Secret`s.

        The request is signed as it goes on the wire, so its injected values
        (if any) are revealed into the short-lived `SigV4Request`.
        """
        signable = SigV4Request(
            method=request.method,
            host=request.host,
            path=wire_text(request.path),
            query=_revealed(request.query),
            headers=_revealed(outgoing_headers(request.headers)),
            body=request.body,
            port=request.port,
        )
        added = self._signer.sign(signable, now)
        return Signed(tuple((n, Secret(v) if n in _CREDENTIALS else v) for n, v in added))

    def unauthorized(self, signed: Signed) -> bool:
        """A signature is not refreshed: a 401 goes to the caller."""
        return False

    def __repr__(self) -> str:
        return f"SigV4Auth({self._signer!r})"


def _revealed(pairs: tuple[tuple[str, str | Secret], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, v if isinstance(v, str) else v.reveal_text()) for name, v in pairs)


def build(context: AuthContext) -> Injection:
    """A signer from `auth.aws_sig_v4` and the secret JSON; its secrets are redacted."""
    secret = context.variables.get("secret")
    if secret is None:
        raise AuthUnavailable("auth.aws_sig_v4 needs the credential's 'secret' placeholder")
    credentials = AwsCredentials.from_json(secret.reveal_text())
    signer = SigV4Signer.from_config(context.config, credentials)
    named = dict(
        zip(("secret_access_key", "session_token"), credentials.secret_values(), strict=False)
    )
    values = check_redactable(named, frozenset(named))
    return Injection(secret_values=values, request_auth=SigV4Auth(signer))
