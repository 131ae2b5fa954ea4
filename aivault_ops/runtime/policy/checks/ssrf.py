"""The SSRF rule: which addresses an upstream connection may go to.

Decided from the special-purpose address table (`special_purpose.py`), never
from `ipaddress.is_global`, which calls NAT64 of 127.0.0.1 or a deprecated
site-local address global. The rows containing an address are walked from
the most specific to the least:

- a row whose registry entry is not "globally reachable: True" (False, N/A,
  or no answer) refuses the address, so a reachable block nested in an
  unreachable one (192.0.0.9 in 192.0.0.0/24, ORCHIDv2 in 2001::/23) is
  still refused;
- a translation row (NAT64 64:ff9b::/96, IPv4-compatible, IPv4-mapped,
  SIIT, 6to4, Teredo) ends the walk: the IPv4 address it carries is judged
  by the same table, and the row itself must also be globally reachable.
  Only the NAT64 well-known prefix is: NAT64 of a public IPv4 address is
  allowed (DNS64 networks answer it for IPv4-only names), NAT64 of anything
  else is refused. The local-use NAT64 prefix 64:ff9b:1::/48 is refused
  outright (where the IPv4 sits in it depends on the network's prefix length).

An address in no row is global unicast and allowed. This module imports
nothing but the standard library and the table, so `validate` uses it too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

from aivault_ops.runtime.policy.checks.special_purpose import IPV4, IPV6, Embedding, Row

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Levels = tuple[tuple[int, dict[int, Row]], ...]
_U32: Final = 0xFFFFFFFF


def _levels(rows: Iterable[Row], bits: int) -> _Levels:
    """Rows keyed by their network bits, one dict per prefix length, most specific first.

    Precomputed once, so a check is a dict lookup per distinct prefix length.
    """
    by_length: dict[int, dict[int, Row]] = {}
    for row in rows:
        network = ipaddress.ip_network(row.prefix)
        key = int(network.network_address) >> (bits - network.prefixlen)
        level = by_length.setdefault(network.prefixlen, {})
        if key in level:
            raise ValueError(f"{row.prefix} is listed twice")
        level[key] = row
    return tuple((bits - length, by_length[length]) for length in sorted(by_length, reverse=True))


_IPV4_LEVELS: Final = _levels(IPV4, 32)
_IPV6_LEVELS: Final = _levels(IPV6, 128)


def is_forbidden_address(address: IPAddress) -> bool:
    """True for every address an upstream must never be: anything but global unicast.

    Prevents SSRF: loopback, private, link-local, shared (CGNAT), unspecified,
    multicast, reserved, documentation, benchmarking and every other
    special-purpose block, and IPv6 forms carrying such an IPv4 address.
    """
    return refusal(address) is not None


def refusal(address: IPAddress) -> str | None:
    """Why `address` is refused (its registry row, and what it carries), or None if allowed."""
    value = int(address)
    levels = _IPV4_LEVELS if address.version == 4 else _IPV6_LEVELS
    for shift, rows in levels:
        row = rows.get(value >> shift)
        if row is None:
            continue
        if row.embeds is not None:
            return _translation_refusal(row, row.embeds, value)
        if row.reachable is not True:
            return _describe(row)
    return None


def _translation_refusal(row: Row, embeds: Embedding, value: int) -> str | None:
    for carried in embedded_ipv4(embeds, value):
        inner = refusal(carried)
        if inner is not None:
            return f"{_describe(row)} carrying {carried}: {inner}"
    return None if row.reachable is True else _describe(row)


def embedded_ipv4(embeds: Embedding, value: int) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 address(es) a translation prefix carries in the IPv6 address `value`."""
    if embeds is Embedding.SIX_TO_FOUR:
        return (ipaddress.IPv4Address((value >> 80) & _U32),)
    if embeds is Embedding.TEREDO:
        server = ipaddress.IPv4Address((value >> 64) & _U32)
        return server, ipaddress.IPv4Address(~value & _U32)
    return (ipaddress.IPv4Address(value & _U32),)


def _describe(row: Row) -> str:
    return f"{row.name} ({row.prefix}, {row.rfc})"
