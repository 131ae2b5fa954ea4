"""Ed25519 signing keys and their public halves.

Private keys are PKCS8 PEM files written with mode 0600; public keys are
written `ed25519:<base64 of the raw 32 bytes>`; a key's id is the first 16
hex characters of the sha256 of its raw public bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from aivault_ops.bundle.errors import KeyExists, KeyFileError, KeyFormatError
from aivault_ops.private_files import make_private_parents

PUBLIC_KEY_PREFIX = "ed25519:"
_RAW_KEY_BYTES = 32


def keyid_of(raw_public_key: bytes) -> str:
    """The key id: first 16 hex characters of sha256 of the raw public key."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    """A trusted Ed25519 public key, exactly 32 raw bytes."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != _RAW_KEY_BYTES:
            raise KeyFormatError(f"an Ed25519 public key has 32 bytes, not {len(self.raw)}")

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Parse `ed25519:<base64>`; anything else is a `KeyFormatError`."""
        text = text.strip()
        if not text.startswith(PUBLIC_KEY_PREFIX):
            raise KeyFormatError(
                "a public key looks like 'ed25519:<base64>'",
                hint="print the public half of a signing key: `aivault-ops keys public KEYFILE`",
            )
        try:
            raw = base64.b64decode(text[len(PUBLIC_KEY_PREFIX) :], validate=True)
        except binascii.Error:
            raise KeyFormatError("the public key after 'ed25519:' is not valid base64") from None
        return cls(raw)

    @property
    def keyid(self) -> str:
        """First 16 hex characters of sha256 of the raw key."""
        return keyid_of(self.raw)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when `signature` is this key's Ed25519 signature over `data`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def __str__(self) -> str:
        return PUBLIC_KEY_PREFIX + base64.b64encode(self.raw).decode("ascii")


@dataclass(frozen=True, repr=False)
class SigningKey:
    """An Ed25519 private key; its repr never shows key material."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> PublicKey:
        """The public half."""
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return PublicKey(raw)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature over `data`."""
        return self.private.sign(data)

    def to_pem(self) -> bytes:
        """Unencrypted PKCS8 PEM."""
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"SigningKey(keyid={self.public_key.keyid})"


def signing_key_from_pem(pem: bytes, *, source: str) -> SigningKey:
    """Parse an unencrypted PKCS8 PEM Ed25519 private key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFormatError(
            f"{source}: not an unencrypted PEM private key",
            hint="create one with `aivault-ops keys signing --out KEYFILE`",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"{source}: the private key is not an Ed25519 key")
    return SigningKey(key)


def load_signing_key(path: Path) -> SigningKey:
    """Read a signing key file written by `save_signing_key`."""
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read signing key: {error.strerror}") from None
    return signing_key_from_pem(pem, source=str(path))


def save_signing_key(key: SigningKey, path: Path, *, overwrite: bool = False) -> None:
    """Write `key` as PKCS8 PEM with mode 0600; refuse an existing file unless `overwrite`."""
    write_private_file(path, key.to_pem(), overwrite=overwrite)


def write_private_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write `data` to a file only its owner can read (0600, whatever the umask).

    The file is created with mode 0600 by `os.open`, so it is never readable by
    others, not even between creation and a later chmod; an existing file is
    refused unless `overwrite`, and a symlink at `path` is never followed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
    flags |= os.O_TRUNC if overwrite else os.O_EXCL
    try:
        make_private_parents(path)
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyExists(f"{path}: already exists", hint="pass --force to replace it") from None
    except OSError as error:
        raise KeyFileError(f"{path}: cannot write: {error.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, 0o600)
        handle.write(data)
        handle.flush()
        os.fsync(fd)


def public_half(path: Path) -> list[str]:
    """The public half of a key file, never its private part.

    An Ed25519 PEM private key gives `ed25519:<base64>`; an age identity file
    gives one `age1…` recipient per identity in it.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read: {error.strerror}") from None
    if data.lstrip().startswith(b"-----BEGIN PRIVATE KEY-----"):  # a PEM marker, no key
        return [str(signing_key_from_pem(data, source=str(path)).public_key)]
    return _age_recipients(data, path)


def _age_recipients(data: bytes, path: Path) -> list[str]:
    from aivault_ops.sops.errors import NoIdentity
    from aivault_ops.sops.identities import parse_identity_text

    text = data.decode("utf-8", errors="replace")
    try:
        identities = parse_identity_text(text, str(path))
    except NoIdentity:
        identities = []
    if not identities:
        raise KeyFormatError(f"{path}: neither an Ed25519 PEM private key nor an age identity file")
    return [str(identity.to_public()) for identity in identities]  # type: ignore[attr-defined]


def resolve_public_key(value: str) -> PublicKey:
    """A `--trust` value: `ed25519:<base64>` itself, or a file holding one."""
    if value.startswith(PUBLIC_KEY_PREFIX):
        return PublicKey.parse(value)
    try:
        text = Path(value).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise KeyFileError(
            f"{value}: not an 'ed25519:<base64>' key and not a readable key file ({reason})"
        ) from None
    if "PRIVATE KEY-----" in text or "AGE-SECRET-KEY-" in text:  # markers only, no key
        raise KeyFormatError(
            f"{value}: is a private key; --trust takes the public half",
            hint=f"print it with `aivault-ops keys public {value}`",
        )
    try:
        return PublicKey.parse(text)
    except KeyFormatError as error:
        raise KeyFormatError(f"{value}: {error.message}", hint=error.hint) from None
