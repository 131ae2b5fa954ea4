"""The one list of headers that never travel through the runtime as they came.

`HOP_BY_HOP` describe a single connection (RFC 9110 §7.6.1), in either
direction: the caller's to the runtime, or the runtime's to the upstream.
A `Connection` header may declare more (`connection_tokens`).

`NOT_FORWARDED` is every caller request header the runtime never sends
upstream: the hop-by-hop ones, `host` and `content-length` (the upstream
client writes them), `accept-encoding` (the runtime asks for identity
itself, because it must redact the decoded body) and `expect`. The request
sanitiser (`policy/checks/headers.py`) drops them (and refuses any other
spelling of them); the upstream client drops them again from the final
headers, injected and signed ones included. The response filter
(`response/headers.py`) drops `HOP_BY_HOP` from the upstream's answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED: Final = HOP_BY_HOP | {"host", "content-length", "accept-encoding", "expect"}


def connection_tokens(headers: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Header names listed in `Connection` headers (hop-by-hop by declaration)."""
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    )
