"""`hmac` end to end: a real TLS upstream recomputes every signature with `hmac.new`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.auth_runtime import assert_clean, running
from support.bundles import TOKEN
from support.inprocess import InProcessRuntime
from support.tls_app import TlsApp, tls_app

PAY_KEY = "whsec-pay-canary-7f3a9c1d2e"
HOOK_KEY = "whsec-hook-canary-0b9e8d7c6a"
REQ_KEY = "whsec-request-canary-5c4b3a2f1e"
PAY_HOST, HOOK_HOST = "api.pay.example.com", "hooks.example.com"
REQ_HOST = "api.signed.example.com"
KEYS = [PAY_KEY, HOOK_KEY, REQ_KEY]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CREDS = {
    "pay": Cred(
        (PAY_HOST,),
        {
            "hmac": {
                "algorithm": "sha256",
                "header_name": "X-Signature",
                "value_template": "t={{timestamp}},v1={{signature}}",
                "message": "canonical",
            }
        },
        "PAY_KEY",
    ),
    "hook": Cred(
        (HOOK_HOST,),
        {
            "hmac": {
                "algorithm": "sha512",
                "header_name": "X-Body-Sig",
                "value_template": "{{signature_b64}}",
            }
        },
        "HOOK_KEY",
    ),
    "req": Cred(
        (REQ_HOST,),
        {
            "hmac": {
                "algorithm": "sha256",
                "header_name": "X-Request-Sig",
                "value_template": "t={{timestamp}},v1={{signature}}",
                "message": "request",
            }
        },
        "REQ_KEY",
    ),
}


def _verify_pay(request: web.Request, body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in request.headers["X-Signature"].split(","))
    digest = hashlib.sha256(body).hexdigest()
    message = f"{fields['t']}\n{request.method}\n{request.raw_path.partition('?')[0]}\n{digest}"
    expected = hmac.new(PAY_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def _verify_hook(request: web.Request, body: bytes) -> bool:
    expected = hmac.new(HOOK_KEY.encode(), body, hashlib.sha512).digest()
    return hmac.compare_digest(base64.b64encode(expected).decode(), request.headers["X-Body-Sig"])


def _verify_req(request: web.Request, body: bytes) -> bool:
    """`request` mode, recomputed from the request as received: the query line included."""
    fields = dict(part.split("=", 1) for part in request.headers["X-Request-Sig"].split(","))
    path, _, query = request.raw_path.partition("?")
    digest = hashlib.sha256(body).hexdigest()
    message = f"{fields['t']}\n{request.method}\n{path}\n{query}\n{digest}"
    expected = hmac.new(REQ_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


async def handler(request: web.Request) -> web.StreamResponse:
    """200 when the signature recomputed here matches, else 401; can echo its key."""
    body = await request.read()
    if request.host.startswith(REQ_HOST):
        ok = "X-Request-Sig" in request.headers and _verify_req(request, body)
        return web.json_response(
            {"verified": ok, "query": request.query_string}, status=200 if ok else 401
        )
    verify = _verify_pay if request.host.startswith(PAY_HOST) else _verify_hook
    header = "X-Signature" if verify is _verify_pay else "X-Body-Sig"
    if header not in request.headers or not verify(request, body):
        return web.json_response({"verified": False}, status=401)
    key = PAY_KEY if verify is _verify_pay else HOOK_KEY
    echoed = {"leak": key} if request.path.endswith("/leak") else {}
    answer = {"verified": True, "body": body.decode(), "signature": request.headers[header]}
    return web.json_response({**answer, **echoed}, headers={header: request.headers[header]})


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    with tls_app(
        tmp_path_factory.mktemp("hmac-app"), handler, (PAY_HOST, HOOK_HOST, REQ_HOST)
    ) as app:
        yield app


@pytest.fixture
def runtime(tmp_path: Path, app: TlsApp) -> Iterator[InProcessRuntime]:
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    values = {"PAY_KEY": PAY_KEY, "HOOK_KEY": HOOK_KEY, "REQ_KEY": REQ_KEY}
    bundles.publish(tmp_path / "bundles", 1, CREDS, values)
    options = bundles.runtime_options((PAY_HOST, app), (HOOK_HOST, app), (REQ_HOST, app))
    with running(tmp_path, options, KEYS) as runtime:
        yield runtime


def call(runtime: InProcessRuntime, method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = httpx.request(method, runtime.url + path, headers=AUTH, timeout=10, **kwargs)
    return assert_clean(response, KEYS)


def test_canonical_sha256_signature_verifies_upstream(runtime: InProcessRuntime) -> None:
    response = call(runtime, "POST", "/v/pay/v1/charges", content=b'{"amount": 100}')
    assert response.status_code == 200
    assert response.json()["verified"] is True
    assert response.json()["body"] == '{"amount": 100}'
    assert "x-signature" not in response.headers
    assert call(runtime, "GET", "/v/pay/v1/charges/ch_1").json()["verified"] is True


def test_request_mode_signs_the_query_as_sent(runtime: InProcessRuntime) -> None:
    path = "/v/req/v1/charges/a%20b?limit=10&expand=customer&q=a+b%2Fc"
    response = call(runtime, "POST", path, content=b'{"amount": 100}')
    assert response.status_code == 200, response.text
    assert response.json()["verified"] is True
    assert "limit=10" in response.json()["query"]
    assert call(runtime, "GET", "/v/req/v1/charges").json()["verified"] is True


def test_body_sha512_base64_signature_through_the_envelope(runtime: InProcessRuntime) -> None:
    envelope = {
        "capability": "hook/api",
        "request": {"method": "POST", "path": "/v1/events", "body": "payload-ü"},
    }
    response = call(runtime, "POST", "/aivault/proxy", json=envelope)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == 200
    assert json.loads(answer["body"])["verified"] is True
    assert "x-body-sig" not in {name.lower() for name in answer["headers"]}


def test_the_key_echoed_by_the_upstream_is_redacted(runtime: InProcessRuntime) -> None:
    response = call(runtime, "POST", "/v/pay/v1/leak", content=b"x")
    assert response.json()["leak"] == "[REDACTED]"


def test_callers_may_not_send_the_signature_header(runtime: InProcessRuntime) -> None:
    headers = {**AUTH, "X-Signature": "t=1,v1=00"}
    response = httpx.post(runtime.url + "/v/pay/v1/charges", headers=headers, timeout=10)
    assert response.status_code == 403
    assert response.json()["error"] == "E-HEADER-FORBIDDEN"


def test_a_misconfigured_hmac_credential_is_unavailable(tmp_path: Path, app: TlsApp) -> None:
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    bad = {"hmac": {**CREDS["pay"].auth["hmac"], "value_template": "{{secret}}"}}
    creds = {"pay": Cred((PAY_HOST,), bad, "PAY_KEY")}
    bundles.publish(tmp_path / "bundles", 1, creds, {"PAY_KEY": PAY_KEY})
    options = bundles.runtime_options((PAY_HOST, app))
    with running(tmp_path, options, [PAY_KEY]) as runtime:
        [problem] = runtime.status()["problems"]
        assert problem == (
            "credential 'pay': E-CREDENTIAL-UNAVAILABLE: auth.hmac.value_template may use"
            " only signature, signature_b64 and timestamp, not secret"
        )
        response = call(runtime, "GET", "/v/pay/v1/charges")
        assert response.status_code == 503
