"""`*.yaml.j2` manifests: rendered with a sandboxed Jinja2 and strict undefined.

The values come from the Project's `environments.<env>.values`, plus
`environment` (the chosen name). Undefined names are errors, never empty
strings, so a missing value cannot silently widen a policy.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateProblem(Exception):
    """A template error at a 1-based line."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class _NoTemplates(jinja2.BaseLoader):
    """Manifests are rendered alone: `{% include %}` and `{% import %}` read no files."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, None]:
        raise jinja2.TemplateError("include and import are not available in manifest templates")


_ENVIRONMENT = ImmutableSandboxedEnvironment(
    loader=_NoTemplates(),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


def render(text: str, *, name: str, values: Mapping[str, Any]) -> str:
    """Render one manifest template; raise `TemplateProblem` with the line."""
    try:
        template = _ENVIRONMENT.from_string(text)
        template.name = name
        return template.render(**values)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateProblem(f"template syntax error: {error.message}", error.lineno) from None
    except jinja2.UndefinedError as error:
        raise TemplateProblem(
            f"{error.message} (define it in the Project's environments.<env>.values"
            " and pass --env)",
            _template_line(error),
        ) from None
    except jinja2.TemplateError as error:  # SecurityError and friends
        raise TemplateProblem(f"template error: {error.message}", _template_line(error)) from None


def _template_line(error: BaseException) -> int:
    frames = traceback.extract_tb(error.__traceback__)
    lines = [frame.lineno for frame in frames if frame.filename == "<template>" and frame.lineno]
    return lines[-1] if lines else 1
