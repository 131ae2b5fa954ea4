"""Runtime workers share o_auth2 tokens through the encrypted cache file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyrage

from aivault_ops.runtime.auth.oauth2.flow import OAuth2Config, OAuth2Secret, TokenFile, TokenManager
from aivault_ops.secret import Secret, wire_text

HOSTS = ("api.example.com", "auth.example.com")
REFRESH = "rt-original-refresh-0123456789"
SECRET = json.dumps(
    {"client_id": "c", "client_secret": "client-secret-0123", "refresh_token": REFRESH}
)


class Endpoint:
    """A token endpoint that rotates refresh tokens and accepts only the current one."""

    def __init__(self) -> None:
        self.current = REFRESH
        self.used: list[str] = []

    async def __call__(
        self, url: str, form: Mapping[str, str | Secret], headers: Mapping[str, str | Secret]
    ) -> tuple[int, Any]:
        self.used.append(wire_text(form["refresh_token"]))
        if self.used[-1] != self.current:
            return 400, {"error": "invalid_grant"}
        self.current = f"rt-rotated-{len(self.used)}-0123456789"
        token = f"access-token-{len(self.used)}"
        return 200, {"access_token": token, "expires_in": 3600, "refresh_token": self.current}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def worker(path: Path, identity: Any, endpoint: Endpoint, clock: Clock) -> TokenManager:
    config = OAuth2Config.from_auth(
        {"grant_type": "refresh_token", "token_endpoint": "https://auth.example.com/t"}, HOSTS
    )
    return TokenManager(
        "crm",
        config,
        OAuth2Secret.from_json(SECRET, "refresh_token"),
        post_form=endpoint,
        clock=clock,
        cache=TokenFile(path, identity),
    )


def test_a_worker_uses_the_token_another_worker_fetched(tmp_path: Path) -> None:
    identity, endpoint, clock = pyrage.x25519.Identity.generate(), Endpoint(), Clock()
    first = worker(tmp_path / "crm.age", identity, endpoint, clock)
    second = worker(tmp_path / "crm.age", identity, endpoint, clock)
    assert asyncio.run(first.get_token()) == Secret("access-token-1")
    assert asyncio.run(second.get_token()) == Secret("access-token-1")
    clock.now += 3600
    assert asyncio.run(first.get_token()) == Secret("access-token-2")
    assert asyncio.run(second.get_token()) == Secret("access-token-2")
    assert endpoint.used == [REFRESH, "rt-rotated-1-0123456789"]


def test_a_rotated_refresh_token_is_picked_up_after_a_401(tmp_path: Path) -> None:
    identity, endpoint, clock = pyrage.x25519.Identity.generate(), Endpoint(), Clock()
    first = worker(tmp_path / "crm.age", identity, endpoint, clock)
    second = worker(tmp_path / "crm.age", identity, endpoint, clock)
    assert asyncio.run(first.get_token()) == Secret("access-token-1")
    assert asyncio.run(second.get_token()) == Secret("access-token-1")
    first.invalidate(Secret("access-token-1"))
    assert asyncio.run(first.get_token()) == Secret("access-token-2")
    second.invalidate(Secret("access-token-1"))
    assert asyncio.run(second.get_token()) == Secret("access-token-2")
    assert endpoint.used == [REFRESH, "rt-rotated-1-0123456789"]


def test_after_a_401_a_token_another_worker_fetched_before_it_is_not_taken(
    tmp_path: Path,
) -> None:
    """A provider that revokes a token revokes all it issued until then: the token
    another worker cached earlier would be refused too (the retry would fail)."""
    identity, endpoint, clock = pyrage.x25519.Identity.generate(), Endpoint(), Clock()
    first = worker(tmp_path / "crm.age", identity, endpoint, clock)
    second = worker(tmp_path / "crm.age", identity, endpoint, clock)
    assert asyncio.run(second.get_token()) == Secret("access-token-1")
    clock.now += 10
    first.invalidate(Secret("access-token-1"))
    assert asyncio.run(first.get_token()) == Secret("access-token-2")  # cached for both
    clock.now += 10  # every token issued so far is revoked; second's is refused
    second.invalidate(Secret("access-token-1"))
    assert asyncio.run(second.get_token()) == Secret("access-token-3")
    assert endpoint.used == [REFRESH, "rt-rotated-1-0123456789", "rt-rotated-2-0123456789"]
