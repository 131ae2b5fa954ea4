"""A decrypted secret of the wrong shape: its credential alone fails, with a clear code.

`validate` cannot see inside a secret (it holds no private key), so the
runtime reports the shape at load: the credential is refused per request
with 503 `E-CREDENTIAL-SECRET-INVALID` and named in /status, the others keep
working, and no value is ever shown (the canaries below are checked in
every answer, the log and the state directory).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.auth_runtime import assert_clean, running
from support.bundles import BEARER, TOKEN
from support.inprocess import InProcessRuntime
from support.tls_app import TlsApp, tls_app

HOST = "api.shape.example.com"
GOOD_KEY = "good-bearer-canary-1a2b3c4d5e"
FLAT_SECRET = "flat-aws-secret-canary-6f7a8b9c0d"
LOOSE_SECRET = "loose-aws-secret-canary-1e2f3a4b5c"
CERT_CANARY = "mtls-cert-canary-9d8c7b6a5f"
SECRETS = [GOOD_KEY, FLAT_SECRET, LOOSE_SECRET, CERT_CANARY]
AWS = {"aws_sig_v4": {"service": "execute-api", "region": "eu-west-1"}}
CREDS = {
    "good": Cred((HOST,), {"header": BEARER}, "GOOD"),
    "flat": Cred((HOST,), AWS, "FLAT"),
    "loose": Cred((HOST,), AWS, "LOOSE"),
    "newline": Cred((HOST,), AWS, "NEWLINE"),
    "cert": Cred((HOST,), "mtls", "CERT"),
}
VALUES = {
    "GOOD": GOOD_KEY,
    "FLAT": FLAT_SECRET,  # the bare secret key, not the JSON object aws_sig_v4 reads
    "LOOSE": json.dumps({"access_key": "AKIAEXAMPLE", "secret_key": LOOSE_SECRET}),
    "NEWLINE": json.dumps(
        {"access_key_id": "AKIA\r\nX-Injected: 1", "secret_access_key": LOOSE_SECRET}
    ),
    "CERT": json.dumps({"certificate": CERT_CANARY}),
}
EXPECTED = {
    "cert": "mtls secret needs a PEM string 'certificate'",
    "flat": "aws_sig_v4 secret must be a JSON object",
    "loose": "aws_sig_v4 secret needs a non-empty string 'access_key_id'",
    "newline": "aws_sig_v4 secret 'access_key_id' must be visible ASCII without '/' or blanks",
}


async def handler(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    with tls_app(tmp_path_factory.mktemp("shape-app"), handler, (HOST,)) as app:
        yield app


@pytest.fixture
def runtime(tmp_path: Path, app: TlsApp) -> Iterator[InProcessRuntime]:
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    bundles.publish(tmp_path / "bundles", 1, CREDS, VALUES)
    with running(tmp_path, bundles.runtime_options((HOST, app)), SECRETS) as runtime:
        yield runtime


def get(runtime: InProcessRuntime, credential: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.get(f"{runtime.url}/v/{credential}/v1/x", headers=headers, timeout=10)
    return assert_clean(response, SECRETS)


def test_each_wrong_shape_is_named_in_status_without_a_value(runtime: InProcessRuntime) -> None:
    status = runtime.status()
    assert status["problems"] == [
        f"credential {name!r}: E-CREDENTIAL-SECRET-INVALID: {message}"
        for name, message in sorted(EXPECTED.items())
    ]
    assert all(secret not in json.dumps(status) for secret in SECRETS)


@pytest.mark.parametrize("credential", sorted(EXPECTED))
def test_the_credential_alone_is_refused_with_the_code(
    runtime: InProcessRuntime, credential: str
) -> None:
    response = get(runtime, credential)
    assert response.status_code == 503
    assert response.json() == {
        "error": "E-CREDENTIAL-SECRET-INVALID",
        "message": f"credential {credential!r} is unavailable",
    }
    assert get(runtime, "good").status_code == 200
