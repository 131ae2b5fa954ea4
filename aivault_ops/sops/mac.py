"""The SOPS MAC: SHA-512 over the leaf values, encrypted with `lastmodified` as AAD."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Protocol

from aivault_ops.sops import cipher
from aivault_ops.sops.errors import MacMismatch, MalformedSopsFile

_LASTMODIFIED = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_SOPS_SEED = hashlib.sha256(b"sops").digest()


class Hasher(Protocol):
    """The part of hashlib's interface the MAC needs."""

    def update(self, data: bytes, /) -> None: ...  # pragma: no cover - protocol

    def hexdigest(self) -> str: ...  # pragma: no cover - protocol


def new_hasher(mac_only_encrypted: bool) -> Hasher:
    """SHA-512, seeded with SHA-256("sops") in `mac_only_encrypted` mode."""
    hasher = hashlib.sha512()
    if mac_only_encrypted:
        hasher.update(_SOPS_SEED)
    return hasher


def now_lastmodified() -> str:
    """The current time as sops writes `lastmodified` (UTC, no fraction)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mac_aad(lastmodified: str, source: str) -> bytes:
    """`lastmodified` re-formatted as Go RFC3339 (fraction dropped, `Z` for UTC)."""
    match = _LASTMODIFIED.fullmatch(lastmodified)
    if not match:
        raise MalformedSopsFile(f"{source}: sops metadata lastmodified is not an RFC 3339 time")
    stamp, _fraction, zone = match.groups()
    if zone != "Z" and zone[1:] == "00:00":
        zone = "Z"
    return f"{stamp}{zone}".encode()


def encrypt_mac(key: bytes, digest_hex: str, lastmodified: str) -> str:
    """The `mac` field for a computed digest."""
    return cipher.encrypt(key, digest_hex.encode("ascii"), mac_aad(lastmodified, ""), "str")


def check_mac(key: bytes, stored: str, lastmodified: str, computed: str, source: str) -> None:
    """Compare the stored MAC with the computed one; MacMismatch says which failed."""
    if not stored:
        raise MacMismatch(f"{source}: MAC mismatch: the file has no MAC")
    try:
        plain, _type = cipher.decrypt(key, stored, mac_aad(lastmodified, source))
    except cipher.CipherError as error:
        raise MacMismatch(
            f"{source}: MAC mismatch: the MAC or lastmodified was modified outside sops "
            "(the stored MAC cannot be decrypted)"
        ) from error
    file_has = plain.decode("ascii", errors="replace")
    if file_has != computed:
        raise MacMismatch(
            f"{source}: MAC mismatch: the file was modified outside sops "
            f"(file has {file_has[:12]}…, computed {computed[:12]}…)"
        )
