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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyrage

from aivault_ops.runtime.auth.base import AuthUnavailable

_CREDENTIAL = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True, repr=False)
class AccessToken:
    """A token, when to refresh it, and the refresh token to use next (if rotated)."""

    value: str | None
    expires_at: float
    refresh_at: float
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return f"AccessToken(expires_at={self.expires_at})"


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
            return AccessToken(**data)
        except Exception:  # missing, corrupt, another identity: the cache is only a cache
            return None

    def save(self, token: AccessToken, fingerprint: str) -> None:
        """Encrypt and replace the file atomically (temp file, fsync, rename)."""
        payload = json.dumps({**asdict(token), "fingerprint": fingerprint}).encode()
        sealed = pyrage.encrypt(payload, [self._recipient])
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, sealed)
            os.fsync(fd)
        finally:
            os.close(fd)
        temp.replace(self.path)
