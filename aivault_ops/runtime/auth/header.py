"""`header`: one header whose value is a template (`Bearer {{secret}}`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aivault_ops.runtime.auth.base import (
    AuthContext,
    AuthUnavailable,
    Injection,
    check_redactable,
    config_dict,
)
from aivault_ops.runtime.auth.templates import render
from aivault_ops.runtime.policy.checks.names import TOKEN
from aivault_ops.secret import Secret


def render_header(
    item: Mapping[str, Any], variables: Mapping[str, Secret], strategy: str
) -> tuple[tuple[str, Secret], frozenset[str]]:
    """One `{header_name, value_template}` rendered: ((name, value), variables used)."""
    config = config_dict(item, strategy, ("header_name", "value_template"))
    name = config["header_name"]
    if TOKEN.fullmatch(name) is None:
        raise AuthUnavailable(f"auth.{strategy}.header_name {name!r} is not a valid header name")
    rendered = render(config["value_template"], variables, where=f"header {name!r}")
    return (name, rendered.value), rendered.used


def build(context: AuthContext) -> Injection:
    """Inject `header_name: <rendered value_template>`."""
    header, used = render_header(context.config, context.variables, "header")
    return Injection(headers=(header,), secret_values=check_redactable(context.variables, used))
