"""Request body size limit."""

from __future__ import annotations

from aivault_ops.runtime.model import Refusal


def check_body_size(limit: int | None, size: int, *, capability: str) -> None:
    """Refuse a request body larger than the capability's `maxRequestBodyBytes`.

    Prevents a caller from pushing arbitrarily large (billable) payloads to
    the upstream; nothing is sent when the limit is exceeded.
    """
    if limit is not None and size > limit:
        raise Refusal(
            413,
            "E-BODY-TOO-LARGE",
            f"request body of {size} bytes exceeds the limit of {limit} bytes"
            f" of capability {capability!r}",
        )
