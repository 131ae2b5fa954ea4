"""`o_auth2` configuration: the policy's `auth.o_auth2` and the credential's secret JSON.

Both are checked when the policy loads; anything malformed makes the
credential unavailable (`AuthUnavailable`), never the whole bundle. The
token endpoint must be https on port 443 and on one of the credential's
hosts, so the client secret only travels where the credential's key may go.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from aivault_ops.runtime.auth.base import AuthUnavailable, config_dict
from aivault_ops.secret import Secret

GRANTS: Final = ("refresh_token", "client_credentials")
AUTH_METHODS: Final = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class OAuth2Config:
    """`auth.o_auth2` checked against the credential's hosts."""

    grant_type: str
    token_endpoint: str
    scopes: tuple[str, ...] = ()

    @classmethod
    def from_auth(cls, config: Any, hosts: Iterable[str]) -> OAuth2Config:
        """Refuse an unknown grant, or a token endpoint off https or off the credential's hosts."""
        spec = config_dict(config, "o_auth2", ("grant_type", "token_endpoint"))
        if spec["grant_type"] not in GRANTS:
            raise AuthUnavailable(
                "auth.o_auth2.grant_type must be refresh_token or client_credentials,"
                f" not {spec['grant_type']!r}"
            )
        scopes = spec.get("scopes", [])
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
            raise AuthUnavailable("auth.o_auth2.scopes must be a list of non-empty strings")
        check_token_endpoint(spec["token_endpoint"], hosts)
        return cls(spec["grant_type"], spec["token_endpoint"], tuple(scopes))


def check_token_endpoint(url: str, hosts: Iterable[str]) -> None:
    """The token endpoint must be `https://<one of hosts>/…` on port 443, without credentials."""
    where = f"auth.o_auth2.token_endpoint {url!r}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AuthUnavailable(f"{where} is not a valid URL") from None
    if parts.scheme != "https" or parts.username is not None or port not in (None, 443):
        raise AuthUnavailable(f"{where} must be https on port 443, without user info")
    if (parts.hostname or "") not in {host.lower() for host in hosts}:
        raise AuthUnavailable(f"{where} is not on one of the credential's hosts")
    if parts.fragment:
        raise AuthUnavailable(f"{where} must not have a fragment")


@dataclass(frozen=True)
class OAuth2Secret:
    """The client's secrets from the credential's secret JSON."""

    client_id: Secret
    client_secret: Secret
    refresh_token: Secret | None = None
    scope: str | None = None
    auth_method: str = "client_secret_basic"

    @classmethod
    def from_json(cls, text: str, grant_type: str) -> OAuth2Secret:
        """Parse and check the secret JSON for `grant_type`."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AuthUnavailable("o_auth2 secret must be a JSON object")
        required = ("client_id", "client_secret") + (
            ("refresh_token",) if grant_type == "refresh_token" else ()
        )
        for key in (*required, "scope", "token_endpoint_auth_method"):
            if (key in required or key in data) and not (
                isinstance(data.get(key), str) and data[key]
            ):
                raise AuthUnavailable(f"o_auth2 secret needs a non-empty string {key!r}")
        method = data.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in AUTH_METHODS:
            raise AuthUnavailable(
                f"o_auth2 secret token_endpoint_auth_method {method!r} is unknown"
            )
        token = Secret(data["refresh_token"]) if grant_type == "refresh_token" else None
        client_id, client_secret = Secret(data["client_id"]), Secret(data["client_secret"])
        return cls(client_id, client_secret, token, data.get("scope"), method)

    def fingerprint_material(self) -> dict[str, str | None]:
        """Every field in plain text, to be hashed into the token cache's fingerprint."""
        refresh_token = None if self.refresh_token is None else self.refresh_token.reveal_text()
        return {
            "client_id": self.client_id.reveal_text(),
            "client_secret": self.client_secret.reveal_text(),
            "refresh_token": refresh_token,
            "scope": self.scope,
            "auth_method": self.auth_method,
        }
