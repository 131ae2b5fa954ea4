"""`multi_query`: several templated query parameters (Trello's key and token)."""

from __future__ import annotations

from aivault_ops.runtime.auth.base import (
    AuthContext,
    AuthUnavailable,
    Injection,
    check_redactable,
    config_list,
)
from aivault_ops.runtime.auth.query import render_param


def build(context: AuthContext) -> Injection:
    """Append every `{param_name, value_template}` of the list to the query."""
    params: list[tuple[str, str]] = []
    used: set[str] = set()
    for item in config_list(context.config, "multi_query"):
        param, names = render_param(item, context.variables, "multi_query")
        params.append(param)
        used |= names
    if len({name.lower() for name, _ in params}) != len(params):
        raise AuthUnavailable("auth.multi_query names the same parameter twice")
    return Injection(
        query=tuple(params),
        secret_values=check_redactable(context.variables, frozenset(used)),
    )
