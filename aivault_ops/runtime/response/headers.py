"""Which upstream response headers reach the caller.

Hop-by-hop headers describe the upstream connection, not the response;
auth-class headers (cookies, authentication challenges, echoed
credentials) belong to the broker's session with the upstream, never to
the caller; and `content-length`/`content-encoding` no longer describe the
body the caller gets, because the runtime decodes the upstream body and
redacts secrets in it (send the decoded bytes, e.g. httpx `aiter_bytes()`,
and let the server frame them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from aivault_ops.runtime.hop_by_hop import HOP_BY_HOP, connection_tokens

if TYPE_CHECKING:
    from aivault_ops.runtime.response.redaction import SecretRedactor

AUTH_CLASS_RESPONSE = frozenset(
    {
        "set-cookie",
        "set-cookie2",
        "www-authenticate",
        "proxy-authenticate",
        "authorization",
        "proxy-authorization",
        "authentication-info",
        "proxy-authentication-info",
    }
)
REFRAMED = frozenset({"content-length", "content-encoding"})


class ResponseHeaderFilter:
    """Strips hop-by-hop and auth-class response headers, including injected names.

    Prevents a caller from receiving the upstream's cookies or challenges, or a
    header that echoes the injected credential under its own name; a header
    whose name holds a secret (in any spelling or letter case) is dropped,
    since `[REDACTED]` is no valid name, and every remaining value is passed
    through the secret redactor.
    """

    __slots__ = ("_dropped",)

    def __init__(self, injected_names: Iterable[str] = ()) -> None:
        names = {name.lower() for name in injected_names}
        self._dropped = HOP_BY_HOP | AUTH_CLASS_RESPONSE | REFRAMED | names

    @classmethod
    def default(cls) -> ResponseHeaderFilter:
        """A filter for a credential that injects no header."""
        return cls()

    def apply(
        self, headers: Iterable[tuple[str, str]], redactor: SecretRedactor
    ) -> list[tuple[str, str]]:
        """The headers the caller may see, with secret values redacted."""
        items = list(headers)
        listed = connection_tokens(items)
        dropped = self._dropped | listed if listed else self._dropped
        return redactor.redact_headers([item for item in items if item[0].lower() not in dropped])
