"""o_auth2 against a provider that rotates refresh tokens and revokes the whole token family
when one is sent twice (OAuth 2.0 Security BCP), with real `aivault-ops serve` processes.

The TLS token endpoint and API run on 127.0.0.1. Every refresh token the
endpoint receives is recorded: none may arrive twice, with one worker or
two, on the first burst after start or on a burst of 401s, with an x25519
identity (shared cache file) or an SSH-only one (a per-process key).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.bundles import TOKEN
from support.oauth2_provider import API, ENDPOINT, LOGIN, Provider, ssh_bundles
from support.runtime_proc import RuntimeProcess, scan_tree
from support.tls_app import TlsApp, tls_app

CLIENT_SECRET = "cs-canary-rotation-client-secret-5c6d"
REFRESH = "rt-canary-rotation-original-7e8f9a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CREDS = {
    "crm": Cred(
        (API, LOGIN),
        {"o_auth2": {"grant_type": "refresh_token", "token_endpoint": ENDPOINT, "scopes": ["a"]}},
        "CRM_OAUTH",
    )
}
VALUES = {
    "CRM_OAUTH": json.dumps(
        {"client_id": "crm-client", "client_secret": CLIENT_SECRET, "refresh_token": REFRESH}
    )
}


PROVIDER = Provider(REFRESH)


async def handler(request: web.Request) -> web.StreamResponse:
    return await PROVIDER.handle(request)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    with tls_app(tmp_path_factory.mktemp("rotation-app"), handler, (API, LOGIN)) as app:
        yield app


def start(tmp_path: Path, app: TlsApp, bundles: AuthBundles, workers: int) -> RuntimeProcess:
    (tmp_path / "bundles").mkdir(exist_ok=True)
    bundles.publish(tmp_path / "bundles", 1, CREDS, VALUES)
    args = ["--identity", str(bundles.identity), "--trust", bundles.trust]
    args += ["--workers", str(workers), "--dev-ca-cert", str(app.ca_file)]
    for host in (API, LOGIN):
        args += ["--dev-resolve", app.dev_resolve(host)]
    process = RuntimeProcess(tmp_path / "bundles", tmp_path / "state", tmp_path / "log", args)
    return process.start()


def get(runtime: RuntimeProcess, path: str) -> httpx.Response:
    """One request on a new connection (either worker may take it)."""
    with httpx.Client(headers=AUTH, timeout=30) as client:
        response = client.get(runtime.url + "/v/crm" + path)
    for secret in [CLIENT_SECRET, REFRESH, *PROVIDER.secrets()]:
        assert secret not in response.text
        assert all(secret not in value for value in response.headers.values())
    return response


def burst(runtime: RuntimeProcess, path: str, callers: int = 12) -> list[int]:
    with ThreadPoolExecutor(callers) as pool:
        return sorted(pool.map(lambda _: get(runtime, path).status_code, range(callers)))


def assert_clean(runtime: RuntimeProcess, tmp_path: Path) -> None:
    log = runtime.log()
    for secret in [CLIENT_SECRET, REFRESH, *PROVIDER.secrets()]:
        assert secret not in log
        assert scan_tree(tmp_path / "state", secret) == []


@pytest.mark.parametrize(
    ("identity", "workers"), [("x25519", 1), ("x25519", 2), ("ssh", 2)], ids=str
)
def test_no_refresh_token_is_ever_sent_twice(
    identity: str, workers: int, tmp_path: Path, app: TlsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    global PROVIDER
    PROVIDER = Provider(REFRESH)
    monkeypatch.setenv("HOME", str(tmp_path))  # no identity but the one given
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    bundles = ssh_bundles(tmp_path) if identity == "ssh" else AuthBundles.create(tmp_path)
    runtime = start(tmp_path, app, bundles, workers)
    try:
        assert burst(runtime, "/v1/first") == [200] * 12  # the first burst after start
        assert [get(runtime, "/v1/warm").status_code for _ in range(6)] == [200] * 6
        assert burst(runtime, "/v1/always-401") == [401] * 12  # each 401 forces a refresh
        assert burst(runtime, "/v1/after") == [200] * 12
        PROVIDER.revoke_access_tokens()  # every worker's token is refused at once
        assert burst(runtime, "/v1/revoked", 20) == [200] * 20  # one retry each, with a new one
    finally:
        assert runtime.stop() == 0
    assert not PROVIDER.revoked
    assert len(PROVIDER.received) == len(set(PROVIDER.received)) > 1
    assert_clean(runtime, tmp_path)


def test_a_fifo_at_the_cache_path_fails_the_credential_not_the_runtime(
    tmp_path: Path, app: TlsApp
) -> None:
    global PROVIDER
    PROVIDER = Provider(REFRESH)
    (tmp_path / "state" / "oauth2").mkdir(parents=True, mode=0o700)
    os.mkfifo(tmp_path / "state" / "oauth2" / "crm.age")
    runtime = start(tmp_path, app, AuthBundles.create(tmp_path), 1)
    try:
        started = time.monotonic()
        response = get(runtime, "/v1/x")
        assert time.monotonic() - started < 5
        assert runtime.answers_healthz()
    finally:
        assert runtime.stop() == 0
    assert response.status_code == 503
    assert response.json() == {
        "error": "E-CREDENTIAL-UNAVAILABLE",
        "message": "o_auth2 token cache oauth2/crm.age: is not a regular file owned by the"
        " runtime's user",
    }
    assert PROVIDER.received == []
