"""`query`: one query parameter (`?key={{secret}}`, Gemini and YouTube)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aivault_ops.runtime.auth.base import AuthContext, Injection, check_redactable, config_dict
from aivault_ops.runtime.auth.templates import render
from aivault_ops.secret import Secret

DEFAULT_TEMPLATE = "{{secret}}"


def render_param(
    item: Mapping[str, Any], variables: Mapping[str, Secret], strategy: str
) -> tuple[tuple[str, Secret], frozenset[str]]:
    """One `{param_name, value_template?}` rendered (template defaults to `{{secret}}`)."""
    config = config_dict(item, strategy, ("param_name",))
    template = config.get("value_template", DEFAULT_TEMPLATE)
    name = config["param_name"]
    rendered = render(str(template), variables, where=f"query parameter {name!r}")
    return (name, rendered.value), rendered.used


def build(context: AuthContext) -> Injection:
    """Append `param_name=<value>` to every upstream query."""
    param, used = render_param(context.config, context.variables, "query")
    return Injection(query=(param,), secret_values=check_redactable(context.variables, used))
