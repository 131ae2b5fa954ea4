"""The o_auth2 token cache: one age-encrypted file per credential in the state dir.

`<state-dir>/oauth2/<credential>.age` is encrypted to the runtime's own
x25519 recipient (the serve process holds the identity), so no token is
ever plaintext on disk; a fingerprint of the credential's configuration
and secrets inside the encrypted payload makes a cache of another
configuration unusable. An unreadable file is ignored: it is only a cache.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage

from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.secret import Secret

_CREDENTIAL = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class AccessToken:
    """A token, when to refresh it, and the refresh token to use next (if rotated)."""

    value: Secret | None
    expires_at: float
    refresh_at: float
    refresh_token: Secret | None = None

    def to_json(self) -> dict[str, Any]:
        """The cache file's payload (revealed: it is encrypted before it is written)."""
        return {
            "value": _plain(self.value),
            "expires_at": self.expires_at,
            "refresh_at": self.refresh_at,
            "refresh_token": _plain(self.refresh_token),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccessToken:
        """The token of a decrypted cache payload; ValueError/TypeError if malformed."""
        value, refresh = data.pop("value"), data.pop("refresh_token", None)
        return cls(_wrapped(value), **data, refresh_token=_wrapped(refresh))


def _plain(secret: Secret | None) -> str | None:
    return None if secret is None else secret.reveal_text()


def _wrapped(text: Any) -> Secret | None:
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise TypeError("a cached token is not text")
    return Secret(text)


class TokenFile:
    """One credential's token cache file, age-encrypted to the runtime's own recipient."""

    def __init__(self, path: Path, identity: Any) -> None:
        if not hasattr(identity, "to_public"):
            raise AuthUnavailable("the o_auth2 token cache needs an age x25519 identity")
        self.path = path
        self._identity = identity
        self._recipient = identity.to_public()

    @classmethod
    def for_credential(cls, state_dir: Path, credential: str, identity: Any) -> TokenFile:
        """`<state_dir>/oauth2/<credential>.age` (the directory is created mode 0700)."""
        if _CREDENTIAL.fullmatch(credential) is None:
            raise AuthUnavailable(f"credential name {credential!r} cannot name a cache file")
        directory = state_dir / "oauth2"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(directory / f"{credential}.age", identity)

    def version(self) -> tuple[int, int, int] | None:
        """(inode, size, mtime) of the file, None when absent: changes on every save."""
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def load(self, fingerprint: str) -> AccessToken | None:
        """The cached token, or None when absent, unreadable, or for another configuration."""
        try:
            data = json.loads(pyrage.decrypt(self.path.read_bytes(), [self._identity]))
            if data.pop("fingerprint") != fingerprint:
                return None
            return AccessToken.from_json(data)
        except Exception:  # missing, corrupt, another identity: the cache is only a cache
            return None

    def save(self, token: AccessToken, fingerprint: str) -> None:
        """Encrypt and replace the file atomically (temp file, fsync, rename)."""
        payload = json.dumps({**token.to_json(), "fingerprint": fingerprint}).encode()
        sealed = pyrage.encrypt(payload, [self._recipient])
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, sealed)
            os.fsync(fd)
        finally:
            os.close(fd)
        temp.replace(self.path)
