"""What an auth strategy produces: the values injected into every request.

Strategies run once per policy load. Each returns an `Injection` (headers,
query parameters, a path prefix, and the secret values to redact from
responses) or raises `AuthUnavailable` naming what is wrong without quoting
any value. For the static strategies the per-request path only copies the
precomputed tuples; the per-request ones carry a `request_auth` (hmac,
aws_sig_v4, o_auth2: applied just before sending) or a `client_tls` (mtls).

Every value derived from a secret stays a `Secret` in these objects: the
template variables, the rendered values, the values to redact. Strategies
look at the plaintext only while checking and rendering it at load time;
it is revealed for good only where a request is written or signed.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aivault_ops.runtime.errors import Refusal
from aivault_ops.secret import Secret

if TYPE_CHECKING:
    from aivault_ops.runtime.auth.request_auth import ClientTls, RequestAuth

FormValues = Mapping[str, str | Secret]
PostForm = Callable[[str, FormValues, FormValues], Awaitable[tuple[int, Any]]]
MIN_SECRET_LENGTH = 8
_FORBIDDEN_CHARS = re.compile(r"[\x00\r\n]")


class AuthUnavailable(Refusal):
    """A credential that cannot be used; the message names no secret value.

    Raised when a policy loads; every request for the credential is then
    refused with the same status and code (`CredentialRuntime.require`).
    """

    def __init__(self, message: str, *, status: int = 503, code: str = "E-CREDENTIAL-UNAVAILABLE"):
        super().__init__(status, code, message)


SECRET_SHAPE_CODE = "E-CREDENTIAL-SECRET-INVALID"  # noqa: S105 (an error code)


def secret_invalid(message: str) -> AuthUnavailable:
    """A decrypted secret without the shape its strategy needs (JSON fields, PEM, text):
    503 `E-CREDENTIAL-SECRET-INVALID`; the message names fields, never values."""
    return AuthUnavailable(message, code=SECRET_SHAPE_CODE)


@dataclass(frozen=True)
class AuthServices:
    """What the per-request strategies need from the process, injected at load.

    `state_dir` and `identity` (the runtime's own age x25519 identity) hold
    the encrypted o_auth2 token cache; `post_form` reaches token endpoints
    through the SSRF-checked upstream client; `tls_context` makes a fresh
    context with the runtime's upstream trust, for mTLS client certificates;
    `across_loads` is what strategies keep for the life of the process,
    across policy loads (o_auth2: rotated refresh tokens, single flights).
    """

    state_dir: Path | None = None
    identity: Any = None
    post_form: PostForm | None = None
    clock: Callable[[], float] = time.time
    tls_context: Callable[[], ssl.SSLContext] = ssl.create_default_context
    across_loads: dict[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"AuthServices(state_dir={self.state_dir!r})"


@dataclass(frozen=True)
class AuthContext:
    """Everything a strategy may use: its config and the secret-derived variables."""

    credential: str
    provider: str
    config: Any
    variables: Mapping[str, Secret]
    hosts: tuple[str, ...] = ()
    services: AuthServices = field(default_factory=AuthServices)


@dataclass(frozen=True)
class Injection:
    """Precomputed injected values for one credential (`path_prefix` is a `Secret`
    when the path strategy rendered it)."""

    headers: tuple[tuple[str, Secret], ...] = ()
    query: tuple[tuple[str, Secret], ...] = ()
    path_prefix: str | Secret = ""
    secret_values: tuple[Secret, ...] = ()
    request_auth: RequestAuth | None = None
    client_tls: ClientTls | None = None

    def header_names(self) -> frozenset[str]:
        """Lower-case names of the injected headers, and of the ones signed per request."""
        names = frozenset(name.lower() for name, _ in self.headers)
        if self.request_auth is not None:
            names |= self.request_auth.added_header_names()
        return names

    def query_names(self) -> frozenset[str]:
        """Lower-case names of the injected query parameters."""
        return frozenset(name.lower() for name, _ in self.query)


def check_injected_value(value: str, where: str) -> str:
    """Refuse an injected value with CR, LF or NUL (header/request splitting)."""
    if _FORBIDDEN_CHARS.search(value):
        raise AuthUnavailable(f"{where} contains CR, LF or NUL after rendering")
    return value


def check_redactable(values: Mapping[str, Secret], names: frozenset[str]) -> tuple[Secret, ...]:
    """The secret values `names` refer to, each long enough to be redacted reliably.

    A secret shorter than MIN_SECRET_LENGTH characters would either escape
    redaction or make the runtime redact unrelated text, so the credential
    is refused instead.
    """
    for name in sorted(names):
        if len(values[name].reveal_text()) < MIN_SECRET_LENGTH:
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


Render = Callable[[Any, Mapping[str, Secret], str], tuple[tuple[str, Secret], frozenset[str]]]


def render_list(
    context: AuthContext, strategy: str, render_one: Render, what: str
) -> tuple[tuple[tuple[str, Secret], ...], tuple[Secret, ...]]:
    """Render each item of a multi_* strategy: the (name, value) pairs and the secrets used.

    Refuses a list that names the same header or parameter twice (case-insensitive),
    which would make one of the two values silently win.
    """
    pairs: list[tuple[str, Secret]] = []
    used: set[str] = set()
    for item in config_list(context.config, strategy):
        pair, names = render_one(item, context.variables, strategy)
        pairs.append(pair)
        used |= names
    if len({name.lower() for name, _ in pairs}) != len(pairs):
        raise AuthUnavailable(f"auth.{strategy} names the same {what} twice")
    return tuple(pairs), check_redactable(context.variables, frozenset(used))
