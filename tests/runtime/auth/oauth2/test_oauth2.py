"""OAuth2 token manager: single flight, expiry, forced refresh, encrypted cache."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyrage
import pytest

from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.runtime.auth.oauth2.flow import (
    AccessToken,
    OAuth2Config,
    OAuth2Error,
    OAuth2Secret,
    TokenFile,
    TokenManager,
)
from aivault_ops.runtime.model import Refusal
from aivault_ops.secret import Secret, wire_text

HOSTS = ("api.example.com", "auth.example.com")
ENDPOINT = "https://auth.example.com/oauth/token"
CLIENT_SECRET = "cs-very-secret-0123456789"
REFRESH = "rt-original-refresh-0123456789"
SECRET_JSON = json.dumps(
    {"client_id": "client-1", "client_secret": CLIENT_SECRET, "refresh_token": REFRESH}
)
NO_USABLE = "credential 'my-api': the token endpoint's answer has no usable "
ANSWERED = "credential 'my-api': the token endpoint answered "


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def as_sent(values: Mapping[str, str | Secret]) -> dict[str, str]:
    """What `token_endpoint.post_form` writes of a form or a header set."""
    return {name: wire_text(value) for name, value in values.items()}


class TokenEndpoint:
    """A fake `post_form` that counts calls and issues numbered tokens."""

    def __init__(self, lifetime: float = 3600, rotate: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.lifetime = lifetime
        self.rotate = rotate
        self.answer: tuple[int, Any] | None = None

    async def __call__(
        self, url: str, form: Mapping[str, str | Secret], headers: Mapping[str, str | Secret]
    ) -> tuple[int, Any]:
        self.calls.append((url, as_sent(form), as_sent(headers)))
        for _ in range(5):
            await asyncio.sleep(0)  # let every other waiter reach the lock
        if self.answer is not None:
            return self.answer
        body: dict[str, Any] = {
            "access_token": f"access-token-{len(self.calls)}",
            "token_type": "Bearer",
            "expires_in": self.lifetime,
        }
        if self.rotate:
            body["refresh_token"] = f"rt-rotated-{len(self.calls)}-0123456789"
        return 200, body


def manager(
    endpoint: TokenEndpoint,
    clock: Clock,
    cache: TokenFile | None = None,
    *,
    grant: str = "refresh_token",
    secret_json: str = SECRET_JSON,
) -> TokenManager:
    config = OAuth2Config.from_auth(
        {"grant_type": grant, "token_endpoint": ENDPOINT, "scopes": ["read", "write"]}, HOSTS
    )
    secret = OAuth2Secret.from_json(secret_json, grant)
    return TokenManager(
        "my-api", config, secret, post_form=endpoint, clock=clock, cache=cache, skew=60
    )


@pytest.fixture
def identity() -> Any:
    return pyrage.x25519.Identity.generate()


def test_fifty_concurrent_requests_share_one_refresh() -> None:
    endpoint = TokenEndpoint()
    tokens_manager = manager(endpoint, Clock())

    async def run() -> list[Secret]:
        return await asyncio.gather(*(tokens_manager.get_token() for _ in range(50)))

    assert asyncio.run(run()) == [Secret("access-token-1")] * 50
    assert len(endpoint.calls) == 1


def test_refresh_token_request() -> None:
    endpoint = TokenEndpoint()
    asyncio.run(manager(endpoint, Clock()).get_token())
    url, form, headers = endpoint.calls[0]
    assert url == ENDPOINT
    assert form == {"grant_type": "refresh_token", "refresh_token": REFRESH, "scope": "read write"}
    expected = base64.b64encode(f"client-1:{CLIENT_SECRET}".encode()).decode()
    assert headers == {"Accept": "application/json", "Authorization": f"Basic {expected}"}


def test_client_credentials_with_post_auth_and_secret_scope() -> None:
    endpoint = TokenEndpoint()
    secret_json = json.dumps(
        {
            "client_id": "client 1",
            "client_secret": CLIENT_SECRET,
            "scope": "admin",
            "token_endpoint_auth_method": "client_secret_post",
        }
    )
    tokens = manager(endpoint, Clock(), grant="client_credentials", secret_json=secret_json)
    asyncio.run(tokens.get_token())
    _, form, headers = endpoint.calls[0]
    assert form == {
        "grant_type": "client_credentials",
        "scope": "admin",
        "client_id": "client 1",
        "client_secret": CLIENT_SECRET,
    }
    assert headers == {"Accept": "application/json"}


def test_refreshed_skew_seconds_before_expiry() -> None:
    endpoint, clock = TokenEndpoint(lifetime=3600), Clock()
    tokens = manager(endpoint, clock)
    assert asyncio.run(tokens.get_token()) == Secret("access-token-1")
    clock.now += 3600 - 60 - 1
    assert asyncio.run(tokens.get_token()) == Secret("access-token-1")
    clock.now += 1
    assert asyncio.run(tokens.get_token()) == Secret("access-token-2")
    assert len(endpoint.calls) == 2


def test_short_lived_tokens_are_refreshed_half_way() -> None:
    endpoint, clock = TokenEndpoint(lifetime=30), Clock()
    tokens = manager(endpoint, clock)
    asyncio.run(tokens.get_token())
    clock.now += 14
    assert asyncio.run(tokens.get_token()) == Secret("access-token-1")
    clock.now += 1
    assert asyncio.run(tokens.get_token()) == Secret("access-token-2")


def test_invalidate_causes_exactly_one_new_refresh() -> None:
    endpoint = TokenEndpoint()
    tokens = manager(endpoint, Clock())

    async def after_401() -> list[Secret]:
        stale = await tokens.get_token()

        async def retry() -> Secret:
            tokens.invalidate(stale)
            return await tokens.get_token()

        return await asyncio.gather(*(retry() for _ in range(20)))

    assert asyncio.run(after_401()) == [Secret("access-token-2")] * 20
    assert len(endpoint.calls) == 2
    tokens.invalidate(Secret("access-token-1"))
    assert asyncio.run(tokens.get_token()) == Secret("access-token-2")
    tokens.invalidate()
    assert asyncio.run(tokens.get_token()) == Secret("access-token-3")


def test_cached_token_survives_a_restart_encrypted(tmp_path: Path, identity: Any) -> None:
    clock = Clock()
    first = TokenEndpoint(rotate=True)
    cache = TokenFile.for_credential(tmp_path, "my-api", identity)
    assert asyncio.run(manager(first, clock, cache).get_token()) == Secret("access-token-1")
    raw = (tmp_path / "oauth2" / "my-api.age").read_bytes()
    assert raw.startswith(b"age-encryption.org/v1\n")
    for plaintext in (b"access-token-1", b"rt-rotated-1", REFRESH.encode(), CLIENT_SECRET.encode()):
        assert plaintext not in raw
    assert (tmp_path / "oauth2").stat().st_mode & 0o077 == 0
    assert (tmp_path / "oauth2" / "my-api.age").stat().st_mode & 0o077 == 0

    second = TokenEndpoint()
    restarted = manager(second, clock, TokenFile.for_credential(tmp_path, "my-api", identity))
    assert asyncio.run(restarted.get_token()) == Secret("access-token-1")
    assert second.calls == []
    clock.now += 3600
    asyncio.run(restarted.get_token())
    assert second.calls[0][1]["refresh_token"] == "rt-rotated-1-0123456789"


def test_invalidated_token_is_not_reused_after_restart(tmp_path: Path, identity: Any) -> None:
    clock = Clock()
    tokens = manager(TokenEndpoint(), clock, TokenFile.for_credential(tmp_path, "my-api", identity))
    tokens.invalidate()
    stale = asyncio.run(tokens.get_token())
    tokens.invalidate(stale)
    endpoint = TokenEndpoint()
    restarted = manager(endpoint, clock, TokenFile.for_credential(tmp_path, "my-api", identity))
    asyncio.run(restarted.get_token())
    assert len(endpoint.calls) == 1


def test_cache_ignored_for_changed_secret_or_other_identity(tmp_path: Path, identity: Any) -> None:
    clock = Clock()
    asyncio.run(
        manager(TokenEndpoint(), clock, TokenFile(tmp_path / "c.age", identity)).get_token()
    )
    changed = json.dumps({"client_id": "client-1", "client_secret": "cs-rotated-0123456789",
                          "refresh_token": REFRESH})  # fmt: skip
    endpoint = TokenEndpoint()
    cache = TokenFile(tmp_path / "c.age", identity)
    asyncio.run(manager(endpoint, clock, cache, secret_json=changed).get_token())
    assert len(endpoint.calls) == 1
    other = TokenFile(tmp_path / "c.age", pyrage.x25519.Identity.generate())
    endpoint = TokenEndpoint()
    asyncio.run(manager(endpoint, clock, other, secret_json=changed).get_token())
    assert len(endpoint.calls) == 1


def failure(endpoint: TokenEndpoint) -> dict[str, str]:
    with pytest.raises(OAuth2Error) as caught:
        asyncio.run(manager(endpoint, Clock()).get_token())
    assert caught.value.status == 502
    text = json.dumps(caught.value.to_json())
    assert CLIENT_SECRET not in text and REFRESH not in text
    return caught.value.to_json()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            (400, {"error": "invalid_grant", "error_description": f"bad {REFRESH}"}),
            ANSWERED + "400 (invalid_grant)",
        ),
        ((401, {"error": f"x {CLIENT_SECRET}"}), ANSWERED + "401 (unlisted error code)"),
        ((400, {"error": CLIENT_SECRET}), ANSWERED + "400 (unlisted error code)"),
        ((503, {"error": "temporarily_unavailable"}), ANSWERED + "503 (temporarily_unavailable)"),
        ((500, "oops"), ANSWERED + "500"),
        ((200, {"token_type": "bearer"}), NO_USABLE + "access_token"),
        ((200, {"access_token": "short"}), NO_USABLE + "access_token"),
        ((200, {"access_token": "abcdefgh\r\nX: y"}), NO_USABLE + "access_token"),
        ((200, {"access_token": "abcdefghij", "token_type": "mac"}), NO_USABLE + "token_type"),
        ((200, {"access_token": "abcdefghij", "expires_in": 0}), NO_USABLE + "expires_in"),
        ((200, {"access_token": "abcdefghij", "expires_in": "soon"}), NO_USABLE + "expires_in"),
        ((200, ["access_token"]), NO_USABLE + "body"),
    ],
)  # fmt: skip
def test_token_endpoint_failures_are_clear_and_secret_free(
    answer: tuple[int, Any], message: str
) -> None:
    endpoint = TokenEndpoint()
    endpoint.answer = answer
    assert failure(endpoint) == {"error": "E-OAUTH2-TOKEN", "message": message}


def test_unreachable_token_endpoint() -> None:
    class Unreachable(TokenEndpoint):
        async def __call__(self, *args: Any) -> tuple[int, Any]:
            raise ConnectionRefusedError(f"cannot connect with {CLIENT_SECRET}")

    assert failure(Unreachable()) == {
        "error": "E-OAUTH2-TOKEN",
        "message": "credential 'my-api': the token endpoint is unreachable"
        " (ConnectionRefusedError)",
    }


def test_a_refusal_from_the_transport_passes_unchanged() -> None:
    class Guarded(TokenEndpoint):
        async def __call__(self, *args: Any) -> tuple[int, Any]:
            raise Refusal(403, "E-UPSTREAM-FORBIDDEN", "auth.example.com resolves to 10.0.0.1")

    with pytest.raises(Refusal) as caught:
        asyncio.run(manager(Guarded(), Clock()).get_token())
    assert caught.value.code == "E-UPSTREAM-FORBIDDEN"


def test_missing_expires_in_uses_the_default_lifetime() -> None:
    endpoint, clock = TokenEndpoint(), Clock()
    endpoint.answer = (200, {"access_token": "abcdefghij"})
    tokens = manager(endpoint, clock)
    asyncio.run(tokens.get_token())
    clock.now += 239
    asyncio.run(tokens.get_token())
    assert len(endpoint.calls) == 1
    clock.now += 1
    asyncio.run(tokens.get_token())
    assert len(endpoint.calls) == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"grant_type": "password", "token_endpoint": ENDPOINT},
         "auth.o_auth2.grant_type must be refresh_token or client_credentials, not 'password'"),
        ({"grant_type": "client_credentials", "token_endpoint": "http://auth.example.com/t"},
         "auth.o_auth2.token_endpoint 'http://auth.example.com/t' must be https on port 443,"
         " without user info"),
        ({"grant_type": "client_credentials", "token_endpoint": "https://auth.example.com:8443/t"},
         "auth.o_auth2.token_endpoint 'https://auth.example.com:8443/t' must be https on port 443,"
         " without user info"),
        ({"grant_type": "client_credentials", "token_endpoint": "https://u@auth.example.com/t"},
         "auth.o_auth2.token_endpoint 'https://u@auth.example.com/t' must be https on port 443,"
         " without user info"),
        ({"grant_type": "client_credentials", "token_endpoint": "https://evil.example.net/t"},
         "auth.o_auth2.token_endpoint 'https://evil.example.net/t' is not on one of the"
         " credential's hosts"),
        ({"grant_type": "client_credentials", "token_endpoint": "https://auth.example.com:x/t"},
         "auth.o_auth2.token_endpoint 'https://auth.example.com:x/t' is not a valid URL"),
        ({"grant_type": "client_credentials", "token_endpoint": ENDPOINT + "#x"},
         f"auth.o_auth2.token_endpoint {ENDPOINT + '#x'!r} must not have a fragment"),
        ({"grant_type": "client_credentials", "token_endpoint": ENDPOINT, "scopes": "read"},
         "auth.o_auth2.scopes must be a list of non-empty strings"),
    ],
)  # fmt: skip
def test_bad_config_is_refused_at_build(config: dict[str, Any], message: str) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        OAuth2Config.from_auth(config, HOSTS)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("secret", "grant", "message"),
    [
        ("nope", "client_credentials", "o_auth2 secret must be a JSON object"),
        ('{"client_id": "a"}', "client_credentials",
         "o_auth2 secret needs a non-empty string 'client_secret'"),
        ('{"client_id": "a", "client_secret": "b"}', "refresh_token",
         "o_auth2 secret needs a non-empty string 'refresh_token'"),
        ('{"client_id": "a", "client_secret": "b", "scope": 1}', "client_credentials",
         "o_auth2 secret needs a non-empty string 'scope'"),
        ('{"client_id": "a", "client_secret": "b", "token_endpoint_auth_method": "jwt"}',
         "client_credentials", "o_auth2 secret token_endpoint_auth_method 'jwt' is unknown"),
    ],
)  # fmt: skip
def test_bad_secret_is_refused(secret: str, grant: str, message: str) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        OAuth2Secret.from_json(secret, grant)
    assert caught.value.message == message


def test_nothing_secret_in_reprs_and_redaction_covers_the_live_token() -> None:
    tokens = manager(TokenEndpoint(rotate=True), Clock())
    secret = OAuth2Secret.from_json(SECRET_JSON, "refresh_token")
    assert CLIENT_SECRET not in repr(secret) and REFRESH not in repr(tokens)
    token = AccessToken(Secret("access-token-1"), 5.0, 4.0, Secret(REFRESH))
    assert "access-token-1" not in repr(token) and REFRESH not in repr(token)
    assert tokens.secret_values() == (Secret(CLIENT_SECRET), Secret(REFRESH))
    asyncio.run(tokens.get_token())
    assert tokens.secret_values() == tuple(map(Secret, (
        CLIENT_SECRET, REFRESH, "rt-rotated-1-0123456789", "access-token-1",
    )))  # fmt: skip


def test_token_file_refuses_a_bad_credential_name_or_identity(tmp_path: Path) -> None:
    with pytest.raises(AuthUnavailable, match="cannot name a cache file"):
        TokenFile.for_credential(tmp_path, "../escape", pyrage.x25519.Identity.generate())
    with pytest.raises(AuthUnavailable, match="needs an age x25519 identity"):
        TokenFile(tmp_path / "x.age", object())
