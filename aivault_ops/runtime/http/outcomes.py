"""How an invoke ended: who asked for what (`Invocation`), how it was answered
(`Ending`), and the fixed errors the server answers with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from aivault_ops.runtime.errors import Failure, HttpError, Refusal

INTERNAL_ERROR: Final = Failure(500, "E-INTERNAL", "internal error")
NO_CAPABILITY: Final = "(none)"
UNKNOWN_CAPABILITY: Final = "(unknown)"
CLIENT_CLOSED: Final = Failure(499, "E-CLIENT-CLOSED", "the caller closed the connection")
AUDIT_UNAVAILABLE_CODE: Final = "E-AUDIT-UNAVAILABLE"
_AUDIT_UNAVAILABLE = "the audit log cannot be written; nothing was sent upstream (see /status)"
AuditDecision = Literal["allow", "deny", "error"]


def audit_unavailable() -> Failure:
    """503 `E-AUDIT-UNAVAILABLE` (a fresh one: a raised error keeps its traceback)."""
    return Failure(503, AUDIT_UNAVAILABLE_CODE, _AUDIT_UNAVAILABLE)


class RateLimited(Refusal):
    """429: the (consumer, capability) token bucket is empty; carries `Retry-After`."""

    def __init__(self, limit: int, capability: str, retry_after: str) -> None:
        super().__init__(
            429,
            "E-RATE-LIMITED",
            f"capability {capability!r} allows {limit} requests per minute; retry later",
        )
        self.retry_after = retry_after


@dataclass(slots=True)
class Invocation:
    """Who asked for what, as far as one invoke request got: the subject of its audit
    line. Filled in stage by stage by `Runtime._decide` only; `sent` counts the bytes
    of a streamed answer written so far (for a line written on cancellation)."""

    method: str
    path: str
    started: float
    credential: str | None = None
    consumer: str | None = None
    capability: str | None = None
    serial: int | None = None
    sent: int = 0


@dataclass(frozen=True, slots=True)
class Ending:
    """How one invoke request was answered: the status the caller saw, the bytes of
    the body sent, and the error (None: the upstream's answer, passed on whole)."""

    status: int
    sent: int
    error: HttpError | None = None

    @property
    def decision(self) -> AuditDecision:
        """`allow` (answered by the upstream) or the error's own verdict (`deny`, `error`)."""
        return "allow" if self.error is None else self.error.verdict
