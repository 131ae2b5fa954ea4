"""`serve --workers 2` (uvloop, forked workers) with mtls and o_auth2 credentials.

The in-process tests run the same code on asyncio's loop; this one runs the
real command: uvloop's TLS, contexts built before the fork, and o_auth2
tokens shared by the workers through the encrypted cache file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.bundles import TOKEN
from support.runtime_proc import RuntimeProcess, scan_tree
from support.tls_app import TlsApp, peer_common_name, tls_app

BANK, API, LOGIN = "api.bank.example.com", "api.crm.example.com", "login.crm.example.com"
CLIENT_SECRET = "cs-canary-workers-client-secret-77"
CLIENT_CA = trustme.CA()
CLIENT = CLIENT_CA.issue_cert("client.bank.example", common_name="bank-client")
KEY_PEM = CLIENT.private_key_pem.bytes().decode()
CREDS = {
    "bank": Cred((BANK,), "mtls", "BANK_TLS"),
    "crm": Cred(
        (API, LOGIN),
        {
            "o_auth2": {
                "grant_type": "client_credentials",
                "token_endpoint": f"https://{LOGIN}/oauth/token",
            }
        },
        "CRM_OAUTH",
    ),
}
VALUES = {
    "BANK_TLS": json.dumps(
        {"certificate": CLIENT.cert_chain_pems[0].bytes().decode(), "private_key": KEY_PEM}
    ),
    "CRM_OAUTH": json.dumps({"client_id": "crm", "client_secret": CLIENT_SECRET}),
}
ISSUED: list[str] = []


async def handler(request: web.Request) -> web.StreamResponse:
    if request.host.startswith(LOGIN):
        ISSUED.append(f"at-canary-workers-{len(ISSUED)}-0123456789")
        return web.json_response({"access_token": ISSUED[-1], "expires_in": 3600})
    if request.host.startswith(BANK):
        return web.json_response({"client": peer_common_name(request)})
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return web.json_response({"ok": token in ISSUED}, status=200 if token in ISSUED else 401)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    directory = tmp_path_factory.mktemp("workers-app")
    with tls_app(directory, handler, (BANK, API, LOGIN), client_ca=CLIENT_CA) as app:
        yield app


@pytest.fixture
def runtime(tmp_path: Path, app: TlsApp) -> Iterator[RuntimeProcess]:
    ISSUED.clear()
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    bundles.publish(tmp_path / "bundles", 1, CREDS, VALUES)
    args = ["--identity", str(bundles.identity), "--trust", bundles.trust, "--workers", "2"]
    args += ["--dev-ca-cert", str(app.ca_file)]
    for host in (BANK, API, LOGIN):
        args += ["--dev-resolve", app.dev_resolve(host)]
    process = RuntimeProcess(tmp_path / "bundles", tmp_path / "state", tmp_path / "log", args)
    yield process.start()
    assert process.stop() == 0
    for secret in [CLIENT_SECRET, KEY_PEM.splitlines()[1], *ISSUED]:
        assert secret not in process.log()
        assert scan_tree(tmp_path / "state", secret) == []


def test_workers_present_the_certificate_and_share_one_token(runtime: RuntimeProcess) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(6):  # a new connection each time: either worker may take it
        with httpx.Client(headers=headers, timeout=10) as client:
            bank = client.get(runtime.url + "/v/bank/v1/accounts")
            crm = client.get(runtime.url + "/v/crm/v1/contacts")
        assert (bank.status_code, bank.json()) == (200, {"client": "bank-client"})
        assert (crm.status_code, crm.json()) == (200, {"ok": True})
    assert len(ISSUED) == 1
