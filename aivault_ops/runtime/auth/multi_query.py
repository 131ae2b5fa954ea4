"""`multi_query`: several templated query parameters (Trello's key and token)."""

from __future__ import annotations

from aivault_ops.runtime.auth.base import AuthContext, Injection, render_list
from aivault_ops.runtime.auth.query import render_param


def build(context: AuthContext) -> Injection:
    """Append every `{param_name, value_template}` of the list to the query."""
    params, secrets = render_list(context, "multi_query", render_param, "parameter")
    return Injection(query=params, secret_values=secrets)
