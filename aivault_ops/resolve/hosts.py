"""Host names and wildcards (`*.myshopify.com` matches exactly one extra label)."""

from __future__ import annotations

from collections.abc import Iterable


def is_wildcard(host: str) -> bool:
    return host.startswith("*.")


def host_matches(pattern: str, host: str) -> bool:
    """True if concrete `host` is `pattern`, or one label under a `*.` pattern."""
    if not is_wildcard(pattern):
        return host == pattern
    label, _, rest = host.partition(".")
    return bool(label) and rest == pattern[2:]


def covered(host: str, patterns: Iterable[str]) -> bool:
    """True if some pattern in `patterns` allows `host`."""
    return any(host_matches(pattern, host) for pattern in patterns)
