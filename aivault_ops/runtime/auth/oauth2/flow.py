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
- one token request at a time per credential: in a process, concurrent
  callers share one flight and its outcome (a failure too, which is then
  answered for a short back-off without calling the endpoint again); across
  workers, a `flock` on `<state-dir>/oauth2/<credential>.lock`, under which
  the cache file is read again, so no refresh token is ever sent twice;
- a caller waits for a token at most its capability's timeout;
- a token is refreshed `skew` seconds before it expires (at the latest
  half-way through its lifetime); `invalidate(stale)` drops a token an
  upstream answered 401 to and never uses it again;
- a refresh token the provider rotated is kept (written to the cache file
  first) even when the rest of the answer is refused, and survives reloads
  that keep the credential's secret (`state.py`); a rotated one the runtime
  refuses blocks the credential rather than re-sending the old one;
- tokens are cached in `<state-dir>/oauth2/<credential>.age`, age-encrypted
  to the runtime's own recipient (`cache.py`);
- errors name the credential and an RFC 6749 error code, never a secret
  (`answer.py`); client secrets and tokens are `Secret`s everywhere.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, replace
from typing import Any, Final
from urllib.parse import quote_plus

from aivault_ops.runtime.auth.base import AuthUnavailable, FormValues, PostForm
from aivault_ops.runtime.auth.oauth2 import answer
from aivault_ops.runtime.auth.oauth2.cache import AccessToken, TokenFile
from aivault_ops.runtime.auth.oauth2.config import (
    AUTH_METHODS,
    GRANTS,
    OAuth2Config,
    OAuth2Secret,
    check_token_endpoint,
)
from aivault_ops.runtime.auth.oauth2.state import LineageState, TokenStates
from aivault_ops.runtime.errors import HttpError, Refusal, UpstreamFailure
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
    "TokenStates",
    "check_token_endpoint",
]
Clock = Callable[[], float]
DEFAULT_SKEW: Final = 60.0


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


def _retrieved(flight: asyncio.Future[AccessToken]) -> None:
    """Collect a flight's failure even when every waiter gave up before it ended."""
    if not flight.cancelled():
        flight.exception()


def _digest(material: Any) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def fingerprint(credential: str, config: OAuth2Config, secret: OAuth2Secret) -> str:
    """Identifies the configuration an access token belongs to (sha256 hex)."""
    return _digest([credential, asdict(config), secret.fingerprint_material()])


def lineage(credential: str, grant_type: str, secret: OAuth2Secret) -> str:
    """Identifies the secret a rotated refresh token descends from (sha256 hex)."""
    return _digest(["lineage", credential, grant_type, secret.fingerprint_material()])


