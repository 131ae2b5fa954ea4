"""`multi_header`: several templated headers (Plaid's client id and secret)."""

from __future__ import annotations

from aivault_ops.runtime.auth.base import AuthContext, Injection, render_list
from aivault_ops.runtime.auth.header import render_header


def build(context: AuthContext) -> Injection:
    """Inject every `{header_name, value_template}` of the list."""
    headers, secrets = render_list(context, "multi_header", render_header, "header")
    return Injection(headers=headers, secret_values=secrets)
