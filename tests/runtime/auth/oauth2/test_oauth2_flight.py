"""One flight per credential, its outcome shared (failures too, for a back-off), bounded by
the caller's timeout; rotated refresh tokens kept whatever else the answer holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyrage
import pytest

from aivault_ops.runtime.auth.oauth2.flow import (
    OAuth2Config,
    OAuth2Error,
    OAuth2Secret,
    TokenFile,
    TokenManager,
    TokenStates,
)
from aivault_ops.secret import Secret, wire_text

HOSTS = ("auth.example.com",)
ENDPOINT = "https://auth.example.com/t"
REFRESH = "rt-original-refresh-0123456789"
SECRET = json.dumps(
    {"client_id": "c", "client_secret": "client-secret-0123", "refresh_token": REFRESH}
)
ANSWERED_503 = "credential 'crm': the token endpoint answered 503 (temporarily_unavailable)"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Endpoint:
    """Answers `answers` in turn (then fresh rotating tokens), after `delay` seconds."""

    def __init__(self, *answers: tuple[int, Any], delay: float = 0.01) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.sent: list[str | None] = []

    async def __call__(
        self, url: str, form: Mapping[str, str | Secret], headers: Mapping[str, str | Secret]
    ) -> tuple[int, Any]:
        rt = form.get("refresh_token")
        self.sent.append(None if rt is None else wire_text(rt))
        await asyncio.sleep(self.delay)
        if self.answers:
            return self.answers.pop(0)
        n = len(self.sent)
        return 200, {"access_token": f"access-token-{n}", "refresh_token": f"rt-rotated-{n}-xyz"}


def manager(
    endpoint: Endpoint,
    clock: Clock,
    *,
    states: TokenStates | None = None,
    cache: TokenFile | None = None,
    scopes: tuple[str, ...] = ("a",),
) -> TokenManager:
    config = OAuth2Config.from_auth(
        {"grant_type": "refresh_token", "token_endpoint": ENDPOINT, "scopes": list(scopes)}, HOSTS
    )
    secret = OAuth2Secret.from_json(SECRET, "refresh_token")
    return TokenManager(
        "crm", config, secret, post_form=endpoint, clock=clock, cache=cache, states=states
    )


def outcomes(tokens: TokenManager, callers: int, timeout: float | None = None) -> list[str]:
    async def one() -> str:
        try:
            return (await tokens.get_token(timeout)).reveal_text()
        except OAuth2Error as error:
            return error.message

    async def run() -> list[str]:
        return await asyncio.gather(*(one() for _ in range(callers)))

    return asyncio.run(run())


def test_twenty_callers_against_a_failing_endpoint_share_one_call() -> None:
    failing = (503, {"error": "temporarily_unavailable"})
    endpoint, clock = Endpoint(*[failing] * 3), Clock()
    tokens = manager(endpoint, clock)
    assert outcomes(tokens, 20) == [ANSWERED_503] * 20
    assert len(endpoint.sent) == 1
    assert outcomes(tokens, 5) == [ANSWERED_503] * 5  # within the back-off: no new call
    assert len(endpoint.sent) == 1
    clock.now += 1.0
    assert outcomes(tokens, 5) == [ANSWERED_503] * 5
    assert len(endpoint.sent) == 2
    clock.now += 1.5  # the back-off doubled to 2 s
    assert outcomes(tokens, 1) == [ANSWERED_503]
    assert len(endpoint.sent) == 2
    clock.now += 0.5
    outcomes(tokens, 1)
    clock.now += 4.0
    assert outcomes(tokens, 3) == ["access-token-4"] * 3
    assert endpoint.sent == [REFRESH] * 4  # failures do not rotate


def test_callers_wait_for_a_hanging_endpoint_at_most_their_timeout() -> None:
    endpoint = Endpoint(delay=60)
    tokens = manager(endpoint, Clock())
    started = time.monotonic()
    assert (
        outcomes(tokens, 3, timeout=0.3)
        == ["credential 'crm': the token endpoint did not answer within 0.3 s"] * 3
    )
    assert time.monotonic() - started < 2
    assert len(endpoint.sent) == 1


@pytest.mark.parametrize(
    "refused",
    [
        {"access_token": "abcdefghij", "expires_in": -5},
        {"access_token": "abcdefghij", "token_type": "N_A"},
        {"access_token": "short"},
        {},
        {"access_token": "abcdefgh\x0bij"},
    ],
    ids=["expires-in", "token-type", "short", "no-access-token", "control-char"],
)
def test_a_rotated_refresh_token_is_kept_when_the_rest_is_refused(
    refused: dict[str, Any], tmp_path: Path
) -> None:
    identity, clock = pyrage.x25519.Identity.generate(), Clock()
    endpoint = Endpoint((200, {**refused, "refresh_token": "rt-rotated-in-refused-answer"}))
    tokens = manager(endpoint, clock, cache=TokenFile(tmp_path / "crm.age", identity))
    assert outcomes(tokens, 1)[0].startswith("credential 'crm': the token endpoint's answer has")
    clock.now += 60
    assert outcomes(tokens, 1) == ["access-token-2"]
    restarted = manager(Endpoint(), clock, cache=TokenFile(tmp_path / "crm.age", identity))
    restarted.invalidate(Secret("access-token-2"))
    outcomes(restarted, 1)
    assert endpoint.sent == [REFRESH, "rt-rotated-in-refused-answer"]


def test_a_refused_rotated_refresh_token_blocks_the_credential(tmp_path: Path) -> None:
    identity, clock = pyrage.x25519.Identity.generate(), Clock()
    endpoint = Endpoint((200, {"access_token": "abcdefghij", "refresh_token": "e"}))
    tokens = manager(endpoint, clock, cache=TokenFile(tmp_path / "crm.age", identity))
    assert outcomes(tokens, 1) == [
        "credential 'crm': the token endpoint's answer has no usable refresh_token"
    ]
    assert "e" not in [value.reveal_text() for value in tokens.secret_values()]
    blocked = (
        "credential 'crm': the provider rotated the refresh token to a value the runtime"
        " refused; set a new refresh_token in the credential's secret"
    )
    clock.now += 60
    assert outcomes(tokens, 1) == [blocked]
    restarted = manager(endpoint, clock, cache=TokenFile(tmp_path / "crm.age", identity))
    assert outcomes(restarted, 1) == [blocked]
    assert endpoint.sent == [REFRESH]


@pytest.mark.parametrize("with_file", [True, False], ids=["x25519-file", "memory-only"])
def test_a_rotated_refresh_token_survives_a_reload_that_changes_the_scopes(
    with_file: bool, tmp_path: Path
) -> None:
    identity, clock, states, endpoint = (
        pyrage.x25519.Identity.generate(),
        Clock(),
        TokenStates(),
        Endpoint(),
    )

    def cache() -> TokenFile | None:
        return TokenFile(tmp_path / "crm.age", identity) if with_file else None

    assert outcomes(manager(endpoint, clock, states=states, cache=cache()), 1) == ["access-token-1"]
    reloaded = manager(endpoint, clock, states=states, cache=cache(), scopes=("a", "b"))
    assert outcomes(reloaded, 1) == ["access-token-2"]  # other scopes: a new access token
    unrelated = manager(endpoint, clock, states=states, cache=cache(), scopes=("a", "b"))
    assert outcomes(unrelated, 1) == ["access-token-2"]
    assert endpoint.sent == [REFRESH, "rt-rotated-1-xyz"]
    if with_file:  # a restart finds the rotated one in the file
        restarted = manager(endpoint, clock, cache=cache(), scopes=("c",))
        outcomes(restarted, 1)
        assert endpoint.sent[-1] == "rt-rotated-2-xyz"


def test_a_reload_during_a_refresh_does_not_start_a_second_one() -> None:
    states, clock, endpoint = TokenStates(), Clock(), Endpoint(delay=0.1)
    first = manager(endpoint, clock, states=states)
    second = manager(endpoint, clock, states=states, scopes=("b",))

    async def both() -> list[Secret]:
        return await asyncio.gather(first.get_token(), second.get_token())

    asyncio.run(both())
    assert endpoint.sent == [REFRESH, "rt-rotated-1-xyz"]


def test_a_token_an_upstream_refused_is_never_taken_from_the_file_again(tmp_path: Path) -> None:
    identity, clock, endpoint = pyrage.x25519.Identity.generate(), Clock(), Endpoint()
    worker_a = manager(endpoint, clock, cache=TokenFile(tmp_path / "crm.age", identity))
    worker_b = manager(endpoint, clock, cache=TokenFile(tmp_path / "crm.age", identity))
    assert outcomes(worker_a, 1) == ["access-token-1"]
    holder = TokenFile(tmp_path / "crm.age", identity).lock
    with holder.held_now() as held:  # someone else holds the lock: B cannot update the file
        assert held
        worker_b.invalidate(Secret("access-token-1"))
    assert outcomes(worker_b, 1) == ["access-token-2"]
    assert endpoint.sent == [REFRESH, "rt-rotated-1-xyz"]


def test_a_cache_of_the_former_layout_is_read(tmp_path: Path) -> None:
    identity, clock = pyrage.x25519.Identity.generate(), Clock()
    old = manager(Endpoint(), clock)
    legacy = {
        "value": None,
        "expires_at": 0,
        "refresh_at": 0,
        "refresh_token": "rt-rotated-before-upgrade",
        "fingerprint": old._fingerprint,
    }
    sealed = pyrage.encrypt(json.dumps(legacy).encode(), [identity.to_public()])
    (tmp_path / "crm.age").write_bytes(sealed)
    endpoint = Endpoint()
    outcomes(manager(endpoint, clock, cache=TokenFile(tmp_path / "crm.age", identity)), 1)
    assert endpoint.sent == ["rt-rotated-before-upgrade"]


def test_a_token_refused_while_its_flight_was_under_way_is_not_handed_out() -> None:
    endpoint = Endpoint(delay=0.05)
    tokens = manager(endpoint, Clock())

    async def run() -> Secret:
        waiting = asyncio.ensure_future(tokens.get_token())
        await asyncio.sleep(0.01)  # the flight is asking the endpoint
        tokens.invalidate(Secret("access-token-1"))  # as another request's 401 would
        return await waiting

    assert asyncio.run(run()) == Secret("access-token-2")
    assert endpoint.sent == [REFRESH, "rt-rotated-1-xyz"]
