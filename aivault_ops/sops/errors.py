"""The SOPS error family: one line each, with the file and key path, never a value."""

from __future__ import annotations

from aivault_ops.errors import AivaultError


class SopsError(AivaultError):
    """Any failure reading, decrypting or writing a SOPS file."""


class MacMismatch(SopsError):
    """The MAC does not match the values, or the MAC itself was altered."""


class ValueTampered(SopsError):
    """A value failed to decrypt, or a plaintext sits where ciphertext must be."""


class NoMatchingIdentity(SopsError):
    """Identities were found, but none opens the file's data key."""


class NoIdentity(SopsError):
    """No age identity was found in any of the places sops looks."""


class UnsupportedFormat(SopsError):
    """The file uses a format or feature this implementation does not handle."""


class NotASopsFile(SopsError):
    """The file has no top-level `sops` metadata."""


class MalformedSopsFile(SopsError):
    """The file claims to be a SOPS file but its structure is broken."""


class ConfigError(SopsError):
    """`.sops.yaml` is missing, invalid, or has no rule for a path."""


def key_path_text(path: tuple[str, ...]) -> str:
    """A key path as users read it: `db.password` (the top level is `(top level)`)."""
    return ".".join(path) if path else "(top level)"
