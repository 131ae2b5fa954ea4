"""`multi_header`: several templated headers (Plaid's client id and secret)."""

from __future__ import annotations

from aivault_ops.runtime.auth.base import (
    AuthContext,
    AuthUnavailable,
    Injection,
    check_redactable,
    config_list,
)
from aivault_ops.runtime.auth.header import render_header


def build(context: AuthContext) -> Injection:
    """Inject every `{header_name, value_template}` of the list."""
    headers: list[tuple[str, str]] = []
    used: set[str] = set()
    for item in config_list(context.config, "multi_header"):
        header, names = render_header(item, context.variables, "multi_header")
        headers.append(header)
        used |= names
    if len({name.lower() for name, _ in headers}) != len(headers):
        raise AuthUnavailable("auth.multi_header names the same header twice")
    return Injection(
        headers=tuple(headers),
        secret_values=check_redactable(context.variables, frozenset(used)),
    )
