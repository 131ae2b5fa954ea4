"""`o_auth2`: `Authorization: Bearer <access token>` from a `TokenManager` (`flow.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from aivault_ops.runtime.auth.base import (
    MIN_SECRET_LENGTH,
    AuthContext,
    AuthServices,
    AuthUnavailable,
    Injection,
)
from aivault_ops.runtime.auth.oauth2.cache import TokenFile
from aivault_ops.runtime.auth.oauth2.flow import (
    OAuth2Config,
    OAuth2Secret,
    TokenManager,
    TokenStates,
)
from aivault_ops.runtime.auth.request_auth import Signed
from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.response.redaction import SecretRedactor
from aivault_ops.secret import Secret

ADDED: Final = frozenset({"authorization"})
_KEEP_REDACTORS: Final = 8


class OAuth2Auth:
    """Injects a current access token; on a 401 drops it so the one retry gets a new one."""

    def __init__(self, manager: TokenManager) -> None:
        self._manager = manager
        self._redactors: dict[frozenset[Secret], SecretRedactor] = {}

    def added_header_names(self) -> frozenset[str]:
        """`authorization`."""
        return ADDED

    async def sign(self, request: UpstreamRequest, now: datetime) -> Signed:
        """The bearer header, and a redactor that covers this very token."""
        token = await self._manager.get_token(request.timeout_s)
        header = ("Authorization", "Bearer " + token)
        return Signed((header,), self.redactor((*self._manager.secret_values(), token)), token)

    def unauthorized(self, signed: Signed) -> bool:
        """Forget the refused token (for every caller and worker); ask for one retry
        (`request_auth.may_resend` decides whether the method allows it)."""
        self._manager.invalidate(signed.token)
        return True

    def redactor(self, values: tuple[Secret, ...]) -> SecretRedactor:
        """A redactor for these values, compiled once per set of tokens."""
        key = frozenset(values)
        redactor = self._redactors.get(key)
        if redactor is None:
            if len(self._redactors) >= _KEEP_REDACTORS:
                self._redactors.pop(next(iter(self._redactors)))
            redactor = self._redactors[key] = SecretRedactor(key)
        return redactor

    def __repr__(self) -> str:
        return f"OAuth2Auth({self._manager!r})"


def _cache(context: AuthContext) -> TokenFile | None:
    """The encrypted token cache, when the process has a state dir and its own x25519 identity."""
    services = context.services
    if services.state_dir is None or not hasattr(services.identity, "to_public"):
        return None
    return TokenFile.for_credential(services.state_dir, context.credential, services.identity)


def manager(context: AuthContext, services: AuthServices) -> TokenManager:
    """The credential's token manager, its token endpoint reached through `post_form`."""
    secret = context.variables.get("secret")
    if secret is None:
        raise AuthUnavailable("auth.o_auth2 needs the credential's 'secret' placeholder")
    if services.post_form is None:
        raise AuthUnavailable("o_auth2 needs the runtime's upstream client")
    config = OAuth2Config.from_auth(context.config, context.hosts)
    return TokenManager(
        context.credential,
        config,
        OAuth2Secret.from_json(secret.reveal_text(), config.grant_type),
        post_form=services.post_form,
        clock=services.clock,
        cache=_cache(context),
        states=_states(services),
    )


def _states(services: AuthServices) -> TokenStates:
    """The process's o_auth2 states, kept by `services` across policy loads."""
    states = services.across_loads.setdefault("o_auth2", TokenStates())
    assert isinstance(states, TokenStates)
    return states


def build(context: AuthContext) -> Injection:
    """A token manager per credential; client secret and refresh token are redacted."""
    tokens = manager(context, context.services)
    values = tokens.secret_values()
    if any(len(value.reveal_text()) < MIN_SECRET_LENGTH for value in values):
        raise AuthUnavailable(
            f"o_auth2 client_secret and refresh_token need at least {MIN_SECRET_LENGTH}"
            " characters to be redacted reliably from responses"
        )
    return Injection(secret_values=values, request_auth=OAuth2Auth(tokens))
