"""E-HOST-NOT-PUBLIC: policy hosts that can only lead to a non-public address.

The corpus cases `invalid/host-not-public*` cover the manifests (Provider
hosts, token endpoints of Provider and Credential auth); these cover the
rule itself, the registry's own hosts, and that `validate` stays light.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aivault_ops.providers import registry_files
from aivault_ops.resolve.public_hosts import host_problem

HINT = (
    "; the runtime only connects to public addresses"
    " (a local test server is reached with `serve --dev-resolve HOST=IP:PORT`)"
)
LOOPBACK = "Loopback (127.0.0.0/8, RFC 1122)"
NUMERIC = "ends in a number, which no DNS name does (resolvers read it as IPv4)" + HINT

PUBLIC = [
    "api.openai.com",
    "*.myshopify.com",
    "api.internal.example.com",
    "localhost.example.com",
    "local.example.com",
    "1password.com",
    "123.example.com",
    "api.example.com.",
    "xn--bcher-kva.example",
    "8.8.8.8",
    "2606:4700::1111",
    "[2606:4700::1111]",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("host", PUBLIC)
def test_public_hosts_pass(host: str) -> None:
    assert host_problem(host) is None


REFUSED = [
    ("127.0.0.1", f"is not a globally reachable address: {LOOPBACK}{HINT}"),
    (
        "100.64.0.1",
        "is not a globally reachable address: Shared Address Space (100.64.0.0/10, RFC 6598)"
        + HINT,
    ),
    (
        "198.18.0.1",
        "is not a globally reachable address: Benchmarking (198.18.0.0/15, RFC 2544)" + HINT,
    ),
    ("::1", f"is not a globally reachable address: Loopback Address (::1/128, RFC 4291){HINT}"),
    (
        "[64:ff9b::7f00:1]",
        "is not a globally reachable address: IPv4-IPv6 Translat. (64:ff9b::/96, RFC 6052)"
        f" carrying 127.0.0.1: {LOOPBACK}{HINT}",
    ),
    (
        "fec0::1",
        "is not a globally reachable address:"
        f" Site-Local Unicast (deprecated) (fec0::/10, RFC 3879){HINT}",
    ),
    ("127.0.0.1.", f"is not a globally reachable address: {LOOPBACK}{HINT}"),
    (
        "fe80::1%25eth0",
        f"is not a globally reachable address: Link-Local Unicast (fe80::/10, RFC 4291){HINT}",
    ),
    ("localhost", f"is under .localhost: loopback (RFC 6761){HINT}"),
    ("LOCALHOST", f"is under .localhost: loopback (RFC 6761){HINT}"),
    ("localhost.", f"is under .localhost: loopback (RFC 6761){HINT}"),
    ("api.localhost", f"is under .localhost: loopback (RFC 6761){HINT}"),
    ("*.localhost", f"is under .localhost: loopback (RFC 6761){HINT}"),
    (
        "Localhost.LocalDomain.",
        f"is under .localdomain: loopback by convention (localhost.localdomain){HINT}",
    ),
    ("printer.local", f"is under .local: multicast DNS on the local link (RFC 6762){HINT}"),
    ("*.local", f"is under .local: multicast DNS on the local link (RFC 6762){HINT}"),
    ("metadata.google.internal", f"is under .internal: private use (reserved by ICANN){HINT}"),
    (
        "router.home.arpa",
        "is under .arpa: DNS infrastructure, home.arpa and ipv4only.arpa included (RFC 3172)"
        + HINT,
    ),
    ("api.test", f"is under .test: testing, absent from the public DNS (RFC 6761){HINT}"),
    ("x.invalid", f"is under .invalid: never resolves (RFC 6761){HINT}"),
    ("abc.onion", f"is under .onion: Tor onion services, not DNS (RFC 7686){HINT}"),
    ("name.alt", f"is under .alt: non-DNS name spaces (RFC 9476){HINT}"),
    (
        "metadata",
        f"is a single-label name, resolved through search domains or /etc/hosts{HINT}",
    ),
    (
        "ip6-localhost",
        f"is a single-label name, resolved through search domains or /etc/hosts{HINT}",
    ),
    ("2130706433", f"ends in a number, so resolvers read it as 127.0.0.1: {LOOPBACK}{HINT}"),
    ("0x7f000001", f"ends in a number, so resolvers read it as 127.0.0.1: {LOOPBACK}{HINT}"),
    ("017700000001", f"ends in a number, so resolvers read it as 127.0.0.1: {LOOPBACK}{HINT}"),
    ("127.1", f"ends in a number, so resolvers read it as 127.0.0.1: {LOOPBACK}{HINT}"),
    ("0x7f.0.0.1", f"ends in a number, so resolvers read it as 127.0.0.1: {LOOPBACK}{HINT}"),
    (
        "0",
        'ends in a number, so resolvers read it as 0.0.0.0: "This host on this network"'
        f" (0.0.0.0/32, RFC 1122){HINT}",
    ),
    (
        "169.254.43518",
        "ends in a number, so resolvers read it as 169.254.169.254:"
        f" Link Local (169.254.0.0/16, RFC 3927){HINT}",
    ),
    ("010.0.0.1", "ends in a number, so resolvers read it as 8.0.0.1; write 8.0.0.1 or a DNS name"),
    ("1.2.3.4.5", NUMERIC),
    ("256.1.1.1", NUMERIC),
    ("4294967296", NUMERIC),
    ("1.2.3.08", NUMERIC),
    ("1_0.0.0.1", NUMERIC),
    ("+1.0.0.1", NUMERIC),
    ("api.example.0x", NUMERIC),
    ("*.0.0.1", NUMERIC),
    ("*.8.8.8.8", NUMERIC),
]


@pytest.mark.parametrize(("host", "problem"), REFUSED)
def test_hosts_that_can_only_lead_to_a_non_public_address_are_refused(
    host: str, problem: str
) -> None:
    assert host_problem(host) == problem


def _registry_hosts(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    variants = [data, *data.get("credentialAlternatives", ())]
    hosts = [h for variant in variants for h in variant["hosts"]]
    hosts += [h for capability in data["capabilities"] for h in capability["allow"]["hosts"]]
    for variant in variants:
        auth = variant["auth"]
        if isinstance(auth, dict) and "o_auth2" in auth:
            hosts.append(urlsplit(auth["o_auth2"]["token_endpoint"]).hostname or "")
    return hosts


@pytest.mark.parametrize("path", registry_files(), ids=lambda p: p.stem)
def test_every_registry_host_is_public(path: Path) -> None:
    assert {h: host_problem(h) for h in _registry_hosts(path) if host_problem(h)} == {}


def test_validate_reads_the_rule_without_loading_the_runtime_stack() -> None:
    code = (
        "import sys, aivault_ops.resolve.public_hosts;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'httpx', 'uvloop')"
        " or m.startswith('aivault_ops.runtime.') and m.rpartition('.')[2] not in"
        " ('policy', 'checks', 'ssrf', 'special_purpose')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout == "[]\n"
