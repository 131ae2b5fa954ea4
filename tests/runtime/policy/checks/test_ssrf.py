"""The SSRF rule: every row of the special-purpose table, embedded IPv4, and the resolver.

The expectations here are written out by hand, row by row, rather than
derived from the table, so a wrong row in the table fails a test.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp.resolver import ThreadedResolver

from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.policy.checks.special_purpose import IPV4, IPV6
from aivault_ops.runtime.policy.checks.ssrf import is_forbidden_address, refusal
from aivault_ops.runtime.upstream.client import (
    AddressRefused,
    DevResolve,
    GuardedResolver,
    Http1Upstream,
    UpstreamFailure,
    UpstreamSettings,
    check_literal_host,
    classify_error,
)

REFUSED, ALLOWED = True, False

# Every row of the table: whether its addresses are refused, and addresses inside it
# (first and last where the edge matters). A row the registry calls globally reachable
# but nested in one it does not (192.0.0.9 in 192.0.0.0/24) is refused.
ROWS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "0.0.0.0/8": (REFUSED, ("0.0.0.1", "0.1.2.3", "0.255.255.255")),
    "0.0.0.0/32": (REFUSED, ("0.0.0.0",)),
    "10.0.0.0/8": (REFUSED, ("10.0.0.0", "10.0.0.1", "10.255.255.255")),
    "100.64.0.0/10": (REFUSED, ("100.64.0.0", "100.64.0.1", "100.127.255.255")),
    "127.0.0.0/8": (REFUSED, ("127.0.0.0", "127.0.0.1", "127.255.255.255")),
    "169.254.0.0/16": (REFUSED, ("169.254.0.0", "169.254.169.254", "169.254.255.255")),
    "172.16.0.0/12": (REFUSED, ("172.16.0.0", "172.20.1.1", "172.31.255.255")),
    "192.0.0.0/24": (REFUSED, ("192.0.0.11", "192.0.0.169", "192.0.0.172", "192.0.0.255")),
    "192.0.0.0/29": (REFUSED, ("192.0.0.0", "192.0.0.1", "192.0.0.7")),
    "192.0.0.8/32": (REFUSED, ("192.0.0.8",)),
    "192.0.0.9/32": (REFUSED, ("192.0.0.9",)),
    "192.0.0.10/32": (REFUSED, ("192.0.0.10",)),
    "192.0.0.170/32": (REFUSED, ("192.0.0.170",)),
    "192.0.0.171/32": (REFUSED, ("192.0.0.171",)),
    "192.0.2.0/24": (REFUSED, ("192.0.2.0", "192.0.2.1", "192.0.2.255")),
    "192.31.196.0/24": (ALLOWED, ("192.31.196.0", "192.31.196.1", "192.31.196.255")),
    "192.52.193.0/24": (ALLOWED, ("192.52.193.0", "192.52.193.1", "192.52.193.255")),
    "192.88.99.0/24": (REFUSED, ("192.88.99.0", "192.88.99.1", "192.88.99.255")),
    "192.88.99.2/32": (REFUSED, ("192.88.99.2",)),
    "192.168.0.0/16": (REFUSED, ("192.168.0.0", "192.168.1.1", "192.168.255.255")),
    "192.175.48.0/24": (ALLOWED, ("192.175.48.0", "192.175.48.1", "192.175.48.255")),
    "198.18.0.0/15": (REFUSED, ("198.18.0.0", "198.19.1.1", "198.19.255.255")),
    "198.51.100.0/24": (REFUSED, ("198.51.100.0", "198.51.100.1", "198.51.100.255")),
    "203.0.113.0/24": (REFUSED, ("203.0.113.0", "203.0.113.1", "203.0.113.255")),
    "224.0.0.0/4": (REFUSED, ("224.0.0.0", "224.0.0.1", "239.255.255.255")),
    "240.0.0.0/4": (REFUSED, ("240.0.0.0", "240.0.0.1", "255.255.255.254")),
    "255.255.255.255/32": (REFUSED, ("255.255.255.255",)),
    "::1/128": (REFUSED, ("::1",)),
    "::/128": (REFUSED, ("::",)),
    "::/96": (REFUSED, ("::2", "::8.8.8.8", "::255.255.255.255")),
    "::ffff:0:0/96": (REFUSED, ("::ffff:0.0.0.0", "::ffff:8.8.8.8", "::ffff:255.255.255.255")),
    "::ffff:0:0:0/96": (REFUSED, ("::ffff:0:0.0.0.0", "::ffff:0:8.8.8.8", "::ffff:0:ffff:ffff")),
    "64:ff9b::/96": (ALLOWED, ("64:ff9b::8.8.8.8", "64:ff9b::1.1.1.1", "64:ff9b::93.184.216.34")),
    "64:ff9b:1::/48": (REFUSED, ("64:ff9b:1::", "64:ff9b:1::8.8.8.8", "64:ff9b:1:ffff::ffff")),
    "100::/64": (REFUSED, ("100::", "100::1", "100::ffff:ffff:ffff:ffff")),
    "100:0:0:1::/64": (REFUSED, ("100:0:0:1::", "100:0:0:1::1", "100:0:0:1:ffff::ffff")),
    "2001::/23": (REFUSED, ("2001:100::1", "2001:1::4", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff")),
    "2001::/32": (REFUSED, ("2001::", "2001:0:808:808::f7f7:f7f7", "2001:0:ffff::ffff")),
    "2001:1::1/128": (REFUSED, ("2001:1::1",)),
    "2001:1::2/128": (REFUSED, ("2001:1::2",)),
    "2001:1::3/128": (REFUSED, ("2001:1::3",)),
    "2001:2::/48": (REFUSED, ("2001:2::", "2001:2::1", "2001:2:0:ffff::ffff")),
    "2001:3::/32": (REFUSED, ("2001:3::", "2001:3::1", "2001:3:ffff::ffff")),
    "2001:4:112::/48": (REFUSED, ("2001:4:112::", "2001:4:112::1", "2001:4:112:ffff::ffff")),
    "2001:10::/28": (REFUSED, ("2001:10::", "2001:10::1", "2001:1f:ffff::ffff")),
    "2001:20::/28": (REFUSED, ("2001:20::", "2001:20::1", "2001:2f:ffff::ffff")),
    "2001:30::/28": (REFUSED, ("2001:30::", "2001:30::1", "2001:3f:ffff::ffff")),
    "2001:db8::/32": (REFUSED, ("2001:db8::", "2001:db8::1", "2001:db8:ffff::ffff")),
    "2002::/16": (REFUSED, ("2002::", "2002:808:808::1", "2002:ffff::ffff")),
    "2620:4f:8000::/48": (ALLOWED, ("2620:4f:8000::", "2620:4f:8000::1", "2620:4f:8000:ffff::")),
    "3fff::/20": (REFUSED, ("3fff::", "3fff::1", "3fff:fff:ffff::ffff")),
    "5f00::/16": (REFUSED, ("5f00::", "5f00::1", "5f00:ffff::ffff")),
    "fc00::/7": (REFUSED, ("fc00::", "fd12:3456::1", "fdff:ffff::ffff")),
    "fe80::/10": (REFUSED, ("fe80::", "fe80::1", "febf:ffff::ffff")),
    "::/8": (REFUSED, ("::1:0:0:0", "1::1", "ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
    "100::/8": (REFUSED, ("100:1::1", "1ff:ffff::ffff")),
    "200::/7": (REFUSED, ("200::", "200::1", "3ff:ffff::ffff")),
    "400::/6": (REFUSED, ("400::", "400::1", "7ff:ffff::ffff")),
    "800::/5": (REFUSED, ("800::", "800::1", "fff:ffff::ffff")),
    "1000::/4": (REFUSED, ("1000::", "1000::1", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
    "4000::/3": (REFUSED, ("4000::", "4000::1", "5fff:ffff::ffff")),
    "6000::/3": (REFUSED, ("6000::", "6000::1", "7fff:ffff::ffff")),
    "8000::/3": (REFUSED, ("8000::", "8000::1", "9fff:ffff::ffff")),
    "a000::/3": (REFUSED, ("a000::", "a000::1", "bfff:ffff::ffff")),
    "c000::/3": (REFUSED, ("c000::", "c000::1", "dfff:ffff::ffff")),
    "e000::/4": (REFUSED, ("e000::", "e000::1", "efff:ffff::ffff")),
    "f000::/5": (REFUSED, ("f000::", "f000::1", "f7ff:ffff::ffff")),
    "f800::/6": (REFUSED, ("f800::", "f800::1", "fbff:ffff::ffff")),
    "fe00::/9": (REFUSED, ("fe00::", "fe00::1", "fe7f:ffff::ffff")),
    "fec0::/10": (REFUSED, ("fec0::", "fec0::1", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
    "ff00::/8": (REFUSED, ("ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
}

# Global unicast next to the special blocks (edges), and well-known public addresses.
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "1.0.0.0",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "191.255.255.255",
    "192.0.1.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700::1111",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2000::",
    "2001:200::",
    "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db9::",
    "2003::",
    "2001:1fff::1",
    "3ffe::1",
    "3fff:1000::",
    "2c0f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "64:ff9b::808:808",
]


def _probes() -> list[tuple[str, str, bool]]:
    return [(prefix, a, refused) for prefix, (refused, addrs) in ROWS.items() for a in addrs]


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_every_row_of_the_table_has_cases_here() -> None:
    assert [row.prefix for row in (*IPV4, *IPV6)] == list(ROWS)


@pytest.mark.parametrize(("prefix", "address", "refused"), _probes())
def test_each_row(prefix: str, address: str, refused: bool) -> None:
    assert ip(address) in ipaddress.ip_network(prefix)
    assert is_forbidden_address(ip(address)) is refused


@pytest.mark.parametrize("row", [r for r in (*IPV4, *IPV6) if r.reachable is not True])
def test_every_address_of_an_unreachable_row_is_refused(row: Any) -> None:
    network = ipaddress.ip_network(row.prefix)
    middle = network.network_address + network.num_addresses // 2
    for address in (network.network_address, middle, network.broadcast_address):
        assert is_forbidden_address(address), address


@pytest.mark.parametrize("address", PUBLIC)
def test_global_unicast_is_allowed(address: str) -> None:
    assert refusal(ip(address)) is None


NAT64 = "IPv4-IPv6 Translat. (64:ff9b::/96, RFC 6052)"
LOOPBACK = "Loopback (127.0.0.0/8, RFC 1122)"

# The IPv4 carried by each translation form is judged too; the reason names both.
EMBEDDED = [
    ("64:ff9b::7f00:1", f"{NAT64} carrying 127.0.0.1: {LOOPBACK}"),
    ("64:ff9b::127.0.0.1", f"{NAT64} carrying 127.0.0.1: {LOOPBACK}"),
    ("64:ff9b::a00:1", f"{NAT64} carrying 10.0.0.1: Private-Use (10.0.0.0/8, RFC 1918)"),
    (
        "64:ff9b::a9fe:a9fe",
        f"{NAT64} carrying 169.254.169.254: Link Local (169.254.0.0/16, RFC 3927)",
    ),
    (
        "64:ff9b::100.64.0.1",
        f"{NAT64} carrying 100.64.0.1: Shared Address Space (100.64.0.0/10, RFC 6598)",
    ),
    (
        "64:ff9b::192.168.1.1",
        f"{NAT64} carrying 192.168.1.1: Private-Use (192.168.0.0/16, RFC 1918)",
    ),
    ("64:ff9b::172.16.0.1", f"{NAT64} carrying 172.16.0.1: Private-Use (172.16.0.0/12, RFC 1918)"),
    ("64:ff9b::", f'{NAT64} carrying 0.0.0.0: "This host on this network" (0.0.0.0/32, RFC 1122)'),
    ("64:ff9b::224.0.0.1", f"{NAT64} carrying 224.0.0.1: Multicast (224.0.0.0/4, RFC 5771)"),
    (
        "64:ff9b::192.0.0.9",
        f"{NAT64} carrying 192.0.0.9: IETF Protocol Assignments (192.0.0.0/24, RFC 6890)",
    ),
    (
        "64:ff9b::ffff:ffff",
        f"{NAT64} carrying 255.255.255.255: Limited Broadcast (255.255.255.255/32, RFC 919)",
    ),
    (
        "64:ff9b:1::7f00:1",
        "IPv4-IPv6 Translat. (local use) (64:ff9b:1::/48, RFC 8215)",
    ),
    (
        "64:ff9b:1:7f00:0:100::",
        "IPv4-IPv6 Translat. (local use) (64:ff9b:1::/48, RFC 8215)",
    ),
    (
        "::127.0.0.1",
        f"IPv4-compatible Address (deprecated) (::/96, RFC 4291) carrying 127.0.0.1: {LOOPBACK}",
    ),
    (
        "::169.254.169.254",
        "IPv4-compatible Address (deprecated) (::/96, RFC 4291) carrying 169.254.169.254:"
        " Link Local (169.254.0.0/16, RFC 3927)",
    ),
    ("::8.8.8.8", "IPv4-compatible Address (deprecated) (::/96, RFC 4291)"),
    (
        "::ffff:127.0.0.1",
        f"IPv4-mapped Address (::ffff:0:0/96, RFC 4291) carrying 127.0.0.1: {LOOPBACK}",
    ),
    ("::ffff:8.8.8.8", "IPv4-mapped Address (::ffff:0:0/96, RFC 4291)"),
    (
        "::ffff:0:127.0.0.1",
        "IPv4-translated Address (SIIT) (::ffff:0:0:0/96, RFC 2765) carrying 127.0.0.1:"
        f" {LOOPBACK}",
    ),
    (
        "::ffff:0:a00:1",
        "IPv4-translated Address (SIIT) (::ffff:0:0:0/96, RFC 2765) carrying 10.0.0.1:"
        " Private-Use (10.0.0.0/8, RFC 1918)",
    ),
    ("::ffff:0:8.8.8.8", "IPv4-translated Address (SIIT) (::ffff:0:0:0/96, RFC 2765)"),
    ("2002:7f00:1::1", f"6to4 (2002::/16, RFC 3056) carrying 127.0.0.1: {LOOPBACK}"),
    (
        "2002:a9fe:a9fe::",
        "6to4 (2002::/16, RFC 3056) carrying 169.254.169.254:"
        " Link Local (169.254.0.0/16, RFC 3927)",
    ),
    ("2002:808:808::1", "6to4 (2002::/16, RFC 3056)"),
    # Teredo: server 65.54.227.120, client 127.0.0.1 stored inverted (0x80fffffe).
    (
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        f"TEREDO (2001::/32, RFC 4380) carrying 127.0.0.1: {LOOPBACK}",
    ),
    # Client 10.0.0.1, inverted: f5ff:fffe.
    (
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        "TEREDO (2001::/32, RFC 4380) carrying 10.0.0.1: Private-Use (10.0.0.0/8, RFC 1918)",
    ),
    # Server 192.168.0.1, client 8.8.8.8.
    (
        "2001:0:c0a8:1:0:0:f7f7:f7f7",
        "TEREDO (2001::/32, RFC 4380) carrying 192.168.0.1: Private-Use (192.168.0.0/16, RFC 1918)",
    ),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "TEREDO (2001::/32, RFC 4380)"),
    ("fec0::1", "Site-Local Unicast (deprecated) (fec0::/10, RFC 3879)"),
]


@pytest.mark.parametrize(("address", "reason"), EMBEDDED)
def test_embedded_ipv4_is_judged(address: str, reason: str) -> None:
    assert refusal(ip(address)) == reason


def test_scoped_link_local_is_refused() -> None:
    assert refusal(ip("fe80::1%eth0")) == "Link-Local Unicast (fe80::/10, RFC 4291)"


# Resolver level: the name resolution is injected at the OS boundary (getaddrinfo),
# as an /etc/hosts line would; the network guard records every connect attempt.
NAME = "api.example.com"
ISSUE_ANSWERS = [
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::a00:1",
    "64:ff9b:1::a00:1",
    "::127.0.0.1",
    "::ffff:0:7f00:1",
    "fec0::1",
    "2001:20::1",
    "3fff::1",
    "5f00::1",
    "100::1",
]


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    guarded = socket.socket.connect

    def record(self: socket.socket, address: Any) -> Any:
        seen.append(address)
        return guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    return seen


def resolve_to(monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def open_upstream(host: str = NAME) -> UpstreamFailure:
    request = UpstreamRequest(
        method="GET",
        host=host,
        port=443,
        path="/v1/users",
        query=(),
        headers=(("authorization", "Bearer injected"),),
        body=b"",
        timeout_s=5.0,
    )

    async def go() -> None:
        client = Http1Upstream(UpstreamSettings())
        try:
            await client.open(request)
        finally:
            await client.aclose()

    with pytest.raises(UpstreamFailure) as caught:
        asyncio.run(go())
    return caught.value


@pytest.mark.parametrize("answer", ISSUE_ANSWERS)
def test_name_resolving_to_an_embedded_or_reserved_address_is_never_connected(
    monkeypatch: pytest.MonkeyPatch, connects: list[Any], answer: str
) -> None:
    resolve_to(monkeypatch, answer)
    error = open_upstream()
    assert error.to_json() == {
        "error": "E-UPSTREAM-FORBIDDEN",
        "message": "the upstream address is forbidden",
    }
    assert (error.status, connects) == (403, [])


def test_one_forbidden_address_refuses_the_whole_answer(
    monkeypatch: pytest.MonkeyPatch, connects: list[Any]
) -> None:
    resolve_to(monkeypatch, "93.184.216.34", "64:ff9b::7f00:1")
    assert (open_upstream().code, connects) == ("E-UPSTREAM-FORBIDDEN", [])


def test_guarded_resolver_refuses_nat64_of_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_to(monkeypatch, "64:ff9b::7f00:1")

    async def go() -> Any:
        resolver = GuardedResolver(DevResolve(), ThreadedResolver())
        try:
            return await resolver.resolve(NAME, 443, socket.AF_UNSPEC)
        finally:
            await resolver.close()

    with pytest.raises(AddressRefused) as caught:
        asyncio.run(go())
    assert str(caught.value) == f"{NAME} resolves to a forbidden address"
    assert classify_error(caught.value).code == "E-UPSTREAM-FORBIDDEN"


def test_guarded_resolver_passes_nat64_of_a_public_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolve_to(monkeypatch, "64:ff9b::808:808")

    async def go() -> Any:
        resolver = GuardedResolver(DevResolve(), ThreadedResolver())
        try:
            return await resolver.resolve(NAME, 443, socket.AF_UNSPEC)
        finally:
            await resolver.close()

    assert [result["host"] for result in asyncio.run(go())] == ["64:ff9b::808:808"]


@pytest.mark.parametrize(
    "host", ["[64:ff9b::7f00:1]", "[::127.0.0.1]", "[::ffff:0:a00:1]", "[fec0::1]", "192.0.0.9"]
)
def test_ip_literal_hosts_use_the_same_rule(connects: list[Any], host: str) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        check_literal_host(host, DevResolve())
    assert (caught.value.status, caught.value.code) == (403, "E-UPSTREAM-FORBIDDEN")
    assert (open_upstream(host).code, connects) == ("E-UPSTREAM-FORBIDDEN", [])


def test_docs_list_every_row_of_the_table() -> None:
    docs = (Path(__file__).resolve().parents[4] / "docs" / "runtime.md").read_text()
    section = docs[docs.index("### The SSRF rule") :]
    assert [r.prefix for r in (*IPV4, *IPV6) if f"`{r.prefix}`" not in section] == []


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.0.0.1", "localhost"])
def test_numeric_and_local_names_are_resolved_then_refused(connects: list[Any], host: str) -> None:
    """Not IP literals to `ipaddress`, but the system resolver reads them as loopback."""
    assert (open_upstream(host).code, connects) == ("E-UPSTREAM-FORBIDDEN", [])
