"""A capability's rule set, built once per policy load from the typed document.

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

from aivault_ops.errors import AivaultError
from aivault_ops.policy_document import PolicyCapability
from aivault_ops.runtime.auth.credential import CredentialRuntime
from aivault_ops.runtime.policy.checks.operations import NO_OPERATIONS, OperationRules
from aivault_ops.runtime.policy.checks.path import PathPrefix
from aivault_ops.runtime.policy.shared_values import ValueTable
from aivault_ops.runtime.response.blocklist import Blocklist

DEFAULT_TIMEOUT_S = 30.0
_HOST = re.compile(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


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
    max_concurrent: int | None = None
    response_blocklist: Blocklist | None = None
    operation_rules: OperationRules = NO_OPERATIONS  # X-Amz-Target values, copy sources


def _limit(value: int | None, table: ValueTable) -> int | None:
    return None if value is None else table.number(value)


def _blocklist(name: str, paths: tuple[str, ...] | None, table: ValueTable) -> Blocklist | None:
    """`responseBlocklist` compiled once per load; a bad path fails the whole load."""
    if not paths:
        return None
    owned = table.texts(paths)
    try:
        return table.get(("blocklist", owned), lambda: Blocklist.compile(list(owned)))
    except AivaultError as error:
        raise AivaultError(f"policy: capability {name!r} {error.message}") from None


def _host(name: str, spec: PolicyCapability, credential: CredentialRuntime) -> str:
    """The capability's upstream host: its first host, which must be concrete and
    one of the credential's hosts (so the credential never travels elsewhere)."""
    host = spec.hosts[0]
    if _HOST.fullmatch(host) is None or host not in credential.hosts:
        raise AivaultError(
            f"policy: capability {name!r} host {host!r} is not a concrete host of its credential"
        )
    return credential.hosts[credential.hosts.index(host)]


def _prefixes(prefixes: tuple[str, ...], table: ValueTable) -> tuple[PathPrefix, ...]:
    def prefix(text: str) -> PathPrefix:
        return table.get(("prefix", text), lambda: PathPrefix(table.text(text)))

    return table.share(tuple(prefix(text) for text in prefixes))


def _operation_rules(spec: PolicyCapability, table: ValueTable) -> OperationRules:
    if not spec.operations and not spec.copy_source_prefixes:
        return NO_OPERATIONS
    operations = table.share(frozenset(table.texts(spec.operations)))
    sources = _prefixes(spec.copy_source_prefixes, table)
    return table.get(
        ("operations", operations, sources), lambda: OperationRules(operations, sources)
    )


def _timeout_s(timeout_ms: int | None, table: ValueTable) -> float:
    return table.share(DEFAULT_TIMEOUT_S if not timeout_ms else timeout_ms / 1000)


def parse_capability(
    name: str,
    spec: PolicyCapability,
    credentials: Mapping[str, CredentialRuntime],
    table: ValueTable | None = None,
) -> Capability:
    """One schema-checked `capabilities.<name>` entry; `AivaultError` when it names
    a credential the policy lacks or a host its credential does not have."""
    if spec.credential not in credentials:
        raise AivaultError(f"policy: capability {name!r} must name a known credential")
    table = table or ValueTable()
    credential = credentials[spec.credential]
    rules = spec.policy
    return Capability(
        name=table.text(name),
        credential=credential.name,
        methods=table.share(frozenset(table.texts(spec.methods))),
        prefixes=_prefixes(spec.path_prefixes, table),
        host=_host(name, spec, credential),
        timeout_s=_timeout_s(rules.timeout_ms, table),
        max_request_body_bytes=_limit(rules.max_request_body_bytes, table),
        max_response_body_bytes=_limit(rules.max_response_body_bytes, table),
        rate_limit_per_minute=_limit(rules.rate_limit_per_minute, table),
        max_concurrent=_limit(rules.max_concurrent, table),
        response_blocklist=_blocklist(name, rules.response_blocklist, table),
        operation_rules=_operation_rules(spec, table),
    )


def parse_capabilities(
    specs: Mapping[str, PolicyCapability],
    credentials: Mapping[str, CredentialRuntime],
    table: ValueTable | None = None,
) -> dict[str, Capability]:
    """Every capability of the policy, by name."""
    table = table or ValueTable()
    parsed = (parse_capability(n, s, credentials, table) for n, s in sorted(specs.items()))
    return {capability.name: capability for capability in parsed}
