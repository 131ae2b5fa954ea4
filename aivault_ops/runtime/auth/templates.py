"""Auth value templates: sandboxed Jinja2, rendered once per policy load.

`{{secret}}`, `{{api_key}}` … are rendered with an immutable sandboxed
environment, strict undefined variables and no autoescaping. Rendering
happens when a policy loads (secrets do not change within a bundle), never
per request.

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

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

_PLACEHOLDER = re.compile(r"\{\{ *([A-Za-z_][A-Za-z0-9_]*) *\}\}")
_NOT_PLAIN = re.compile(r"[{}\r\n]")
_JINJA_CONSTANTS = frozenset({"true", "false", "none"})
JINJA_GLOBALS = frozenset({"cycler", "dict", "joiner", "lipsum", "namespace", "range"})
"""Names Jinja2's environment defines itself (a test keeps this in step with Jinja2)."""


@dataclass(frozen=True, repr=False)
class Rendered:
    """A rendered value and the variables it used."""

    value: str
    used: frozenset[str]


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def _substitute(template: str, variables: Mapping[str, str]) -> str | None:
    """The rendered text of a plain-placeholder template; None when Jinja2 must decide.

    `re.split` with one group alternates literal text and placeholder names.
    """
    parts = _PLACEHOLDER.split(template)
    literals, names = parts[0::2], parts[1::2]
    if any(_NOT_PLAIN.search(text) for text in literals):
        return None
    if any(_is_reserved(name) or name not in variables for name in names):
        return None
    parts[1::2] = [variables[name] for name in names]
    return "".join(parts)


def _is_reserved(name: str) -> bool:
    return keyword.iskeyword(name) or name in _JINJA_CONSTANTS or name in JINJA_GLOBALS


def _render_jinja(template: str, variables: Mapping[str, str], where: str) -> Rendered:
    import jinja2
    from jinja2 import meta

    environment = _environment()
    try:
        used = frozenset(meta.find_undeclared_variables(environment.parse(template)))
        missing = sorted(used - set(variables))
        if missing:
            raise AuthUnavailable(f"{where} uses undefined variable(s) {', '.join(missing)}")
        value = environment.from_string(template).render(dict(variables))
    except jinja2.TemplateSyntaxError as error:
        raise AuthUnavailable(f"{where} is not a valid template (line {error.lineno})") from None
    except jinja2.TemplateError as error:
        raise AuthUnavailable(f"{where} failed to render ({type(error).__name__})") from None
    return Rendered(value, used)


def render(template: str, variables: Mapping[str, str], *, where: str) -> Rendered:
    """Compile and render one template; the result may not contain CR, LF or NUL."""
    value = _substitute(template, variables)
    if value is None:
        rendered = _render_jinja(template, variables, where)
    else:
        rendered = Rendered(value, frozenset(_PLACEHOLDER.findall(template)))
    return Rendered(check_injected_value(rendered.value, where), rendered.used)
