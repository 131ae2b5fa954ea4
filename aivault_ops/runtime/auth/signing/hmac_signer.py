"""`hmac`: an HMAC signature over each request, sent in one header.

Config (`auth.hmac`): `algorithm` (`sha256` or `sha512`; anything else is
refused when the policy loads), `header_name`, `value_template`, and an
optional `message` (`request`, `canonical` or `body`; without it `body`, so
a policy compiled before `request` existed keeps its meaning; `registry
new` and `credential create` write `request`). The key is the credential's
`secret` variable, its UTF-8 bytes as stored.

The signed message:

- `request`: the UTF-8 bytes of
  `"{timestamp}\\n{METHOD}\\n{path}\\n{query}\\n{sha256 hex of the body}"`
  where `timestamp` is the same unix-seconds value the template sees,
  `METHOD` is upper case, `path` is the percent-encoded path as sent and
  `query` the query string as sent, without `?` (empty when there is none).
  Nothing of the request is left out, so a signature cannot be moved onto
  another request; replaying the same request is bounded only by how long
  the upstream accepts a timestamp.
- `canonical`: the same without the query line. A captured signature can
  be replayed with another query string.
- `body`: the raw request body bytes exactly as sent (empty for no body).
  Method, path, query and time are not signed: a captured signature can be
  replayed onto any request with the same body, at any time.

`value_template` is sandboxed Jinja2 with strict undefined variables,
compiled once when the policy loads and rendered per request with exactly
three variables: `signature` (lower-case hex), `signature_b64` (standard
base64, padded) and `timestamp` (unix seconds from the injected clock), e.g.
`"t={{timestamp}},v1={{signature}}"`. It must use `signature` or
`signature_b64`. What this prevents: the raw secret is never a template
variable, so no template can send it; only the HMAC leaves the runtime.
The key is held as a `Secret` and revealed only to compute an HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any, Final

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from aivault_ops.runtime.auth.base import (
    AuthUnavailable,
    check_injected_value,
    check_redactable,
    config_dict,
)
from aivault_ops.runtime.policy.checks.names import TOKEN
from aivault_ops.secret import Secret

ALGORITHMS: Final[dict[str, Callable[[], Any]]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
MESSAGES: Final = ("body", "canonical", "request")
DEFAULT_MESSAGE: Final = "body"  # the meaning of a policy without `message`
VARIABLES: Final = frozenset({"signature", "signature_b64", "timestamp"})
_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


def canonical_message(timestamp: int, method: str, path: str, body: bytes) -> bytes:
    """`"{timestamp}\\n{METHOD}\\n{path}\\n{sha256 hex of body}"` as UTF-8."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{timestamp}\n{method.upper()}\n{path}\n{digest}".encode()


def request_message(timestamp: int, method: str, path: str, query: str, body: bytes) -> bytes:
    """`"{timestamp}\\n{METHOD}\\n{path}\\n{query}\\n{sha256 hex of body}"` as UTF-8."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{timestamp}\n{method.upper()}\n{path}\n{query}\n{digest}".encode()


def compile_template(template: str) -> jinja2.Template:
    """Compile `value_template`; refuse unknown variables and a template without a signature."""
    try:
        used = meta.find_undeclared_variables(_ENV.parse(template))
        compiled = _ENV.from_string(template)
    except jinja2.TemplateSyntaxError as error:
        raise AuthUnavailable(
            f"auth.hmac.value_template is not a valid template (line {error.lineno})"
        ) from None
    unknown = sorted(used - VARIABLES)
    if unknown:
        raise AuthUnavailable(
            f"auth.hmac.value_template may use only signature, signature_b64 and timestamp,"
            f" not {', '.join(unknown)}"
        )
    if not used & {"signature", "signature_b64"}:
        raise AuthUnavailable(
            "auth.hmac.value_template must use {{signature}} or {{signature_b64}}"
        )
    return compiled


class HmacSigner:
    """Signs requests for one credential; holds the key, never shows it."""

    def __init__(
        self,
        *,
        key: Secret,
        algorithm: str,
        header_name: str,
        template: str,
        message: str = DEFAULT_MESSAGE,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise AuthUnavailable(
                f"auth.hmac.algorithm must be sha256 or sha512, not {algorithm!r}"
            )
        if message not in MESSAGES:
            raise AuthUnavailable(
                f"auth.hmac.message must be request, canonical or body, not {message!r}"
            )
        if TOKEN.fullmatch(header_name) is None:
            raise AuthUnavailable(
                f"auth.hmac.header_name {header_name!r} is not a valid header name"
            )
        self._key = key
        self._digest = ALGORITHMS[algorithm]
        self.algorithm = algorithm
        self.header_name = header_name
        self.message_kind = message
        self._template = compile_template(template)
        try:
            self._render(b"\x00" * 64, 0)
        except jinja2.TemplateError as error:
            raise AuthUnavailable(
                f"auth.hmac.value_template failed to render ({type(error).__name__})"
            ) from None

    @classmethod
    def from_config(cls, config: Any, secret: Secret) -> HmacSigner:
        """Build from `auth.hmac` and the credential's `secret` (at least 8 characters)."""
        spec = config_dict(config, "hmac", ("algorithm", "header_name", "value_template"))
        check_redactable({"secret": secret}, frozenset({"secret"}))
        return cls(
            key=secret,
            algorithm=spec["algorithm"],
            header_name=spec["header_name"],
            template=spec["value_template"],
            message=spec.get("message", DEFAULT_MESSAGE),
        )

    def added_header_names(self) -> frozenset[str]:
        """Lower-case names this signer sets: callers may not send them."""
        return frozenset({self.header_name.lower()})

    def message(
        self, method: str, path: str, body: bytes, timestamp: int, *, query: str = ""
    ) -> bytes:
        """The bytes the HMAC covers (see the module docstring)."""
        if self.message_kind == "request":
            return request_message(timestamp, method, path, query, body)
        if self.message_kind == "canonical":
            return canonical_message(timestamp, method, path, body)
        return body

    def sign(
        self, method: str, path: str, body: bytes, now: float, *, query: str = ""
    ) -> tuple[str, str]:
        """The header `(header_name, rendered value_template)` for this request at `now`;
        `path` and `query` as sent (percent-encoded, the query without `?`)."""
        timestamp = int(now)
        message = self.message(method, path, body, timestamp, query=query)
        mac = hmac.new(self._key.reveal_bytes(), message, self._digest)
        return self.header_name, self._render(mac.digest(), timestamp)

    def _render(self, mac: bytes, timestamp: int) -> str:
        value = self._template.render(
            signature=mac.hex(),
            signature_b64=base64.b64encode(mac).decode("ascii"),
            timestamp=str(timestamp),
        )
        return check_injected_value(value, f"header {self.header_name!r}")

    def __repr__(self) -> str:
        return f"HmacSigner(algorithm={self.algorithm!r}, header_name={self.header_name!r})"
