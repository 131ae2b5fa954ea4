"""A capability's rule set, parsed once per policy load.

Holds what the request checks need (methods, path prefixes, the one
upstream host, limits) as frozen data, so no raw policy dict is consulted
per request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aivault_ops.errors import AivaultError
from aivault_ops.runtime.auth.credential import CredentialRuntime
from aivault_ops.runtime.blocklist import Blocklist
from aivault_ops.runtime.checks.path import PathPrefix

DEFAULT_TIMEOUT_S = 30.0
_HOST = re.compile(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_METHOD = re.compile(r"[A-Z]+")


@dataclass(frozen=True, slots=True)
class Capability:
    """One capability: who injects, what is allowed, and its limits."""

    name: str
    credential: str
    methods: frozenset[str]
    prefixes: tuple[PathPrefix, ...]
    host: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_request_body_bytes: int | None = None
    max_response_body_bytes: int | None = None
    rate_limit_per_minute: int | None = None
    response_blocklist: Blocklist | None = None


def _strings(name: str, spec: Mapping[str, Any], key: str) -> list[str]:
    value = spec.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise AivaultError(f"policy: capability {name!r} {key} must be a non-empty list of strings")
    return value


def _limit(name: str, policy: Mapping[str, Any], key: str) -> int | None:
    value = policy.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AivaultError(f"policy: capability {name!r} policy.{key} must be an integer >= 0")
    return value


def _blocklist(name: str, policy: Mapping[str, Any]) -> Blocklist | None:
    """`responseBlocklist` compiled once per load; a bad path fails the whole load."""
    paths = policy.get("responseBlocklist")
    if paths is None or paths == []:
        return None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise AivaultError(
            f"policy: capability {name!r} policy.responseBlocklist must be a list of strings"
        )
    try:
        return Blocklist.compile(paths)
    except AivaultError as error:
        raise AivaultError(f"policy: capability {name!r} {error.message}") from None


def _host(name: str, spec: Mapping[str, Any], credential: CredentialRuntime) -> str:
    """The capability's upstream host: its first host, which must be concrete and
    one of the credential's hosts (so the credential never travels elsewhere)."""
    host = _strings(name, spec, "hosts")[0]
    if _HOST.fullmatch(host) is None or host not in credential.hosts:
        raise AivaultError(
            f"policy: capability {name!r} host {host!r} is not a concrete host of its credential"
        )
    return host


def _rules(name: str, spec: Mapping[str, Any], methods: list[str], prefixes: list[str]) -> None:
    if not all(_METHOD.fullmatch(m) for m in methods):
        raise AivaultError(f"policy: capability {name!r} methods must be upper-case tokens")
    if not all(p.startswith("/") for p in prefixes):
        raise AivaultError(f"policy: capability {name!r} path prefixes must start with '/'")
    if not isinstance(spec.get("policy", {}), Mapping):
        raise AivaultError(f"policy: capability {name!r} policy must be an object")


def parse_capability(
    name: str, spec: Any, credentials: Mapping[str, CredentialRuntime]
) -> Capability:
    """One `capabilities.<name>` entry; `AivaultError` when malformed or dangling."""
    if not isinstance(spec, Mapping) or spec.get("credential") not in credentials:
        raise AivaultError(f"policy: capability {name!r} must name a known credential")
    credential = credentials[spec["credential"]]
    methods, prefixes = _strings(name, spec, "methods"), _strings(name, spec, "pathPrefixes")
    _rules(name, spec, methods, prefixes)
    policy: Mapping[str, Any] = spec.get("policy", {})
    timeout_ms = _limit(name, policy, "timeoutMs")
    return Capability(
        name=name,
        credential=credential.name,
        methods=frozenset(methods),
        prefixes=tuple(PathPrefix(p) for p in prefixes),
        host=_host(name, spec, credential),
        timeout_s=DEFAULT_TIMEOUT_S if not timeout_ms else timeout_ms / 1000,
        max_request_body_bytes=_limit(name, policy, "maxRequestBodyBytes"),
        max_response_body_bytes=_limit(name, policy, "maxResponseBodyBytes"),
        rate_limit_per_minute=_limit(name, policy, "rateLimitPerMinute"),
        response_blocklist=_blocklist(name, policy),
    )


def parse_capabilities(
    specs: Mapping[str, Any], credentials: Mapping[str, CredentialRuntime]
) -> dict[str, Capability]:
    """Every capability of the policy, by name."""
    return {str(n): parse_capability(str(n), s, credentials) for n, s in sorted(specs.items())}
