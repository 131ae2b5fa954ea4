"""What a granted request is allowed: the one result of authorization.

`ActivePolicy.authorize` (envelope: the caller names the capability) and
`ActivePolicy.authorize_passthrough` (the capability is found by the
credential, method and path) are the only makers of an `Authorized`, and
`ActivePolicy.prepare` takes nothing else: a request cannot be prepared
without having been authorized, and authorization runs once per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aivault_ops.runtime.auth.credential import CredentialRuntime
    from aivault_ops.runtime.policy.capability import Capability
    from aivault_ops.runtime.policy.checks.path import RequestPath


@dataclass(frozen=True, slots=True)
class Authorized:
    """`consumer` is granted `capability`, whose credential is `credential`.

    `path` is the caller's path, parsed once, when the capability was found
    by it (passthrough); None when the caller named the capability (envelope:
    the path is parsed by `prepare`, after the grant).
    """

    consumer: str
    capability: Capability
    credential: CredentialRuntime
    path: RequestPath | None = None

    @property
    def passthrough(self) -> bool:
        """Whether the capability was found by the path (the `/v/…` route)."""
        return self.path is not None

    def __repr__(self) -> str:
        return f"Authorized(consumer={self.consumer!r}, capability={self.capability.name!r})"
