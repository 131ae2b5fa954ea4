"""Auth value templates: sandboxed Jinja2, rendered once per policy load.

`{{secret}}`, `{{api_key}}` … are rendered with an immutable sandboxed
environment, strict undefined variables and no autoescaping. Rendering
happens when a policy loads (secrets do not change within a bundle), never
per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from aivault_ops.runtime.auth.base import AuthUnavailable, check_injected_value

_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
)


@dataclass(frozen=True, repr=False)
class Rendered:
    """A rendered value and the variables it used."""

    value: str
    used: frozenset[str]


def render(template: str, variables: Mapping[str, str], *, where: str) -> Rendered:
    """Compile and render one template; the result may not contain CR, LF or NUL."""
    try:
        used = frozenset(meta.find_undeclared_variables(_ENV.parse(template)))
        missing = sorted(used - set(variables))
        if missing:
            raise AuthUnavailable(f"{where} uses undefined variable(s) {', '.join(missing)}")
        value = _ENV.from_string(template).render(dict(variables))
    except jinja2.TemplateSyntaxError as error:
        raise AuthUnavailable(f"{where} is not a valid template (line {error.lineno})") from None
    except jinja2.TemplateError as error:
        raise AuthUnavailable(f"{where} failed to render ({type(error).__name__})") from None
    return Rendered(check_injected_value(value, where), used)
