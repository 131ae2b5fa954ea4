"""The runtime's errors: every way a request can end without the upstream's answer.

Each is an `HttpError` under the package's root `AivaultError` and carries
three things explicitly: the HTTP `status` the server answers with, the
stable `code` of the JSON body `{"error": code, "message": message}` (every
code is listed in docs/runtime-errors.md), and the `verdict` its audit line
and its `aivault_requests_total` count get:

- `Refusal`, verdict `deny`: the policy refused the request (who asks, what
  for, how), or there is no policy or credential to serve it with;
- `Failure`, verdict `error`: the request was allowed but could not be
  completed (the runtime's own faults, the audit log, the caller's
  connection); `UpstreamFailure` is the upstream's part of it (the way to
  it, its answer), except `UpstreamForbidden`, the SSRF rule refusing the
  address the upstream's name resolved to, which is a `deny`.

Messages never contain a secret value or a consumer token.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from aivault_ops.errors import CodedError

Verdict = Literal["deny", "error"]


class HttpError(CodedError):
    """A failure the server answers with `status` and the JSON body `to_json()`."""

    verdict: ClassVar[Verdict]

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def to_json(self) -> dict[str, str]:
        """The JSON error body: `{"error": code, "message": message}`."""
        return {"error": self.code, "message": self.message}


class Refusal(HttpError):
    """A request refused by policy (audited `deny`)."""

    verdict: ClassVar[Verdict] = "deny"


class Failure(HttpError):
    """An allowed request that could not be completed (audited `error`)."""

    verdict: ClassVar[Verdict] = "error"


class UpstreamFailure(Failure):
    """The upstream could not be reached, failed mid-request, or its answer cannot be
    passed on (502/504, never a traceback)."""


class UpstreamForbidden(UpstreamFailure):
    """403: the upstream's address is one the SSRF rule forbids; nothing was connected.

    An upstream failure for the code paths that reach upstreams (a token endpoint
    names it as the reason it was unreachable), a refusal for the audit.
    """

    verdict: ClassVar[Verdict] = "deny"

    def __init__(self, message: str) -> None:
        super().__init__(403, "E-UPSTREAM-FORBIDDEN", message)


RETRY_SOON: str = "1"


class ConcurrencyLimited(Refusal):
    """503: the capability's `maxConcurrent` requests are in flight already (`deny`:
    the policy's limit); nothing was sent. Carries `Retry-After`."""

    retry_after: str = RETRY_SOON

    def __init__(self, limit: int, capability: str) -> None:
        super().__init__(
            503,
            "E-CONCURRENCY-LIMIT",
            f"capability {capability!r} allows {limit} requests in flight at once; retry later",
        )


class UpstreamBusy(UpstreamFailure):
    """503: no connection to the upstream host came free within the wait for one (its
    bulkhead is full); nothing was sent. An `error`: the request was allowed.
    Carries `Retry-After`."""

    retry_after: str = RETRY_SOON

    def __init__(self, message: str) -> None:
        super().__init__(503, "E-UPSTREAM-BUSY", message)
