"""Caller query parameters that would collide with injected credentials."""

from __future__ import annotations

from aivault_ops.runtime.model import Refusal, echo


def check_query(
    query: tuple[tuple[str, str], ...], forbidden: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """Refuse a caller query parameter named like one the credential injects.

    Prevents a caller from supplying its own value for the credential's
    parameter (`?key=` for Gemini), which upstreams may prefer over the
    injected one, or from probing how the parameter is handled. Names are
    compared case-insensitively. Returns the query unchanged.
    """
    if forbidden:
        for name, _ in query:
            if name.lower() in forbidden:
                raise Refusal(
                    403,
                    "E-QUERY-FORBIDDEN",
                    f"query parameter {echo(name)} is injected by the runtime;"
                    " callers may not send it",
                )
    return query
