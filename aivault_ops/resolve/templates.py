"""Auth templates (`Bearer {{secret}}`) must parse in the sandboxed Jinja2."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import ManifestSource

_TEMPLATE_KEYS = ("value_template", "prefix_template")
HMAC_REQUEST_VARIABLES = frozenset({"signature", "signature_b64", "timestamp"})
_PARSER = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


def template_strings(
    auth: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every template string inside an auth spec, with its path."""
    if isinstance(auth, dict):
        for key, value in auth.items():
            if key in _TEMPLATE_KEYS and isinstance(value, str):
                yield (*path, key), value
            else:
                yield from template_strings(value, (*path, key))
    elif isinstance(auth, list):
        for index, item in enumerate(auth):
            yield from template_strings(item, (*path, index))


def template_variables(auth: Any) -> set[str]:
    """Every secret variable the auth templates read (`{{secret}}` → "secret").

    `hmac`'s `value_template` reads per-request values the runtime computes
    (`signature`, `signature_b64`, `timestamp`), not secrets: they are left out.
    """
    names: set[str] = set()
    for _, text in template_strings(auth, ()):
        try:
            names |= _variables(text)
        except jinja2.TemplateSyntaxError:
            continue  # reported by check_auth_templates
    if isinstance(auth, dict) and "hmac" in auth:
        names -= HMAC_REQUEST_VARIABLES
    return names


def check_auth_templates(
    auth: Any, source: ManifestSource, path: tuple[str | int, ...], report: Report
) -> bool:
    """Report templates that do not parse; True when all of them do."""
    ok = True
    for where, text in template_strings(auth, path):
        try:
            _variables(text)
        except jinja2.TemplateSyntaxError as error:
            report.add(source.at(*where), "E-AUTH-TEMPLATE", f"auth template: {error.message}")
            ok = False
    return ok


def variables(text: str) -> frozenset[str]:
    """The variables one template reads; raises `TemplateSyntaxError`."""
    return _variables(text)


@lru_cache(maxsize=1024)
def _variables(text: str) -> frozenset[str]:
    """The variables a template reads; raises `TemplateSyntaxError` (not cached).

    Cached: a project of 500 credentials has 500 copies of `Bearer {{secret}}`.
    """
    return frozenset(meta.find_undeclared_variables(_PARSER.parse(text)))