class TokenManager:
    """One credential's access token for one policy load: cached, refreshed once for all."""

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
        states: TokenStates | None = None,
    ) -> None:
        self.credential = credential
        self._config = config
        self._secret = secret
        self._post_form = post_form
        self._clock = clock
        self._cache = cache
        self._skew = skew
        self._fingerprint = fingerprint(credential, config, secret)
        self._lineage = lineage(credential, config.grant_type, secret)
        states = states if states is not None else TokenStates()
        self._state: LineageState = states.get(credential, self._lineage, secret.refresh_token)

    async def get_token(self, timeout: float | None = None) -> Secret:
        """A valid access token; waits at most `timeout` seconds for a new one.

        Concurrent callers share one flight and its outcome; a failure is
        answered again for a short back-off without calling the endpoint.
        """
        token = self._usable(self._state.current)
        if token is not None:
            return token
        issued = await self._shared_flight(timeout)
        if issued in self._state.refused:  # refused by an upstream while the flight flew
            issued = await self._shared_flight(timeout)
        return issued

    async def _shared_flight(self, timeout: float | None) -> Secret:
        """The outcome of the flight under way for this configuration, or of a new one."""
        state = self._state
        failure = state.recent_failure(self._clock())
        if failure is not None:
            raise failure
        flight = state.flights.get(self._fingerprint)
        if flight is None:
            flight = state.flights[self._fingerprint] = asyncio.ensure_future(self._fly(timeout))
            flight.add_done_callback(_retrieved)
        try:
            issued = await asyncio.wait_for(asyncio.shield(flight), timeout)
        except TimeoutError:
            raise self._too_slow(timeout) from None
        assert issued.value is not None
        return issued.value

    def invalidate(self, stale: Secret | None = None) -> None:
        """An upstream refused `stale` (default: the current token): never use it again.

        The cache file forgets it too when no other holder has the lock right
        now (whoever has it is writing a newer token anyway).
        """
        state = self._state
        current = state.current
        stale = stale if stale is not None else (current.value if current else None)
        if stale is None:
            return
        state.refuse(stale, self._clock())
        if current is not None and current.value == stale:
            state.current = replace(current, value=None)
        if self._cache is not None:
            with contextlib.suppress(AuthUnavailable), self._cache.lock.held_now() as held:
                cached = self._cache.load(self._lineage) if held else None
                if cached is not None and cached.value == stale:
                    self._cache.save(self._lineage, replace(cached, value=None))

    def secret_values(self) -> tuple[Secret, ...]:
        """Every value to redact from responses right now."""
        values = [self._secret.client_secret]
        if self._secret.refresh_token is not None:
            values.append(self._secret.refresh_token)
        state = self._state
        if state.refresh_token is not None and state.refresh_token not in values:
            values.append(state.refresh_token)
        if state.current is not None and state.current.value is not None:
            values.append(state.current.value)
        return tuple(values)

    def _usable(self, token: AccessToken | None) -> Secret | None:
        if token is None or token.value is None or token.fingerprint != self._fingerprint:
            return None
        if self._clock() >= token.refresh_at or token.value in self._state.refused:
            return None
        return token.value

    async def _fly(self, timeout: float | None) -> AccessToken:
        """One flight: its outcome is every waiter's, a failure is kept for the back-off."""
        state = self._state
        try:
            async with asyncio.timeout(timeout):
                issued = await self._refresh()
        except TimeoutError:
            state.failed(self._too_slow(timeout), self._clock())
            raise self._too_slow(timeout) from None
        except HttpError as error:
            state.failed(error, self._clock())
            raise
        finally:
            state.flights.pop(self._fingerprint, None)
        state.succeeded()
        return issued

    async def _refresh(self) -> AccessToken:
        """Under this process's lock and the workers' file lock: the token another
        holder just wrote, else a new one. After an upstream refused a token, only a
        token issued since then is taken: a provider that revoked one revoked every
        token it had issued until then, also those other workers cached."""
        state = self._state
        async with state.lock, self._file_lock():
            self._read_cache()
            current = state.current
            fresh = current is not None and current.issued_at >= state.refused_at
            if fresh and self._usable(current) is not None:
                assert current is not None
                return current
            return await self._fetch()

    @contextlib.asynccontextmanager
    async def _file_lock(self) -> AsyncIterator[None]:
        if self._cache is None:
            yield
            return
        async with self._cache.lock.held():
            yield

    def _read_cache(self) -> None:
        """Take the cached refresh token and access token (written by any worker)."""
        if self._cache is None:
            return
        cached = self._cache.load(self._lineage, self._fingerprint)
        state = self._state
        if cached is None or state.unsaved:
            return
        state.refresh_token = cached.refresh_token or state.refresh_token
        state.blocked = cached.blocked
        state.current = cached

    def _store(self, token: AccessToken) -> None:
        """Keep `token` in memory, and in the cache file before anything else happens."""
        state = self._state
        state.current, state.refresh_token, state.blocked = (
            token,
            token.refresh_token,
            token.blocked,
        )
        if self._cache is None:
            return
        try:
            self._cache.save(self._lineage, token)
        except AuthUnavailable:
            state.unsaved = True  # this process's memory is then newer than the file
            raise
        state.unsaved = False

    def _request(self) -> tuple[FormValues, FormValues]:
        """The form and headers of a token request; the secrets in them stay `Secret`s
        (`token_endpoint.post_form` reveals them as it writes the request)."""
        form: dict[str, str | Secret] = {"grant_type": self._config.grant_type}
        if self._config.grant_type == "refresh_token" and self._state.refresh_token is not None:
            form["refresh_token"] = self._state.refresh_token
        scope = self._secret.scope or " ".join(self._config.scopes)
        if scope:
            form["scope"] = scope
        headers: dict[str, str | Secret] = {"Accept": "application/json"}
        if self._secret.auth_method == "client_secret_basic":
            headers["Authorization"] = _basic(self._secret.client_id, self._secret.client_secret)
        else:
            form.update(client_id=self._secret.client_id, client_secret=self._secret.client_secret)
        return form, headers

    async def _fetch(self) -> AccessToken:
        if self._state.blocked:
            raise self._error(
                "the provider rotated the refresh token to a value the runtime refused;"
                " set a new refresh_token in the credential's secret"
            )
        form, headers = self._request()
        try:
            status, body = await self._post_form(self._config.token_endpoint, form, headers)
        except Refusal:
            raise
        except Exception as error:  # the transport's own errors; their text is not shown
            raise self._error(
                f"the token endpoint is unreachable ({_failure_name(error)})"
            ) from None
        if status != 200:
            raise self._error(f"the token endpoint answered {status}" + answer.error_code(body))
        return self._keep(body)

    def _keep(self, body: Any) -> AccessToken:
        """The answer's tokens; a rotated refresh token is stored even if the rest is refused."""
        now, kept = self._clock(), self._state.refresh_token
        try:
            if self._config.grant_type == "refresh_token":
                kept = answer.rotated_refresh_token(body) or kept
            value, lifetime = answer.access_token(body)
        except answer.Unusable as problem:
            blocked = str(problem) == "refresh_token"
            if kept is not self._state.refresh_token or blocked:
                self._store(AccessToken(None, now, now, kept, self._fingerprint, blocked))
            raise self._error(f"the token endpoint's answer has no usable {problem}") from None
        refresh_at = now + max(lifetime - self._skew, lifetime / 2)
        token = AccessToken(value, now + lifetime, refresh_at, kept, self._fingerprint, False, now)
        self._store(token)
        return token

    def _error(self, what: str) -> OAuth2Error:
        return OAuth2Error(f"credential {self.credential!r}: {what}")

    def _too_slow(self, timeout: float | None) -> OAuth2Error:
        return self._error(f"the token endpoint did not answer within {timeout or 0:g} s")

    def __repr__(self) -> str:
        return f"TokenManager(credential={self.credential!r})"
