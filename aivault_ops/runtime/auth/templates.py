"""Auth value templates: sandboxed Jinja2, rendered once per policy load.

`{{secret}}`, `{{api_key}}` … are rendered with an immutable sandboxed
environment, strict undefined variables and no autoescaping. Rendering
happens when a policy loads (secrets do not change within a bundle), never
per request. The variables are `Secret`s and so is the result: the
plaintext exists only while a template is rendered.

Most templates are plain text around `{{ name }}` placeholders
(`Bearer {{secret}}`). Those are substituted directly, with the result
Jinja2 would give, so a runtime whose bundle has only such templates never
imports Jinja2 (about 7 MiB of resident memory); anything else (filters,
expressions, statements, comments, braces in the text, keywords used as
names, undefined variables) goes through Jinja2.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from aivault_ops.runtime.auth.base import AuthUnavailable, check_injected_value
from aivault_ops.runtime.policy.shared_values import fresh_text
from aivault_ops.secret import Secret

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

_PLACEHOLDER = re.compile(r"\{\{ *([A-Za-z_][A-Za-z0-9_]*) *\}\}")
_NOT_PLAIN = re.compile(r"[{}\r\n]")
_JINJA_CONSTANTS = frozenset({"true", "false", "none"})
JINJA_GLOBALS = frozenset({"cycler", "dict", "joiner", "lipsum", "namespace", "range"})
"""Names Jinja2's environment defines itself (a test keeps this in step with Jinja2)."""


@dataclass(frozen=True)
class Rendered:
    """A rendered value and the variables it used."""

    value: Secret
    used: frozenset[str]


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def _substitute(template: str, variables: Mapping[str, Secret]) -> str | None:
    """The rendered text of a plain-placeholder template; None when Jinja2 must decide.

    `re.split` with one group alternates literal text and placeholder names.
    """
    parts = _PLACEHOLDER.split(template)
    literals, names = parts[0::2], parts[1::2]
    if any(_NOT_PLAIN.search(text) for text in literals):
        return None
    if any(_is_reserved(name) or name not in variables for name in names):
        return None
    parts[1::2] = [variables[name].reveal_text() for name in names]
    return "".join(parts)


def _is_reserved(name: str) -> bool:
    return keyword.iskeyword(name) or name in _JINJA_CONSTANTS or name in JINJA_GLOBALS


def _render_jinja(
    template: str, variables: Mapping[str, Secret], where: str
) -> tuple[str, frozenset[str]]:
    import jinja2
    from jinja2 import meta

    environment = _environment()
    try:
        used = frozenset(meta.find_undeclared_variables(environment.parse(template)))
        missing = sorted(used - set(variables))
        if missing:
            raise AuthUnavailable(f"{where} uses undefined variable(s) {', '.join(missing)}")
        plain = {name: variables[name].reveal_text() for name in used}
        value = environment.from_string(template).render(plain)
    except jinja2.TemplateSyntaxError as error:
        raise AuthUnavailable(f"{where} is not a valid template (line {error.lineno})") from None
    except jinja2.TemplateError as error:
        raise AuthUnavailable(f"{where} failed to render ({type(error).__name__})") from None
    return value, used


def render(template: str, variables: Mapping[str, Secret], *, where: str) -> Rendered:
    """Compile and render one template; the result may not contain CR, LF or NUL.

    The result is a new string (never a piece of the decoded policy JSON,
    see `shared_values`) held in a `Secret`.
    """
    value = _substitute(template, variables)
    if value is None:
        value, used = _render_jinja(template, variables, where)
    else:
        used = frozenset(_PLACEHOLDER.findall(template))
    return Rendered(Secret(fresh_text(check_injected_value(value, where))), used)
