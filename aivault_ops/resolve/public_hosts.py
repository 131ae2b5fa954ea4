"""Policy hosts must be public (E-HOST-NOT-PUBLIC).

The runtime never connects to an address outside global unicast
(`runtime/policy/checks/ssrf.py`, checked on the address actually connected to). This
refuses earlier, in `validate`, the hosts that can only lead there:

- IP literals outside global unicast, judged by the same table;
- names ending in a number (`127.1`, `2130706433`, `0x7f.1`, `010.0.0.1`):
  no DNS name does, and resolvers read them as IPv4 addresses;
- single-label names (`metadata`, `ip6-localhost`), which resolve through
  search domains or /etc/hosts;
- special-use and private-use domains: `localhost`, `local`, `internal` …

Only `serve --dev-resolve HOST=IP:PORT` reaches a local test server.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import ManifestSource
from aivault_ops.resolve.hosts import wildcard_problem
from aivault_ops.runtime.policy.checks.ssrf import refusal

NOT_PUBLIC: Final = "E-HOST-NOT-PUBLIC"
PATTERN: Final = "E-HOST-PATTERN"
SPECIAL_USE_DOMAINS: Final = MappingProxyType(
    {
        "localhost": "loopback (RFC 6761)",
        "localdomain": "loopback by convention (localhost.localdomain)",
        "local": "multicast DNS on the local link (RFC 6762)",
        "internal": "private use (reserved by ICANN)",
        "arpa": "DNS infrastructure, home.arpa and ipv4only.arpa included (RFC 3172)",
        "test": "testing, absent from the public DNS (RFC 6761)",
        "invalid": "never resolves (RFC 6761)",
        "onion": "Tor onion services, not DNS (RFC 7686)",
        "alt": "non-DNS name spaces (RFC 9476)",
    }
)
_HINT: Final = (
    "; the runtime only connects to public addresses"
    " (a local test server is reached with `serve --dev-resolve HOST=IP:PORT`)"
)
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")


def host_problem(host: str) -> str | None:
    """Why policy host (or `*.` pattern) `host` can never be a public upstream, or None.

    Prevents SSRF by policy: a host that names a loopback, private or other
    non-public address, directly or through a local-only name.
    """
    name = host.lower().removesuffix(".")
    pattern = name.startswith("*.")
    name = name.removeprefix("*.")
    address = None if pattern else _ip_literal(name)
    if address is not None:
        reason = refusal(address)
        return None if reason is None else f"is not a globally reachable address: {reason}{_HINT}"
    labels = name.split(".")
    if _NUMBER.fullmatch(labels[-1]):
        return _numeric(name, pattern)
    if labels[-1] in SPECIAL_USE_DOMAINS:
        return f"is under .{labels[-1]}: {SPECIAL_USE_DOMAINS[labels[-1]]}{_HINT}"
    if len(labels) == 1 and not pattern:
        return f"is a single-label name, resolved through search domains or /etc/hosts{_HINT}"
    return None


def _ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _numeric(name: str, pattern: bool) -> str:
    """Resolvers read a name ending in a number as IPv4 (`inet_aton`: 1 to 4
    decimal, octal or hex parts; the last fills the remaining bytes)."""
    address = None if pattern else _inet_aton(name)
    if address is None:
        return f"ends in a number, which no DNS name does (resolvers read it as IPv4){_HINT}"
    reason = refusal(address)
    if reason is None:
        return f"ends in a number, so resolvers read it as {address}; write {address} or a DNS name"
    return f"ends in a number, so resolvers read it as {address}: {reason}{_HINT}"


def _inet_aton(name: str) -> ipaddress.IPv4Address | None:
    parts = name.split(".")
    if not all(_NUMBER.fullmatch(part) for part in parts):
        return None
    try:
        numbers = [
            int(p, 16) if p.startswith("0x") else int(p, 8 if p[:1] == "0" else 10) for p in parts
        ]
    except ValueError:
        return None
    if len(numbers) > 4 or any(n > 255 for n in numbers[:-1]):
        return None
    last_bits = 8 * (5 - len(numbers))
    if numbers[-1] >= 1 << last_bits:
        return None
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value |= number << (24 - 8 * index)
    return ipaddress.IPv4Address(value)


def host_rule_broken(host: str) -> tuple[str, str] | None:
    """(code, message) for a policy host that is not public or a too broad pattern."""
    problem = host_problem(host)
    if problem is not None:
        return NOT_PUBLIC, f"host '{host}' {problem}"
    problem = wildcard_problem(host)
    return None if problem is None else (PATTERN, f"host '{host}' {problem}")


def check_public_hosts(
    hosts: Sequence[str], source: ManifestSource, path: tuple[str | int, ...], report: Report
) -> bool:
    """Report every host of `hosts` (at `path`) that is not public; True when all are."""
    ok = True
    for index, host in enumerate(hosts):
        broken = host_rule_broken(host)
        if broken is not None:
            report.add(source.at(*path, index), *broken)
            ok = False
    return ok


def check_token_endpoint_host(
    auth: Any, source: ManifestSource, path: tuple[str | int, ...], report: Report
) -> bool:
    """The `o_auth2` token endpoint's host under the same rule: it receives the client secret."""
    spec = auth.get("o_auth2") if isinstance(auth, dict) else None
    url = spec.get("token_endpoint") if isinstance(spec, dict) else None
    try:
        host = urlsplit(url).hostname if isinstance(url, str) else None
    except ValueError:
        return True  # not a URL: the runtime makes the credential unavailable
    problem = host_problem(host) if host else None
    if problem is None:
        return True
    report.add(
        source.at(*path, "o_auth2", "token_endpoint"),
        NOT_PUBLIC,
        f"the token endpoint's host '{host}' {problem}",
    )
    return False
