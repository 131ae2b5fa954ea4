"""Any auth strategy name this runtime does not know."""

from __future__ import annotations

from aivault_ops.runtime.auth.base import AuthContext, AuthUnavailable, Injection


def build(context: AuthContext) -> Injection:
    """Always unavailable: the credential answers 501 E-AUTH-UNSUPPORTED.

    Fails closed for that credential only; the rest of the bundle still loads.
    """
    raise AuthUnavailable(
        f"credential {context.credential!r} uses an auth strategy this runtime does not support",
        status=501,
        code="E-AUTH-UNSUPPORTED",
    )
