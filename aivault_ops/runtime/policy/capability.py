"""A capability's rule set, parsed once per policy load.

Holds what the request checks need (methods, path prefixes, the one
upstream host, limits) as frozen data, so no raw policy dict is consulted
per request. Equal method sets, prefix tuples, limits and blocklists are one
shared object across capabilities (`ValueTable`), and no string is kept from
the decoded policy JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aivault_ops.errors import AivaultError
from aivault_ops.runtime.auth.credential import CredentialRuntime
from aivault_ops.runtime.policy.checks.path import PathPrefix
from aivault_ops.runtime.policy.shared_values import ValueTable
from aivault_ops.runtime.response.blocklist import Blocklist

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


def _limit(name: str, policy: Mapping[str, Any], key: str, table: ValueTable) -> int | None:
    value = policy.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AivaultError(f"policy: capability {name!r} policy.{key} must be an integer >= 0")
    return table.number(value)


def _blocklist(name: str, policy: Mapping[str, Any], table: ValueTable) -> Blocklist | None:
    """`responseBlocklist` compiled once per load; a bad path fails the whole load."""
    paths = policy.get("responseBlocklist")
    if paths is None or paths == []:
        return None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise AivaultError(
            f"policy: capability {name!r} policy.responseBlocklist must be a list of strings"
        )
    owned = table.texts(paths)
    try:
        return table.get(("blocklist", owned), lambda: Blocklist.compile(list(owned)))
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
    return credential.hosts[credential.hosts.index(host)]


def _rules(name: str, spec: Mapping[str, Any], methods: list[str], prefixes: list[str]) -> None:
    if not all(_METHOD.fullmatch(m) for m in methods):
        raise AivaultError(f"policy: capability {name!r} methods must be upper-case tokens")
    if not all(p.startswith("/") for p in prefixes):
        raise AivaultError(f"policy: capability {name!r} path prefixes must start with '/'")
    if not isinstance(spec.get("policy", {}), Mapping):
        raise AivaultError(f"policy: capability {name!r} policy must be an object")


def _prefixes(prefixes: list[str], table: ValueTable) -> tuple[PathPrefix, ...]:
    def prefix(text: str) -> PathPrefix:
        return table.get(("prefix", text), lambda: PathPrefix(table.text(text)))

    return table.share(tuple(prefix(text) for text in prefixes))


def _timeout_s(name: str, policy: Mapping[str, Any], table: ValueTable) -> float:
    timeout_ms = _limit(name, policy, "timeoutMs", table)
    return table.share(DEFAULT_TIMEOUT_S if not timeout_ms else timeout_ms / 1000)


def parse_capability(
    name: str,
    spec: Any,
    credentials: Mapping[str, CredentialRuntime],
    table: ValueTable | None = None,
) -> Capability:
    """One `capabilities.<name>` entry; `AivaultError` when malformed or dangling."""
    if not isinstance(spec, Mapping) or spec.get("credential") not in credentials:
        raise AivaultError(f"policy: capability {name!r} must name a known credential")
    table = table or ValueTable()
    credential = credentials[spec["credential"]]
    methods, prefixes = _strings(name, spec, "methods"), _strings(name, spec, "pathPrefixes")
    _rules(name, spec, methods, prefixes)
    policy: Mapping[str, Any] = spec.get("policy", {})
    return Capability(
        name=table.text(name),
        credential=credential.name,
        methods=table.share(frozenset(table.texts(methods))),
        prefixes=_prefixes(prefixes, table),
        host=_host(name, spec, credential),
        timeout_s=_timeout_s(name, policy, table),
        max_request_body_bytes=_limit(name, policy, "maxRequestBodyBytes", table),
        max_response_body_bytes=_limit(name, policy, "maxResponseBodyBytes", table),
        rate_limit_per_minute=_limit(name, policy, "rateLimitPerMinute", table),
        response_blocklist=_blocklist(name, policy, table),
    )


def parse_capabilities(
    specs: Mapping[str, Any],
    credentials: Mapping[str, CredentialRuntime],
    table: ValueTable | None = None,
) -> dict[str, Capability]:
    """Every capability of the policy, by name."""
    table = table or ValueTable()
    parsed = (parse_capability(str(n), s, credentials, table) for n, s in sorted(specs.items()))
    return {capability.name: capability for capability in parsed}
