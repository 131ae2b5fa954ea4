"""What the runtime takes from a token endpoint's answer, and what it refuses.

Pure functions over the decoded JSON answer:

- an error answer shows only one of the error codes RFC 6749 defines
  (§5.2, and §4.1.2.1's `server_error`, `temporarily_unavailable`, …);
  any other `error` value is replaced by a neutral word, since a provider
  may put anything there (even a secret it echoes);
- an access token must be an RFC 6750 `b64token` (letters, digits and
  `-._~+/`, then `=` padding) of at least MIN_SECRET_LENGTH characters: it
  is injected into a header and redacted from responses;
- a rotated refresh token is read apart from the rest of the answer, so it
  can be kept even when the rest of the answer is refused; one shorter
  than MIN_SECRET_LENGTH is refused (it could not be redacted reliably).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from aivault_ops.runtime.auth.base import MIN_SECRET_LENGTH
from aivault_ops.secret import Secret

DEFAULT_TTL: Final = 300.0
ERROR_CODES: Final = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "unsupported_response_type",
        "server_error",
        "temporarily_unavailable",
    }
)
UNLISTED_ERROR: Final = "unlisted error code"
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class Unusable(ValueError):
    """The answer lacks a usable field; `str()` names the field, never its value."""


def error_code(body: Any) -> str:
    """` (<code>)` for an RFC 6749 error code, ` (unlisted error code)` for any other
    `error` value, and nothing when the answer has no `error`."""
    code = body.get("error") if isinstance(body, dict) else None
    if code is None:
        return ""
    listed = isinstance(code, str) and code in ERROR_CODES
    return f" ({code if listed else UNLISTED_ERROR})"


def rotated_refresh_token(body: Any) -> Secret | None:
    """The refresh token the answer rotates to (None: not rotated); Unusable if refused.

    Absent, null or empty means the provider kept the refresh token as is.
    """
    rotated = body.get("refresh_token") if isinstance(body, dict) else None
    if rotated is None or rotated == "":
        return None
    if not isinstance(rotated, str) or len(rotated) < MIN_SECRET_LENGTH:
        raise Unusable("refresh_token")
    return Secret(rotated)


def access_token(body: Any) -> tuple[Secret, float]:
    """(access_token, lifetime in seconds) of an answer; Unusable naming the bad field."""
    if not isinstance(body, dict):
        raise Unusable("body")
    value = body.get("access_token")
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        raise Unusable("access_token")
    if _B64TOKEN.fullmatch(value) is None:
        raise Unusable("access_token")
    token_type = body.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise Unusable("token_type")
    return Secret(value), _expires_in(body)


def _expires_in(body: Mapping[str, Any]) -> float:
    raw = body.get("expires_in", DEFAULT_TTL)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = 0.0
    if not value > 0:
        raise Unusable("expires_in")
    return value
