"""`o_auth2` end to end: a TLS token endpoint and API on 127.0.0.1, a real runtime.

The token endpoint checks the client's credentials and the refresh token
(rotating it), counts its calls and issues numbered tokens; the API accepts
only tokens it issued and has not revoked or seen expire.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.auth_runtime import assert_clean, running
from support.bundles import TOKEN
from support.inprocess import InProcessRuntime
from support.runtime_proc import free_port, wait_until
from support.tls_app import TlsApp, tls_app

API, LOGIN = "api.crm.example.com", "login.crm.example.com"
DOWN = "down.crm.example.com"  # a token endpoint nothing listens for
ENDPOINT = f"https://{LOGIN}/oauth/token"
CLIENT_SECRET = "cs-canary-oauth-client-secret-9a8b7c"
REFRESH = "rt-canary-original-refresh-token-1d2e3f"
SVC_SECRET = "cs-canary-service-client-secret-4f5e6d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOSTS = (API, LOGIN)
CREDS = {
    "crm": Cred(
        HOSTS,
        {"o_auth2": {"grant_type": "refresh_token", "token_endpoint": ENDPOINT, "scopes": ["a"]}},
        "CRM_OAUTH",
    ),
    "svc": Cred(
        HOSTS,
        {"o_auth2": {"grant_type": "client_credentials", "token_endpoint": ENDPOINT}},
        "SVC_OAUTH",
    ),
    "broken": Cred(
        HOSTS,
        {"o_auth2": {"grant_type": "client_credentials", "token_endpoint": ENDPOINT}},
        "BROKEN_OAUTH",
    ),
    "down": Cred(
        (API, DOWN),
        {
            "o_auth2": {
                "grant_type": "client_credentials",
                "token_endpoint": f"https://{DOWN}/oauth/token",
            }
        },
        "SVC_OAUTH",
    ),
    "ssrf": Cred(
        (API, "127.0.0.1"),
        {
            "o_auth2": {
                "grant_type": "client_credentials",
                "token_endpoint": "https://127.0.0.1/oauth/token",
            }
        },
        "SVC_OAUTH",
    ),
}
VALUES = {
    "CRM_OAUTH": json.dumps(
        {"client_id": "crm-client", "client_secret": CLIENT_SECRET, "refresh_token": REFRESH}
    ),
    "SVC_OAUTH": json.dumps(
        {
            "client_id": "svc-client",
            "client_secret": SVC_SECRET,
            "token_endpoint_auth_method": "client_secret_post",
        }
    ),
    "BROKEN_OAUTH": json.dumps({"client_id": "svc-client", "client_secret": "wrong-secret-1"}),
}
CLIENTS = {"crm-client": CLIENT_SECRET, "svc-client": SVC_SECRET}


@dataclass
class Provider:
    """What the token endpoint and the API know and saw."""

    expires_in: int = 3600
    refresh: str = REFRESH
    grants: list[dict[str, str]] = field(default_factory=list)
    expiry: dict[str, float] = field(default_factory=dict)
    hits: list[tuple[str, str, int]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def revoke_all(self) -> None:
        self.expiry.clear()

    def statuses(self, path: str) -> list[int]:
        return [status for seen, _, status in self.hits if seen == path]


PROVIDER = Provider()


def _client(request: web.Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return unquote_plus(user), unquote_plus(password)
    return form.get("client_id", ""), form.get("client_secret", "")


async def token_endpoint(request: web.Request) -> web.StreamResponse:
    form = {key: str(value) for key, value in (await request.post()).items()}
    client_id, client_secret = _client(request, form)
    PROVIDER.grants.append({**form, "client_id": client_id})
    await asyncio.sleep(0.2)  # widens the window in which concurrent requests wait
    if CLIENTS.get(client_id) != client_secret:
        return web.json_response({"error": "invalid_client"}, status=400)
    answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": PROVIDER.expires_in}
    if form["grant_type"] == "refresh_token":
        if form.get("refresh_token") != PROVIDER.refresh:
            return web.json_response({"error": "invalid_grant"}, status=400)
        PROVIDER.refresh = answer["refresh_token"] = f"rt-canary-rotated-{secrets.token_hex(8)}"
    token = f"at-canary-{len(PROVIDER.issued)}-{secrets.token_hex(8)}"
    PROVIDER.issued.append(token)
    PROVIDER.expiry[token] = time.monotonic() + PROVIDER.expires_in
    return web.json_response({**answer, "access_token": token})


async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: one\n\n")
    await response.write(b"data: two\n\n")
    await response.write_eof()
    return response


async def api(request: web.Request) -> web.StreamResponse:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    valid = PROVIDER.expiry.get(token, 0) > time.monotonic()
    status = 200 if valid and not request.path.endswith("always-401") else 401
    PROVIDER.hits.append((request.path, token, status))
    if status == 401:
        return web.json_response({"error": "invalid_token"}, status=401)
    if request.path.endswith("/stream"):
        return await _sse(request)
    return web.json_response({"ok": True, "echo": token})


async def handler(request: web.Request) -> web.StreamResponse:
    if request.host.startswith(LOGIN):
        return await token_endpoint(request)
    return await api(request)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    with tls_app(tmp_path_factory.mktemp("oauth2-app"), handler, HOSTS) as app:
        yield app


@dataclass
class Setup:
    tmp_path: Path
    options: dict[str, Any]
    secrets: list[str]

    def start(self) -> Any:
        return running(self.tmp_path, self.options, self.secrets)


@pytest.fixture
def setup(tmp_path: Path, app: TlsApp) -> Setup:
    PROVIDER.reset()
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    bundles.publish(tmp_path / "bundles", 1, CREDS, VALUES)
    options = bundles.runtime_options((API, app), (LOGIN, app))
    return Setup(tmp_path, options, [CLIENT_SECRET, REFRESH, SVC_SECRET])


def get(runtime: InProcessRuntime, path: str, leaks: list[str]) -> httpx.Response:
    response = httpx.get(runtime.url + path, headers=AUTH, timeout=20)
    return assert_clean(response, [*leaks, *PROVIDER.issued, PROVIDER.refresh])


def test_concurrent_requests_share_one_token(setup: Setup) -> None:
    with setup.start() as runtime, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: get(runtime, "/v/crm/v1/x", setup.secrets), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len(PROVIDER.grants) == 1
    [grant] = PROVIDER.grants
    assert grant == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "scope": "a",
        "client_id": "crm-client",
    }
    assert {token for _, token, _ in PROVIDER.hits} == {PROVIDER.issued[0]}
    assert {r.json()["echo"] for r in responses} == {"[REDACTED]"}
    setup.secrets.extend(PROVIDER.issued)


def test_token_is_refreshed_before_it_expires(setup: Setup) -> None:
    PROVIDER.expires_in = 4  # refreshed half-way, after 2 s; the API refuses it after 4 s
    with setup.start() as runtime:
        assert get(runtime, "/v/crm/v1/x", setup.secrets).status_code == 200
        wait_until(
            lambda: (
                get(runtime, "/v/crm/v1/x", setup.secrets).status_code == 200
                and len(PROVIDER.issued) == 2
            ),
            what="a refreshed token",
        )
    assert 401 not in PROVIDER.statuses("/v1/x")
    assert PROVIDER.grants[0]["refresh_token"] == REFRESH
    assert PROVIDER.grants[1]["refresh_token"] != REFRESH  # the rotated one was used
    setup.secrets.extend(PROVIDER.issued)


@pytest.mark.parametrize("path", ["/v1/x", "/v1/stream"])
def test_a_401_forces_one_refresh_and_one_retry(setup: Setup, path: str) -> None:
    with setup.start() as runtime:
        assert get(runtime, "/v/crm/v1/warm", setup.secrets).status_code == 200
        PROVIDER.revoke_all()
        response = get(runtime, "/v/crm" + path, setup.secrets)
    assert response.status_code == 200
    if path.endswith("stream"):
        assert response.text == "data: one\n\ndata: two\n\n"
    assert PROVIDER.statuses(path) == [401, 200]
    assert len(PROVIDER.grants) == 2
    assert [token for seen, token, _ in PROVIDER.hits if seen == path] == PROVIDER.issued
    setup.secrets.extend(PROVIDER.issued)


def test_a_second_401_goes_to_the_caller(setup: Setup) -> None:
    with setup.start() as runtime:
        response = get(runtime, "/v/crm/v1/always-401", setup.secrets)
    assert response.status_code == 401
    assert PROVIDER.statuses("/v1/always-401") == [401, 401]
    assert len(PROVIDER.grants) == 2
    setup.secrets.extend(PROVIDER.issued)


def test_the_cache_is_encrypted_and_reused_after_a_restart(setup: Setup) -> None:
    with setup.start() as runtime:
        assert get(runtime, "/v/crm/v1/x", setup.secrets).status_code == 200
    cache = setup.tmp_path / "state" / "oauth2" / "crm.age"
    assert cache.read_bytes().startswith(b"age-encryption.org/v1\n")
    for value in [*PROVIDER.issued, PROVIDER.refresh]:
        assert value.encode() not in cache.read_bytes()
    with setup.start() as runtime:
        assert get(runtime, "/v/crm/v1/x", setup.secrets).status_code == 200
    assert len(PROVIDER.grants) == 1
    assert [token for _, token, _ in PROVIDER.hits] == [PROVIDER.issued[0]] * 2
    setup.secrets.extend([*PROVIDER.issued, PROVIDER.refresh])


def test_client_credentials_with_the_secret_in_the_form(setup: Setup) -> None:
    with setup.start() as runtime:
        assert get(runtime, "/v/svc/v1/x", setup.secrets).status_code == 200
    [grant] = PROVIDER.grants
    assert grant == {
        "grant_type": "client_credentials",
        "client_id": "svc-client",
        "client_secret": SVC_SECRET,
    }
    setup.secrets.extend(PROVIDER.issued)


def test_a_failing_token_endpoint_answers_502(setup: Setup) -> None:
    with setup.start() as runtime:
        response = get(runtime, "/v/broken/v1/x", setup.secrets)
    assert response.status_code == 502
    assert response.json() == {
        "error": "E-OAUTH2-TOKEN",
        "message": "credential 'broken': the token endpoint answered 400 (invalid_client)",
    }
    assert PROVIDER.hits == []


def test_the_token_endpoint_is_reached_only_through_the_ssrf_check(setup: Setup) -> None:
    with setup.start() as runtime:
        response = get(runtime, "/v/ssrf/v1/x", setup.secrets)
    assert response.status_code == 502
    assert response.json() == {
        "error": "E-OAUTH2-TOKEN",
        "message": "credential 'ssrf': the token endpoint is unreachable (E-UPSTREAM-FORBIDDEN)",
    }
    assert PROVIDER.grants == []
    assert PROVIDER.hits == []


def _requests_counted(runtime: InProcessRuntime, capability: str) -> dict[str, str]:
    """decision -> count of `aivault_requests_total` for `capability`, from /metrics."""
    counted: dict[str, str] = {}
    for line in httpx.get(runtime.url + "/metrics").text.splitlines():
        name, _, rest = line.partition("{")
        labels, _, value = rest.partition("} ")
        if name == "aivault_requests_total" and f'capability="{capability}"' in labels:
            counted[labels.split('decision="')[1].split('"')[0]] = value.strip()
    return counted


def test_a_token_endpoint_outage_is_audited_and_counted_as_an_error(setup: Setup) -> None:
    # The token endpoint is an upstream: its outage is a failure (`error`), like the
    # API's own (E-UPSTREAM-RESET …), not a refusal by policy (`deny`).
    setup.options["dev_resolve"] = [
        *setup.options["dev_resolve"],
        f"{DOWN}=127.0.0.1:{free_port()}",
    ]
    with setup.start() as runtime:
        response = get(runtime, "/v/down/v1/x", setup.secrets)
        counted = _requests_counted(runtime, "down/api")
    assert response.status_code == 502
    assert response.json() == {
        "error": "E-OAUTH2-TOKEN",
        "message": "credential 'down': the token endpoint is unreachable (E-UPSTREAM-UNREACHABLE)",
    }
    files = sorted((setup.tmp_path / "state" / "audit").glob("*.jsonl"))
    [line] = [json.loads(text) for path in files for text in path.read_text().splitlines()]
    assert (line["decision"], line["error"], line["status"]) == ("error", "E-OAUTH2-TOKEN", 502)
    assert (line["capability"], line["credential"]) == ("down/api", "down")
    assert counted == {"error": "1.0"}
    assert PROVIDER.grants == []
    assert PROVIDER.hits == []
