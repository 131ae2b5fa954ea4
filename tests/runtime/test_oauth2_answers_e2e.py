"""o_auth2 answers and failures end to end: a TLS provider on 127.0.0.1, a real runtime.

Rotated refresh tokens survive refused answers and reloads; the token
endpoint's `error` value, a control character in an access token or a
one-character refresh token never reach a caller; one failure is shared by
concurrent callers; a POST is sent again after a 401 only for an invalid
token. Every response, log line and state file is scanned for the canaries.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.auth_runtime import assert_clean, running
from support.bundles import TOKEN
from support.inprocess import InProcessRuntime
from support.oauth2_provider import (
    API,
    ENDPOINT,
    LOGIN,
    Provider,
    publish_with_policy,
    ssh_bundles,
)
from support.runtime_proc import wait_until
from support.tls_app import TlsApp, tls_app

CLIENT_SECRET = "cs-canary-answers-client-secret-3b4c"
REFRESH = "rt-canary-answers-original-1a2b3c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VALUES = {
    "CRM_OAUTH": json.dumps(
        {"client_id": "crm-client", "client_secret": CLIENT_SECRET, "refresh_token": REFRESH}
    )
}
PROVIDER = Provider(REFRESH, delay=0.05)


def creds(scopes: list[str], prefixes: tuple[str, ...] = ("/v1",)) -> dict[str, Cred]:
    auth = {"grant_type": "refresh_token", "token_endpoint": ENDPOINT, "scopes": scopes}
    return {"crm": Cred((API, LOGIN), {"o_auth2": auth}, "CRM_OAUTH", prefixes)}


async def handler(request: web.Request) -> web.StreamResponse:
    return await PROVIDER.handle(request)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    with tls_app(tmp_path_factory.mktemp("answers-app"), handler, (API, LOGIN)) as app:
        yield app


class Setup:
    def __init__(self, tmp_path: Path, app: TlsApp, bundles: AuthBundles) -> None:
        self.tmp_path, self.bundles = tmp_path, bundles
        (tmp_path / "bundles").mkdir()
        self.publish(1, creds(["a"]))
        self.options = bundles.runtime_options((API, app), (LOGIN, app))

    def publish(self, serial: int, given: dict[str, Cred]) -> None:
        self.bundles.publish(self.tmp_path / "bundles", serial, given, VALUES)

    def start(self) -> Any:
        """The runtime; when it stops, its log and state dir are scanned for the canaries."""
        return running(self.tmp_path, self.options, Canaries())


class Canaries:
    """Every secret and every value the provider handed out, as of when it is read."""

    def __iter__(self) -> Iterator[str]:
        return iter([CLIENT_SECRET, REFRESH, *PROVIDER.secrets()])


@pytest.fixture
def setup(tmp_path: Path, app: TlsApp) -> Setup:
    global PROVIDER
    PROVIDER = Provider(REFRESH, delay=0.05)
    return Setup(tmp_path, app, AuthBundles.create(tmp_path))


def get(runtime: InProcessRuntime, path: str, method: str = "GET") -> httpx.Response:
    response = httpx.request(method, runtime.url + "/v/crm" + path, headers=AUTH, timeout=30)
    return assert_clean(response, Canaries())


def no_reuse() -> None:
    assert not PROVIDER.revoked
    assert len(PROVIDER.received) == len(set(PROVIDER.received))


@pytest.mark.parametrize("identity", ["x25519", "ssh"])
def test_rotated_refresh_tokens_survive_reloads(
    identity: str, tmp_path: Path, app: TlsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    global PROVIDER
    PROVIDER = Provider(REFRESH, delay=0.05)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    bundles = ssh_bundles(tmp_path) if identity == "ssh" else AuthBundles.create(tmp_path)
    setup = Setup(tmp_path, app, bundles)
    with setup.start() as runtime:
        assert get(runtime, "/v1/x").status_code == 200
        setup.publish(2, creds(["a", "b"]))  # other scopes, same secret
        runtime.wait_serial(2)
        assert get(runtime, "/v1/x").status_code == 200
        setup.publish(3, creds(["a", "b"], ("/v1", "/v2")))  # an unrelated change
        runtime.wait_serial(3)
        assert get(runtime, "/v1/always-401").status_code == 401  # forces a refresh
        assert get(runtime, "/v2/x").status_code == 200
    assert len(PROVIDER.received) == 3
    no_reuse()


@pytest.mark.parametrize(
    ("refused", "field"),
    [
        ({"access_token": "abcdefghij", "expires_in": -5}, "expires_in"),
        ({"access_token": "abcdefghij", "token_type": "N_A"}, "token_type"),
        ({"access_token": "short"}, "access_token"),
        ({"token_type": "Bearer"}, "access_token"),
        ({"access_token": "abcdefgh\x0bij"}, "access_token"),
        ({"access_token": "abcdefgh\x1b[2J"}, "access_token"),
        ({"access_token": "abcdefgh\x7fij"}, "access_token"),
    ],
    ids=["expires-in", "token-type", "short", "no-access-token", "vt", "esc", "del"],
)
def test_a_refused_answer_keeps_its_rotated_refresh_token(
    setup: Setup, refused: dict[str, Any], field: str
) -> None:
    PROVIDER.script.append((200, refused, True))
    with setup.start() as runtime:
        first = get(runtime, "/v1/x")
        wait_until(lambda: get(runtime, "/v1/x").status_code == 200, what="the next token")
    assert first.status_code == 502
    assert first.json() == {
        "error": "E-OAUTH2-TOKEN",
        "message": f"credential 'crm': the token endpoint's answer has no usable {field}",
    }
    assert [token for _, _, token, _ in PROVIDER.hits] == list(PROVIDER.issued)
    assert len(PROVIDER.received) == 2
    no_reuse()


def test_a_one_character_refresh_token_is_refused_and_blocks_the_credential(
    setup: Setup,
) -> None:
    PROVIDER.script.append((200, {"access_token": "abcdefghij", "refresh_token": "e"}, False))
    with setup.start() as runtime:
        first = get(runtime, "/v1/x").json()
        wait_until(lambda: "provider rotated" in get(runtime, "/v1/x").text, what="blocked")
    assert first == {
        "error": "E-OAUTH2-TOKEN",
        "message": "credential 'crm': the token endpoint's answer has no usable refresh_token",
    }
    assert PROVIDER.received == [REFRESH]  # the old one is never sent again
    assert PROVIDER.hits == []


def envelope(runtime: InProcessRuntime) -> httpx.Response:
    request = {"capability": "crm/api", "request": {"method": "GET", "path": "/v1/x"}}
    response = httpx.post(runtime.url + "/aivault/proxy", json=request, headers=AUTH, timeout=30)
    return assert_clean(response, Canaries())


def invoke(runtime: InProcessRuntime) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "aivault_ops", "invoke", "crm/api", "--path", "/v1/x"]
    command += ["--runtime", runtime.url, "--token", TOKEN]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("value", [CLIENT_SECRET, "server_error " + CLIENT_SECRET, "e"])
def test_the_token_endpoint_error_value_is_never_shown(setup: Setup, value: str) -> None:
    PROVIDER.script.extend([(400, {"error": value}, False)] * 3)
    message = "credential 'crm': the token endpoint answered 400 (unlisted error code)"
    with setup.start() as runtime:
        passthrough = get(runtime, "/v1/x")
        wrapped = envelope(runtime)
        cli = invoke(runtime)
    assert passthrough.json() == {"error": "E-OAUTH2-TOKEN", "message": message}
    assert wrapped.json() == {"error": "E-OAUTH2-TOKEN", "message": message}
    assert (cli.returncode, cli.stderr) == (1, f"aivault-ops: error: E-OAUTH2-TOKEN: {message}\n")
    assert CLIENT_SECRET not in cli.stdout + cli.stderr


def test_concurrent_callers_share_one_failing_token_request(setup: Setup) -> None:
    PROVIDER.script.extend([(503, {"error": "temporarily_unavailable"}, False)] * 20)
    PROVIDER.delay = 0.5
    with setup.start() as runtime, ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: get(runtime, "/v1/x").json(), range(20)))
    message = "credential 'crm': the token endpoint answered 503 (temporarily_unavailable)"
    assert answers == [{"error": "E-OAUTH2-TOKEN", "message": message}] * 20
    assert PROVIDER.grants == 1


@pytest.mark.parametrize(
    ("challenge", "sent"),
    [('Bearer realm="crm"', 1), ('Bearer realm="crm", error="invalid_token"', 2)],
    ids=["no-error", "invalid-token"],
)
def test_a_post_is_sent_again_after_a_401_only_for_an_invalid_token(
    setup: Setup, challenge: str, sent: int
) -> None:
    PROVIDER.challenge = challenge
    with setup.start() as runtime:
        assert get(runtime, "/v1/always-401", "POST").status_code == 401
        assert get(runtime, "/v1/x", "POST").status_code == 200
    posts = [hit for hit in PROVIDER.hits if hit[1] == "/v1/always-401"]
    assert (len(posts), PROVIDER.grants) == (sent, 2)
    no_reuse()


def test_callers_wait_for_a_hanging_token_endpoint_at_most_their_timeout(setup: Setup) -> None:
    bundle_dir = setup.tmp_path / "bundles"
    publish_with_policy(setup.bundles, bundle_dir, 2, creds(["a"]), VALUES, {"timeoutMs": 1000})
    PROVIDER.delay = 5.0
    message = "credential 'crm': the token endpoint did not answer within 1 s"
    with setup.start() as runtime, ThreadPoolExecutor(3) as pool:
        started = time.monotonic()
        answers = list(pool.map(lambda _: get(runtime, "/v1/x").json(), range(3)))
        waited = time.monotonic() - started
    assert answers == [{"error": "E-OAUTH2-TOKEN", "message": message}] * 3
    assert waited < 3.5
    assert PROVIDER.asked == 1
