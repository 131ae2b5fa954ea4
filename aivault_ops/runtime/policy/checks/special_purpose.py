"""Every address block that is not plain global unicast, as data: one row per block.

The rows are the IANA IPv4 and IPv6 Special-Purpose Address Registries
(registry versions of 2025), completed by the blocks of the IANA IPv4 and
IPv6 Address Space registries that are not global unicast (IPv4 multicast;
every IPv6 block outside 2000::/3) and by two deprecated IPv6 forms that
carry an IPv4 address but that neither registry lists (IPv4-compatible and
SIIT IPv4-translated addresses). `runtime/policy/checks/ssrf.py` decides from this table.

`reachable` is the registries' "Globally Reachable" column: True, False, or
None where the registry says N/A (or gives no answer, for deprecated
blocks). `embeds` says where a translation prefix carries an IPv4 address.
A block is listed once, under the registry that says most about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final


class Embedding(Enum):
    """Where an IPv6 translation prefix carries an IPv4 address."""

    LAST_32_BITS = "the last 32 bits"
    SIX_TO_FOUR = "bits 16 to 47"
    TEREDO = "bits 32 to 63 (server) and, inverted, the last 32 bits (client)"


@dataclass(frozen=True)
class Row:
    """One address block: its prefix, registry name, RFC and global reachability."""

    prefix: str
    name: str
    rfc: str
    reachable: bool | None
    embeds: Embedding | None = None


_LAST_32 = Embedding.LAST_32_BITS

IPV4: Final = (
    Row("0.0.0.0/8", '"This network"', "RFC 791", False),
    Row("0.0.0.0/32", '"This host on this network"', "RFC 1122", False),
    Row("10.0.0.0/8", "Private-Use", "RFC 1918", False),
    Row("100.64.0.0/10", "Shared Address Space", "RFC 6598", False),
    Row("127.0.0.0/8", "Loopback", "RFC 1122", False),
    Row("169.254.0.0/16", "Link Local", "RFC 3927", False),
    Row("172.16.0.0/12", "Private-Use", "RFC 1918", False),
    Row("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890", False),
    Row("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", False),
    Row("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", False),
    Row("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", True),
    Row("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    Row("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880", False),
    Row("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880", False),
    Row("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", False),
    Row("192.31.196.0/24", "AS112-v4", "RFC 7535", True),
    Row("192.52.193.0/24", "AMT", "RFC 7450", True),
    Row("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", None),
    Row("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", False),
    Row("192.168.0.0/16", "Private-Use", "RFC 1918", False),
    Row("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", True),
    Row("198.18.0.0/15", "Benchmarking", "RFC 2544", False),
    Row("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", False),
    Row("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", False),
    Row("224.0.0.0/4", "Multicast", "RFC 5771", False),
    Row("240.0.0.0/4", "Reserved", "RFC 1112", False),
    Row("255.255.255.255/32", "Limited Broadcast", "RFC 919", False),
)

IPV6: Final = (
    Row("::1/128", "Loopback Address", "RFC 4291", False),
    Row("::/128", "Unspecified Address", "RFC 4291", False),
    Row("::/96", "IPv4-compatible Address (deprecated)", "RFC 4291", False, _LAST_32),
    Row("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", False, _LAST_32),
    Row("::ffff:0:0:0/96", "IPv4-translated Address (SIIT)", "RFC 2765", False, _LAST_32),
    Row("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", True, _LAST_32),
    Row("64:ff9b:1::/48", "IPv4-IPv6 Translat. (local use)", "RFC 8215", False),
    Row("100::/64", "Discard-Only Address Block", "RFC 6666", False),
    Row("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", False),
    Row("2001::/23", "IETF Protocol Assignments", "RFC 2928", False),
    Row("2001::/32", "TEREDO", "RFC 4380", None, Embedding.TEREDO),
    Row("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", True),
    Row("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    Row("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", True),
    Row("2001:2::/48", "Benchmarking", "RFC 5180", False),
    Row("2001:3::/32", "AMT", "RFC 7450", True),
    Row("2001:4:112::/48", "AS112-v6", "RFC 7535", True),
    Row("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", None),
    Row("2001:20::/28", "ORCHIDv2", "RFC 7343", True),
    Row("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", True),
    Row("2001:db8::/32", "Documentation", "RFC 3849", False),
    Row("2002::/16", "6to4", "RFC 3056", None, Embedding.SIX_TO_FOUR),
    Row("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", True),
    Row("3fff::/20", "Documentation", "RFC 9637", False),
    Row("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", False),
    Row("fc00::/7", "Unique-Local", "RFC 4193", False),
    Row("fe80::/10", "Link-Local Unicast", "RFC 4291", False),
    # The IPv6 Address Space registry: every block outside 2000::/3 (Global Unicast).
    Row("::/8", "Reserved by IETF", "RFC 4291", False),
    Row("100::/8", "Reserved by IETF", "RFC 4291", False),
    Row("200::/7", "Reserved by IETF", "RFC 4048", False),
    Row("400::/6", "Reserved by IETF", "RFC 4291", False),
    Row("800::/5", "Reserved by IETF", "RFC 4291", False),
    Row("1000::/4", "Reserved by IETF", "RFC 4291", False),
    Row("4000::/3", "Reserved by IETF", "RFC 4291", False),
    Row("6000::/3", "Reserved by IETF", "RFC 4291", False),
    Row("8000::/3", "Reserved by IETF", "RFC 4291", False),
    Row("a000::/3", "Reserved by IETF", "RFC 4291", False),
    Row("c000::/3", "Reserved by IETF", "RFC 4291", False),
    Row("e000::/4", "Reserved by IETF", "RFC 4291", False),
    Row("f000::/5", "Reserved by IETF", "RFC 4291", False),
    Row("f800::/6", "Reserved by IETF", "RFC 4291", False),
    Row("fe00::/9", "Reserved by IETF", "RFC 4291", False),
    Row("fec0::/10", "Site-Local Unicast (deprecated)", "RFC 3879", False),
    Row("ff00::/8", "Multicast", "RFC 4291", False),
)
