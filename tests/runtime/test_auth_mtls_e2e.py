"""`mtls` end to end: TLS upstreams that ask for (or require) a client certificate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.auth_runtime import assert_clean, running
from support.bundles import BEARER, TOKEN
from support.inprocess import InProcessRuntime
from support.tls_app import TlsApp, peer_common_name, tls_app

HOST = "api.bank.example.com"
PLAIN_KEY = "plain-api-key-canary-5c4b3a29"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLIENT_CA = trustme.CA()
CLIENT = CLIENT_CA.issue_cert("client.bank.example", common_name="bank-client")
OTHER = CLIENT_CA.issue_cert("other.bank.example", common_name="other-client")
CERT_PEM = CLIENT.cert_chain_pems[0].bytes().decode()
KEY_PEM = CLIENT.private_key_pem.bytes().decode()
CREDS = {
    "bank": Cred((HOST,), "mtls", "BANK_TLS"),
    "plain": Cred((HOST,), {"header": BEARER}, "PLAIN_KEY"),
}
VALUES = {
    "BANK_TLS": json.dumps({"certificate": CERT_PEM, "private_key": KEY_PEM}),
    "PLAIN_KEY": PLAIN_KEY,
}
SECRETS = [KEY_PEM.splitlines()[1], PLAIN_KEY]


async def handler(request: web.Request) -> web.StreamResponse:
    """Answers with the common name of the client certificate on this connection."""
    return web.json_response({"client": peer_common_name(request)})


@pytest.fixture(scope="module")
def asking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    directory = tmp_path_factory.mktemp("mtls-optional")
    with tls_app(directory, handler, (HOST,), client_ca=CLIENT_CA) as app:
        yield app


@pytest.fixture(scope="module")
def requiring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    directory = tmp_path_factory.mktemp("mtls-required")
    with tls_app(directory, handler, (HOST,), client_ca=CLIENT_CA, require_client_cert=True) as app:
        yield app


def start(tmp_path: Path, app: TlsApp, values: dict[str, str] = VALUES) -> Any:
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    bundles.publish(tmp_path / "bundles", 1, CREDS, values)
    return running(tmp_path, bundles.runtime_options((HOST, app)), SECRETS)


def get(runtime: InProcessRuntime, credential: str) -> httpx.Response:
    response = httpx.get(f"{runtime.url}/v/{credential}/v1/accounts", headers=AUTH, timeout=10)
    return assert_clean(response, SECRETS)


def test_only_the_mtls_credential_presents_the_certificate(tmp_path: Path, asking: TlsApp) -> None:
    with start(tmp_path, asking) as runtime:
        answers = [get(runtime, name) for name in ("bank", "plain", "bank", "plain")]
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["client"] for a in answers] == ["bank-client", None, "bank-client", None]


def test_an_upstream_requiring_a_certificate(tmp_path: Path, requiring: TlsApp) -> None:
    with start(tmp_path, requiring) as runtime:
        bank, plain = get(runtime, "bank"), get(runtime, "plain")
    assert (bank.status_code, bank.json()) == (200, {"client": "bank-client"})
    assert plain.status_code == 502
    # TLS 1.3: the server refuses after the client's handshake finished, so the client
    # sees the refusal as an alert or a closed connection when it reads the answer.
    assert plain.json()["error"] in ("E-UPSTREAM-TLS", "E-UPSTREAM-RESET")


def test_a_key_of_another_certificate_makes_the_credential_unavailable(
    tmp_path: Path, asking: TlsApp
) -> None:
    other_key = OTHER.private_key_pem.bytes().decode()
    values = {**VALUES, "BANK_TLS": json.dumps({"certificate": CERT_PEM, "private_key": other_key})}
    with start(tmp_path, asking, values) as runtime:
        problems = runtime.status()["problems"]
        response = get(runtime, "bank")
    assert problems == [
        "credential 'bank': E-CREDENTIAL-SECRET-INVALID: mtls certificate and private key"
        " do not load as a pair"
    ]
    assert response.status_code == 503
    assert response.json()["error"] == "E-CREDENTIAL-SECRET-INVALID"


def test_a_secret_that_is_not_a_pem_pair_is_refused(tmp_path: Path, asking: TlsApp) -> None:
    values = {**VALUES, "BANK_TLS": json.dumps({"certificate": CERT_PEM})}
    with start(tmp_path, asking, values) as runtime:
        problems = runtime.status()["problems"]
    assert problems == [
        "credential 'bank': E-CREDENTIAL-SECRET-INVALID:"
        " mtls secret needs a PEM string 'private_key'"
    ]
