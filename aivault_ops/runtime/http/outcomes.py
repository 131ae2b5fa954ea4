"""How an invoke ended: the decision record every request fills in, and the fixed
errors the server answers with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aivault_ops.runtime.errors import Failure, HttpError, Refusal

INTERNAL_ERROR: Final = Failure(500, "E-INTERNAL", "internal error")
NO_CAPABILITY: Final = "(none)"
UNKNOWN_CAPABILITY: Final = "(unknown)"
CLIENT_CLOSED: Final = Failure(499, "E-CLIENT-CLOSED", "the caller closed the connection")
AUDIT_UNAVAILABLE: Final = Failure(
    503,
    "E-AUDIT-UNAVAILABLE",
    "the audit log cannot be written; nothing was sent upstream (see /status)",
)


class RateLimited(Refusal):
    """429: the (consumer, capability) token bucket is empty; carries `Retry-After`."""

    def __init__(self, limit: int, capability: str, retry_after: str) -> None:
        super().__init__(
            429,
            "E-RATE-LIMITED",
            f"capability {capability!r} allows {limit} requests per minute; retry later",
        )
        self.retry_after = retry_after


@dataclass
class Decision:
    """What one invoke request did, for its audit record and metrics: who asked for
    what, then how it was answered (`error` is None for an upstream answer)."""

    method: str
    path: str
    started: float
    consumer: str | None = None
    capability: str | None = None
    credential: str | None = None
    serial: int | None = None
    error: HttpError | None = None
    status: int = 0
    sent: int = 0

    def answered(self, status: int, sent: int, error: HttpError | None = None) -> None:
        """Record how the request was answered."""
        self.status, self.sent, self.error = status, sent, error


def verdict(error: HttpError | None) -> str:
    """`allow` (answered by the upstream), else the error's own verdict (`deny`, `error`)."""
    return "allow" if error is None else error.verdict
