"""Host names and wildcards (`*.myshopify.com` matches exactly one extra label)."""

from __future__ import annotations

from collections.abc import Iterable


def is_wildcard(host: str) -> bool:
    return host.startswith("*.")


def wildcard_problem(host: str) -> str | None:
    """Why `host` is not an acceptable `*.` pattern (None for concrete hosts and good
    patterns): a pattern needs at least three labels, so `*.com` cannot match every
    host under a top-level domain. The apex (`example.com` for `*.example.com`) is
    never matched."""
    if not is_wildcard(host):
        return None
    if "*" in host[2:] or host[2:].count(".") < 1:
        return (
            "is too broad: a wildcard is a leading '*.' before at least two labels (*.example.com)"
        )
    return None


def host_matches(pattern: str, host: str) -> bool:
    """True if concrete `host` is `pattern`, or one label under a `*.` pattern."""
    if not is_wildcard(pattern):
        return host == pattern
    label, _, rest = host.partition(".")
    return bool(label) and rest == pattern[2:]


def covered(host: str, patterns: Iterable[str]) -> bool:
    """True if some pattern in `patterns` allows `host`."""
    return any(host_matches(pattern, host) for pattern in patterns)
