"""An OAuth2 provider for the o_auth2 e2e tests: a token endpoint and an API over TLS.

The token endpoint rotates refresh tokens and, like providers following the
OAuth 2.0 Security BCP, revokes the whole token family (every access token
it issued) when a refresh token arrives a second time. It records every
refresh token it receives. Tests queue special answers (`script`), each
either a fixed (status, body) or a body that also rotates the refresh
token. The API accepts the access tokens issued and not revoked; a path
ending in `always-401` is refused with `challenge` as WWW-Authenticate.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from support.auth_bundles import AuthBundles, Cred, encrypt, policy

from aivault_ops.bundle import SigningKey, build_bundle, publish_bundle
from aivault_ops.canonical_json import canonical_json

API, LOGIN = "api.crm.example.com", "login.crm.example.com"
ENDPOINT = f"https://{LOGIN}/oauth/token"


@dataclass
class Provider:
    """What the provider knows and saw; `delay` widens the window of a refresh."""

    current: str
    delay: float = 0.2
    revoked: bool = False
    received: list[str] = field(default_factory=list)
    grants: int = 0
    asked: int = 0  # token requests received (counted before `delay`)
    issued: dict[str, bool] = field(default_factory=dict)  # access token -> still valid
    hits: list[tuple[str, str, str, int]] = field(
        default_factory=list
    )  # method, path, token, status
    script: list[tuple[int, dict[str, Any], bool]] = field(default_factory=list)
    challenge: str = 'Bearer error="invalid_token"'
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.grants += 1
            token = form.get("refresh_token")
            if token is not None:
                self.received.append(token)
            if token is not None and (self.revoked or token != self.current):
                self.revoked = True
                self.issued = dict.fromkeys(self.issued, False)
                return 400, {"error": "invalid_grant"}
            if self.script:
                status, body, rotates = self.script.pop(0)
                return status, {**body, **self._rotated(rotates)}
            access = f"at-canary-{secrets.token_hex(8)}"
            self.issued[access] = True
            return 200, {"access_token": access, "expires_in": 3600, **self._rotated(True)}

    def _rotated(self, rotates: bool) -> dict[str, str]:
        if not rotates:
            return {}
        self.current = f"rt-canary-rotated-{secrets.token_hex(8)}"
        return {"refresh_token": self.current}

    def revoke_access_tokens(self) -> None:
        """Refuse every access token issued so far (the refresh token stays valid)."""
        with self.lock:
            self.issued = dict.fromkeys(self.issued, False)

    def secrets(self) -> list[str]:
        """Every token value the provider handed out or received."""
        with self.lock:
            return [*self.received, self.current, *self.issued]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler for both hosts."""
        if request.host.startswith(LOGIN):
            form = {key: str(value) for key, value in (await request.post()).items()}
            self.asked += 1
            await asyncio.sleep(self.delay)
            status, body = self.answer(form)
            return web.json_response(body, status=status)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        valid = self.issued.get(token, False) and not request.path.endswith("always-401")
        self.hits.append((request.method, request.path, token, 200 if valid else 401))
        if valid:
            return web.json_response({"ok": True, "text": "every e stays an e"})
        headers = {"WWW-Authenticate": self.challenge}
        return web.json_response({"error": "invalid_token"}, status=401, headers=headers)


def ssh_bundles(directory: Path) -> AuthBundles:
    """Bundles whose secrets only an OpenSSH ed25519 key opens (the runtime's only identity)."""
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    recipient = key.with_suffix(".pub").read_text().split()[:2]
    return AuthBundles(directory, key, " ".join(recipient), SigningKey.generate())


def publish_with_policy(
    bundles: AuthBundles,
    bundle_dir: Path,
    serial: int,
    creds: Mapping[str, Cred],
    values: Mapping[str, str],
    capability_policy: Mapping[str, Any],
) -> Path:
    """`bundles.publish(bundle_dir, serial, creds, values)` with `capability_policy` on
    every capability (e.g. `{"timeoutMs": 1000}`)."""
    secret_file = encrypt(bundles.directory, bundles.recipient, values)
    document = policy(creds, secret_file, list(values))
    for capability in document["capabilities"].values():
        capability["policy"] = dict(capability_policy)
    data = build_bundle(
        policy_json=canonical_json(document),
        secret_files={"secrets/auth.sops.yaml": secret_file},
        serial=serial,
        revision=f"rev-{serial}",
        environment="test",
        expires_at=None,
        signing_key=bundles.key,
    )
    return publish_bundle(bundle_dir, data, serial)
