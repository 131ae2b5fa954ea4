"""The o_auth2 token cache: one age-encrypted file per credential in the state dir.

`<state-dir>/oauth2/<credential>.age` is encrypted to the runtime's own
x25519 recipient (the serve process holds the identity; a runtime with only
an SSH identity uses a key that lives as long as the process, which its
workers share), so no token is ever plaintext on disk.

Inside, entries are keyed by the credential's *lineage* (a hash of the
credential's name, grant and secret JSON): a rotated refresh token belongs
to the secret it descends from, so it survives any reload that keeps the
secret, even one that changes the scopes. The access token of an entry
carries the fingerprint of the whole configuration it was issued for and
is used only by that configuration. A file that cannot be decrypted or
parsed is ignored (it is only a cache); a path that is not a regular file
is refused (`files.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyrage

from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.runtime.auth.oauth2.files import private_dir, read_private, replace_private
from aivault_ops.runtime.auth.oauth2.lock import RefreshLock
from aivault_ops.secret import Secret

KEEP_LINEAGES: Final = 2
_CREDENTIAL = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class AccessToken:
    """A token, when to refresh it, the refresh token to use next, and for which configuration.

    `value` None: no usable access token (refused by an upstream, or never
    issued). `blocked`: the provider rotated the refresh token to a value
    the runtime refused, so the previous one must never be sent again.
    """

    value: Secret | None
    expires_at: float
    refresh_at: float
    refresh_token: Secret | None = None
    fingerprint: str = ""
    blocked: bool = False
    issued_at: float = 0.0  # when this runtime received it (0: unknown, an older cache)

    def to_json(self) -> dict[str, Any]:
        """The cache entry (revealed: it is encrypted before it is written)."""
        return {
            "value": _plain(self.value),
            "expires_at": self.expires_at,
            "refresh_at": self.refresh_at,
            "refresh_token": _plain(self.refresh_token),
            "fingerprint": self.fingerprint,
            "blocked": self.blocked,
            "issued_at": self.issued_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccessToken:
        """The token of a decrypted cache entry; ValueError/TypeError if malformed."""
        data = dict(data)
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


def cache_identity(keys: Iterable[Any]) -> Any:
    """The first x25519 identity of `keys`, else a new one that lives as long as this process.

    Called before the workers are forked, so they all hold the same key and
    share the cache file; after a restart such a file cannot be read.
    """
    own = next((key for key in keys if hasattr(key, "to_public")), None)
    return own if own is not None else pyrage.x25519.Identity.generate()


class TokenFile:
    """One credential's token cache file, age-encrypted to the runtime's own recipient."""

    def __init__(self, path: Path, identity: Any) -> None:
        if not hasattr(identity, "to_public"):
            raise AuthUnavailable("the o_auth2 token cache needs an age x25519 identity")
        self.path = path
        self.lock = RefreshLock(path.with_suffix(".lock"))
        self._identity = identity
        self._recipient = identity.to_public()

    @classmethod
    def for_credential(cls, state_dir: Path, credential: str, identity: Any) -> TokenFile:
        """`<state_dir>/oauth2/<credential>.age` (the directory is kept mode 0700)."""
        if _CREDENTIAL.fullmatch(credential) is None:
            raise AuthUnavailable(f"credential name {credential!r} cannot name a cache file")
        return cls(private_dir(state_dir / "oauth2") / f"{credential}.age", identity)

    def load(self, lineage: str, fingerprint: str = "") -> AccessToken | None:
        """The lineage's cached entry; None when absent or unreadable.

        AuthUnavailable when the path is not a regular file. `fingerprint`
        reads a file of the former layout (one entry for one configuration).
        """
        entry = self._entries(lineage, fingerprint).get(lineage)
        try:
            return None if entry is None else AccessToken.from_json(entry)
        except (TypeError, ValueError):
            return None

    def save(self, lineage: str, token: AccessToken) -> None:
        """Store the lineage's entry (keeping the latest other one), atomically."""
        entries = {key: value for key, value in self._entries(lineage).items() if key != lineage}
        kept = dict(list(entries.items())[-(KEEP_LINEAGES - 1) :])
        payload = json.dumps({"lineages": {**kept, lineage: token.to_json()}}).encode()
        replace_private(self.path, pyrage.encrypt(payload, [self._recipient]))

    def _entries(self, lineage: str, fingerprint: str = "") -> dict[str, Any]:
        sealed = read_private(self.path)
        if sealed is None:
            return {}
        try:
            data = json.loads(pyrage.decrypt(sealed, [self._identity]))
        except Exception:  # corrupt, another identity: the cache is only a cache
            return {}
        if not isinstance(data, dict):
            return {}
        if fingerprint and data.get("fingerprint") == fingerprint:
            return {lineage: data}
        lineages = data.get("lineages")
        return lineages if isinstance(lineages, dict) else {}
