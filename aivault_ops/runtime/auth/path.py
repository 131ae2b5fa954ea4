"""`path`: a templated prefix before the upstream path (Telegram's `/bot{{secret}}`)."""

from __future__ import annotations

from urllib.parse import quote

from aivault_ops.runtime.auth.base import (
    AuthContext,
    AuthUnavailable,
    Injection,
    check_redactable,
    config_dict,
)
from aivault_ops.runtime.auth.templates import render
from aivault_ops.runtime.policy.checks.path import PATH_SAFE
from aivault_ops.secret import Secret


def build(context: AuthContext) -> Injection:
    """Prepend the rendered, percent-encoded `prefix_template` to every upstream path.

    The rendered prefix must start with "/" and may not contain empty, "."
    or ".." segments, so a secret cannot move the request elsewhere. The
    prefix stays a `Secret`, and so does every upstream path it begins.
    """
    config = config_dict(context.config, "path", ("prefix_template",))
    rendered = render(config["prefix_template"], context.variables, where="auth.path prefix")
    prefix = quote(rendered.value.reveal_text(), safe=PATH_SAFE)  # a % in the value is data
    segments = prefix.split("/")
    if not prefix.startswith("/") or any(s in ("", ".", "..") for s in segments[1:]):
        raise AuthUnavailable(
            "auth.path prefix must start with '/' and have no empty, '.' or '..' segments"
        )
    return Injection(
        path_prefix=Secret(prefix),
        secret_values=check_redactable(context.variables, rendered.used),
    )
