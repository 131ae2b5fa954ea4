"""What an auth strategy produces: the values injected into every request.

Strategies run once per policy load. Each returns an `Injection` (headers,
query parameters, a path prefix, and the secret values to redact from
responses) or raises `AuthUnavailable` naming what is wrong without quoting
any value. The per-request path only copies the precomputed tuples.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIN_SECRET_LENGTH = 8
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_CHARS = re.compile(r"[\x00\r\n]")


class AuthUnavailable(Exception):
    """A credential that cannot be used; the message names no secret value."""

    def __init__(self, message: str, *, status: int = 503, code: str = "E-CREDENTIAL-UNAVAILABLE"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True)
class AuthContext:
    """Everything a strategy may use: its config and the secret-derived variables."""

    credential: str
    provider: str
    config: Any
    variables: Mapping[str, str]

    def __repr__(self) -> str:
        names = sorted(self.variables)
        return f"AuthContext(credential={self.credential!r}, variables={names!r})"


@dataclass(frozen=True, repr=False)
class Injection:
    """Precomputed injected values for one credential."""

    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    path_prefix: str = ""
    secret_values: tuple[str, ...] = ()

    def header_names(self) -> frozenset[str]:
        """Lower-case names of the injected headers."""
        return frozenset(name.lower() for name, _ in self.headers)

    def query_names(self) -> frozenset[str]:
        """Lower-case names of the injected query parameters."""
        return frozenset(name.lower() for name, _ in self.query)

    def __repr__(self) -> str:
        return (
            f"Injection(headers={[n for n, _ in self.headers]!r}, "
            f"query={[n for n, _ in self.query]!r}, secrets={len(self.secret_values)})"
        )


def check_injected_value(value: str, where: str) -> str:
    """Refuse an injected value with CR, LF or NUL (header/request splitting)."""
    if _FORBIDDEN_CHARS.search(value):
        raise AuthUnavailable(f"{where} contains CR, LF or NUL after rendering")
    return value


def check_redactable(values: Mapping[str, str], names: frozenset[str]) -> tuple[str, ...]:
    """The secret values `names` refer to, each long enough to be redacted reliably.

    A secret shorter than MIN_SECRET_LENGTH characters would either escape
    redaction or make the runtime redact unrelated text, so the credential
    is refused instead.
    """
    for name in sorted(names):
        if len(values[name]) < MIN_SECRET_LENGTH:
            raise AuthUnavailable(
                f"secret variable {name!r} is shorter than {MIN_SECRET_LENGTH} characters"
                " and cannot be redacted reliably from responses"
            )
    return tuple(values[name] for name in sorted(names))


def config_dict(config: Any, strategy: str, required: tuple[str, ...]) -> Mapping[str, Any]:
    """The strategy's config object, with `required` string fields present."""
    if not isinstance(config, Mapping):
        raise AuthUnavailable(f"auth.{strategy} must be an object")
    for key in required:
        if not isinstance(config.get(key), str) or not config[key]:
            raise AuthUnavailable(f"auth.{strategy}.{key} must be a non-empty string")
    return config


def config_list(config: Any, strategy: str) -> list[Any]:
    """The strategy's config list (multi_header, multi_query)."""
    if not isinstance(config, list) or not config:
        raise AuthUnavailable(f"auth.{strategy} must be a non-empty list")
    return config
