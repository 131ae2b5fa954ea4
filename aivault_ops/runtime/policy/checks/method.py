"""Method allow-list."""

from __future__ import annotations

from aivault_ops.runtime.model import Refusal, echo


def check_method(allowed: frozenset[str], method: str, *, capability: str) -> None:
    """Refuse a method the capability does not list.

    Prevents a read-only capability from being used to write or delete
    (e.g. `DELETE /v1/users/7` through a capability that allows only GET).
    Methods are compared exactly: HTTP methods are case-sensitive.
    """
    if method not in allowed:
        raise Refusal(
            405,
            "E-METHOD-NOT-ALLOWED",
            f"method {echo(method)} is not allowed by capability {capability!r}"
            f" (allowed: {', '.join(sorted(allowed))})",
        )
