"""The size limits on a caller's request, in one place (documented in docs/runtime.md).

Both routes get the same limits: the envelope's `request` fields and a
passthrough request's path, query and headers are checked in
`ActivePolicy.prepare` (path, headers, query) and in the envelope parser
(nesting depth). Lengths count characters of the decoded text. Each
violation is a 400 naming the limit, and nothing is sent upstream.

They bound the work and memory one request can cost the runtime, and keep
requests inside what upstream servers and proxies accept, so no upstream
truncates or splits what the policy checked.
"""

from __future__ import annotations

from typing import Final

from aivault_ops.runtime.model import Refusal

MAX_ENVELOPE_DEPTH: Final = 16
MAX_ENVELOPE_CONTAINERS: Final = 1024
MAX_PATH_LENGTH: Final = 8192
MAX_HEADER_COUNT: Final = 100
MAX_HEADER_NAME_LENGTH: Final = 256
MAX_HEADER_VALUE_LENGTH: Final = 8192
MAX_HEADER_TOTAL_LENGTH: Final = 65536
MAX_QUERY_COUNT: Final = 256
MAX_QUERY_NAME_LENGTH: Final = 256
MAX_QUERY_VALUE_LENGTH: Final = 8192
MAX_QUERY_TOTAL_LENGTH: Final = 32768


def over_limit(code: str, what: str, limit: int, unit: str = "") -> Refusal:
    """The 400 refusal for a request part over its limit (names the limit, never the value)."""
    return Refusal(400, code, f"{what} exceeds the runtime's limit of {limit} {unit}".rstrip())
