"""Caller request headers: refuse auth-class and malformed ones, drop the rest.

Refused (E-HEADER-FORBIDDEN): `authorization`, `proxy-authorization`,
`cookie`, `x-api-key`, `x-aivault-token` and every header name the
credential injects, case-insensitively. Refused (E-HEADER-INVALID): a name
that is not an HTTP token, a value with CR, LF, NUL or another control
character except TAB. Dropped silently: hop-by-hop headers (`connection`,
`keep-alive`, `proxy-connection`, `te`, `trailer`, `transfer-encoding`,
`upgrade`, and every header named in `Connection`), `host` and
`content-length` (the upstream client sets them), `accept-encoding` (the
runtime negotiates compression itself, because it must redact the decoded
body) and `expect`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aivault_ops.runtime.model import Refusal, echo
from aivault_ops.runtime.response_headers import HOP_BY_HOP, connection_tokens

AUTH_CLASS_REQUEST = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-aivault-token"}
)
DROPPED_REQUEST = HOP_BY_HOP | {"host", "content-length", "accept-encoding", "expect"}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class HeaderPolicy:
    """The request-header rules for one credential (built once per policy load)."""

    __slots__ = ("forbidden",)

    def __init__(self, injected_names: Iterable[str] = ()) -> None:
        self.forbidden = AUTH_CLASS_REQUEST | {name.lower() for name in injected_names}

    def sanitize(
        self, headers: tuple[tuple[str, str], ...], *, passthrough: bool
    ) -> list[tuple[str, str]]:
        """The caller's headers that may go upstream.

        Prevents a caller from overriding or smuggling credentials (its own
        Authorization, a cookie, a second copy of the injected header),
        header injection through CR/LF/NUL, and connection-level tricks
        through hop-by-hop headers (request smuggling via Transfer-Encoding,
        upgrades to another protocol).
        """
        listed = connection_tokens(headers)
        kept: list[tuple[str, str]] = []
        for name, value in headers:
            lower = self._check(name, value, passthrough=passthrough)
            if lower not in DROPPED_REQUEST and lower not in listed:
                kept.append((name, value))
        return kept

    def _check(self, name: str, value: str, *, passthrough: bool) -> str:
        if _TOKEN.fullmatch(name) is None or _BAD_VALUE.search(value):
            raise Refusal(
                400,
                "E-HEADER-INVALID",
                f"header {echo(name)} has an invalid name or a control character (CR, LF, NUL)"
                " in its value",
            )
        lower = name.lower()
        if lower in self.forbidden:
            raise Refusal(403, "E-HEADER-FORBIDDEN", _forbidden_message(name, passthrough))
        return lower


def _forbidden_message(name: str, passthrough: bool) -> str:
    how = (
        "send the consumer token once, as 'Authorization: Bearer' or 'X-Aivault-Token'"
        if passthrough
        else "the envelope's request.headers may not carry credentials"
    )
    return f"header {echo(name)} is an auth-class header the runtime sets itself; {how}"
