"""`o_auth2`: access tokens from the refresh-token or client-credentials grant.

The secret JSON holds `client_id`, `client_secret`, `refresh_token`
(refresh-token grant only), and optionally `scope` (overrides the policy's
`scopes`) and `token_endpoint_auth_method` (`client_secret_basic`, the
default as RFC 6749 §2.3.1 requires servers to support it, or
`client_secret_post`). The policy's `auth.o_auth2` names `grant_type`,
`token_endpoint` and `scopes`.

What `TokenManager` guarantees:

- the token endpoint is https on port 443 and on one of the credential's
  hosts (refused when the policy loads otherwise), so client secrets only
  travel where the credential's key may go; the process side passes a
  `post_form` that goes through the SSRF-checked client;
- concurrent requests share one refresh (single flight, one `asyncio.Lock`
  per credential), and a token is refreshed `skew` seconds before it
  expires (at the latest half-way through its lifetime);
- `invalidate(stale)` drops the token an upstream answered 401 to, only if
  it is still the current one, so many failed requests cause one refresh;
- tokens (and a rotated refresh token) are cached in memory and in
  `<state-dir>/oauth2/<credential>.age`, age-encrypted to the runtime's own
  x25519 recipient: never plaintext on disk, reused after a restart only if
  the credential's configuration and secrets are unchanged (a fingerprint
  inside the encrypted file); an unreadable cache file is ignored; before
  a refresh the file is read again if it changed, so runtime workers pick
  up each other's tokens and rotated refresh tokens;
- errors name the credential and the OAuth `error` code, never a secret;
- client secrets and tokens are `Secret`s everywhere: they are revealed only
  to write the token endpoint request, to fingerprint the configuration and
  to encrypt the cache file.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any, Final
from urllib.parse import quote_plus

from aivault_ops.runtime.auth.base import (
    MIN_SECRET_LENGTH,
    AuthUnavailable,
    FormValues,
    PostForm,
    check_injected_value,
)
from aivault_ops.runtime.auth.oauth2.cache import AccessToken, TokenFile
from aivault_ops.runtime.auth.oauth2.config import (
    AUTH_METHODS,
    GRANTS,
    OAuth2Config,
    OAuth2Secret,
    check_token_endpoint,
)
from aivault_ops.runtime.errors import Refusal, UpstreamFailure
from aivault_ops.secret import Secret

__all__ = [
    "AUTH_METHODS",
    "GRANTS",
    "AccessToken",
    "OAuth2Config",
    "OAuth2Error",
    "OAuth2Secret",
    "PostForm",
    "TokenFile",
    "TokenManager",
    "check_token_endpoint",
]
Clock = Callable[[], float]
DEFAULT_SKEW: Final = 60.0
DEFAULT_TTL: Final = 300.0
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class OAuth2Error(UpstreamFailure):
    """No access token could be obtained: the token endpoint is an upstream that failed
    (502, audited `error`, like the API's own upstream failures)."""

    def __init__(self, message: str) -> None:
        super().__init__(502, "E-OAUTH2-TOKEN", message)


def _basic(client_id: Secret, client_secret: Secret) -> Secret:
    """The token endpoint's Basic header (RFC 6749 §2.3.1: each part form-encoded)."""
    pair = f"{quote_plus(client_id.reveal_text())}:{quote_plus(client_secret.reveal_text())}"
    return Secret("Basic " + base64.b64encode(pair.encode()).decode("ascii"))


def _failure_name(error: Exception) -> str:
    """The upstream client's stable code (`E-UPSTREAM-FORBIDDEN` …), else the type name."""
    code = getattr(error, "code", None)
    return code if isinstance(code, str) and code.startswith("E-") else type(error).__name__


def _error_code(body: Any) -> str:
    code = body.get("error") if isinstance(body, dict) else None
    if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
        return f" ({code})"
    return ""


def _expires_in(body: Mapping[str, Any]) -> float:
    raw = body.get("expires_in", DEFAULT_TTL)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = 0.0
    if not value > 0:
        raise ValueError("expires_in")
    return value


def _token_fields(body: Any) -> tuple[Secret, float]:
    """(access_token, lifetime in seconds) from a token response; ValueError if unusable."""
    if not isinstance(body, dict):
        raise ValueError("body")
    value = body.get("access_token")
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        raise ValueError("access_token")
    token_type = body.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise ValueError("token_type")
    try:
        check_injected_value(value, "access_token")
    except AuthUnavailable:
        raise ValueError("access_token") from None
    return Secret(value), _expires_in(body)


def fingerprint(credential: str, config: OAuth2Config, secret: OAuth2Secret) -> str:
    """Identifies the configuration a cached token belongs to (sha256 hex)."""
    material = [credential, asdict(config), secret.fingerprint_material()]
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class TokenManager:
    """One credential's access token: cached, refreshed once for all waiters."""

    def __init__(
        self,
        credential: str,
        config: OAuth2Config,
        secret: OAuth2Secret,
        *,
        post_form: PostForm,
        clock: Clock,
        cache: TokenFile | None = None,
        skew: float = DEFAULT_SKEW,
    ) -> None:
        self.credential = credential
        self._config = config
        self._secret = secret
        self._post_form = post_form
        self._clock = clock
        self._cache = cache
        self._skew = skew
        self._lock = asyncio.Lock()
        self._current: AccessToken | None = None
        self._refresh_token = secret.refresh_token
        self._cache_seen: tuple[int, int, int] | None = None
        self._fingerprint = fingerprint(credential, config, secret)

    async def get_token(self) -> Secret:
        """A valid access token, refreshing (once, for every concurrent caller) if needed."""
        token = self._usable(self._current)
        if token is not None:
            return token
        async with self._lock:
            token = self._usable(self._current) or self._usable(self._from_cache())
            if token is None:
                token = self._remember(*await self._fetch())
            return token

    def invalidate(self, stale: Secret | None = None) -> None:
        """Drop the current token after an upstream 401 (only if it is still `stale`).

        The cache file is updated too, unless another worker wrote a newer one
        meanwhile (the next `get_token` reads that one instead).
        """
        current = self._current
        if current is None or current.value is None:
            return
        if stale is not None and current.value != stale:
            return
        self._current = replace(current, value=None)
        if self._cache is None or self._cache.version() == self._cache_seen:
            self._save(self._current)

    def secret_values(self) -> tuple[Secret, ...]:
        """Every value to redact from responses right now."""
        values = [self._secret.client_secret]
        if self._secret.refresh_token is not None:
            values.append(self._secret.refresh_token)
        if self._refresh_token is not None and self._refresh_token not in values:
            values.append(self._refresh_token)
        if self._current is not None and self._current.value is not None:
            values.append(self._current.value)
        return tuple(values)

    def _usable(self, token: AccessToken | None) -> Secret | None:
        if token is not None and token.value is not None and self._clock() < token.refresh_at:
            return token.value
        return None

    def _from_cache(self) -> AccessToken | None:
        """The cached token when the file changed since last seen (a restart, another worker)."""
        version = self._cache.version() if self._cache is not None else None
        if self._cache is None or version is None or version == self._cache_seen:
            return None
        self._cache_seen = version
        token = self._cache.load(self._fingerprint)
        if token is not None:
            self._current = token
            self._refresh_token = token.refresh_token or self._refresh_token
        return token

    def _remember(self, value: Secret, token: AccessToken) -> Secret:
        self._current = token
        self._refresh_token = token.refresh_token
        self._save(token)
        return value

    def _save(self, token: AccessToken) -> None:
        if self._cache is not None:
            self._cache.save(token, self._fingerprint)
            self._cache_seen = self._cache.version()

    def _request(self) -> tuple[FormValues, FormValues]:
        """The form and headers of a token request; the secrets in them stay `Secret`s
        (`token_endpoint.post_form` reveals them as it writes the request)."""
        form: dict[str, str | Secret] = {"grant_type": self._config.grant_type}
        if self._refresh_token is not None:
            form["refresh_token"] = self._refresh_token
        scope = self._secret.scope or " ".join(self._config.scopes)
        if scope:
            form["scope"] = scope
        headers: dict[str, str | Secret] = {"Accept": "application/json"}
        if self._secret.auth_method == "client_secret_basic":
            headers["Authorization"] = _basic(self._secret.client_id, self._secret.client_secret)
        else:
            form.update(client_id=self._secret.client_id, client_secret=self._secret.client_secret)
        return form, headers

    async def _fetch(self) -> tuple[Secret, AccessToken]:
        form, headers = self._request()
        try:
            status, body = await self._post_form(self._config.token_endpoint, form, headers)
        except Refusal:
            raise
        except Exception as error:  # the transport's own errors; their text is not shown
            raise OAuth2Error(
                f"credential {self.credential!r}: the token endpoint is unreachable"
                f" ({_failure_name(error)})"
            ) from None
        if status != 200:
            raise OAuth2Error(
                f"credential {self.credential!r}: the token endpoint answered {status}"
                + _error_code(body)
            )
        return self._parse(body)

    def _parse(self, body: Any) -> tuple[Secret, AccessToken]:
        now = self._clock()
        try:
            value, lifetime = _token_fields(body)
        except ValueError as problem:
            raise OAuth2Error(
                f"credential {self.credential!r}: the token endpoint's answer"
                f" has no usable {problem}"
            ) from None
        rotated = body.get("refresh_token")
        refresh_token = (
            Secret(rotated) if isinstance(rotated, str) and rotated else self._refresh_token
        )
        refresh_at = now + max(lifetime - self._skew, lifetime / 2)
        return value, AccessToken(value, now + lifetime, refresh_at, refresh_token)

    def __repr__(self) -> str:
        return f"TokenManager(credential={self.credential!r})"
