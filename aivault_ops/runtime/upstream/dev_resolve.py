"""`--dev-resolve HOST=IP:PORT`: send a name to a local address (development only)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from aivault_ops.errors import UsageError


@dataclass(frozen=True)
class DevResolve:
    """`--dev-resolve HOST=IP:PORT` entries (development only: bypass the SSRF rule)."""

    targets: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, values: list[str]) -> DevResolve:
        """Parse `HOST=IP:PORT` values (IPv6 as `[::1]:8443`); a bad one is a `UsageError`."""
        targets: dict[str, tuple[str, int]] = {}
        for value in values:
            host, ip, port = _parse_dev_resolve(value)
            targets[host] = (ip, port)
        return cls(targets)


def _parse_dev_resolve(value: str) -> tuple[str, str, int]:
    host, sep, target = value.partition("=")
    ip_text, colon, port_text = target.rpartition(":")
    ip_text = ip_text.removeprefix("[").removesuffix("]")
    try:
        ip = ipaddress.ip_address(ip_text)
        port = int(port_text)
    except ValueError:
        ip, port = None, 0
    if not (sep and colon and host and ip is not None and 0 < port < 65536):
        raise UsageError(f"--dev-resolve {value!r}: expected HOST=IP:PORT")
    return host.lower(), str(ip), port
