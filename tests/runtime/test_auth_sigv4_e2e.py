"""`aws_sig_v4` end to end: a TLS upstream recomputes every signature with botocore's signer."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from support.auth_bundles import AuthBundles, Cred
from support.auth_runtime import assert_clean, running
from support.bundles import TOKEN
from support.inprocess import InProcessRuntime
from support.tls_app import TlsApp, tls_app

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY-canary-sk1"
SESSION = "IQoJb3JpZ2luX2VjECANARY-session-token-0123456789"
S3_SECRET = "s3-secret-access-key-canary-000111222333"
API_HOST, S3_HOST = "api.execute-api.eu-west-1.amazonaws.com", "bucket.s3.eu-west-1.amazonaws.com"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRETS = [SECRET_KEY, SESSION, S3_SECRET]
CREDS = {
    "gw": Cred(
        (API_HOST,), {"aws_sig_v4": {"service": "execute-api", "region": "eu-west-1"}}, "GW"
    ),
    "s3": Cred((S3_HOST,), {"aws_sig_v4": {"service": "s3", "region": "eu-west-1"}}, "S3"),
}
VALUES = {
    "GW": json.dumps(
        {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY, "session_token": SESSION}
    ),
    "S3": json.dumps({"access_key_id": "AKIAS3EXAMPLE", "secret_access_key": S3_SECRET}),
}
_AUTHZ = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def botocore_signature(request: web.Request, body: bytes, fields: dict[str, str]) -> str:
    """The signature botocore computes for the request as received (signed headers only)."""
    secret, token = (S3_SECRET, None) if fields["service"] == "s3" else (SECRET_KEY, SESSION)
    signed = fields["signed"].split(";")
    headers = {name: request.headers[name] for name in signed if name != "host"}
    url = f"https://{request.host}{request.raw_path}"
    aws = AWSRequest(method=request.method, url=url, headers=headers, data=body)
    signer_class = S3SigV4Auth if fields["service"] == "s3" else SigV4Auth
    signer = signer_class(Credentials(fields["key"], secret, token), fields["service"], "eu-west-1")
    aws.context["timestamp"] = request.headers["X-Amz-Date"]
    canonical = signer.canonical_request(aws)
    return str(signer.signature(signer.string_to_sign(aws, canonical), aws))


async def handler(request: web.Request) -> web.StreamResponse:
    """200 with what was checked when botocore's signature matches, else 403."""
    body = await request.read()
    match = _AUTHZ.fullmatch(request.headers.get("Authorization", ""))
    if match is None:
        return web.json_response({"error": "no signature"}, status=403)
    fields = match.groupdict()
    expected = botocore_signature(request, body, fields)
    if not hmac.compare_digest(expected, fields["signature"]):
        return web.json_response({"error": "SignatureDoesNotMatch"}, status=403)
    if fields["service"] == "s3":
        assert request.headers["X-Amz-Content-Sha256"] == hashlib.sha256(body).hexdigest()
    answer: dict[str, Any] = {"ok": True, "signed": fields["signed"], "key": fields["key"]}
    answer["token"] = request.headers.get("X-Amz-Security-Token") == SESSION
    if request.path.endswith("/leak"):
        answer["leak"] = {"secret": SECRET_KEY, "token": SESSION}
    return web.json_response(answer)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    with tls_app(tmp_path_factory.mktemp("sigv4-app"), handler, (API_HOST, S3_HOST)) as app:
        yield app


@pytest.fixture
def runtime(tmp_path: Path, app: TlsApp) -> Iterator[InProcessRuntime]:
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    bundles.publish(tmp_path / "bundles", 1, CREDS, VALUES)
    options = bundles.runtime_options((API_HOST, app), (S3_HOST, app))
    with running(tmp_path, options, SECRETS) as runtime:
        yield runtime


def call(runtime: InProcessRuntime, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    response = httpx.request(method, runtime.url + path, headers=headers, timeout=10, **kwargs)
    return assert_clean(response, SECRETS)


def test_signed_get_with_query_and_session_token(runtime: InProcessRuntime) -> None:
    path = "/v/gw/v1/items/a%20b?z=last&a=first&q=hello+world&empty="
    response = call(runtime, "GET", path, headers={"X-Custom": "spaced   out  value"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["key"] == ACCESS_KEY
    assert answer["token"] is True
    assert "x-custom" in answer["signed"].split(";")
    assert "x-amz-security-token" in answer["signed"].split(";")


def test_signed_post_with_a_body(runtime: InProcessRuntime) -> None:
    response = call(runtime, "POST", "/v/gw/v1/items", json={"name": "ada"})
    assert response.status_code == 200, response.text
    assert "content-type" in response.json()["signed"].split(";")


def test_s3_signs_the_payload_hash(runtime: InProcessRuntime) -> None:
    response = call(runtime, "POST", "/v/s3/v1/object.txt", content=b"object bytes")
    assert response.status_code == 200, response.text
    assert "x-amz-content-sha256" in response.json()["signed"].split(";")
    assert response.json()["token"] is False


def test_secrets_echoed_by_the_upstream_are_redacted(runtime: InProcessRuntime) -> None:
    response = call(runtime, "GET", "/v/gw/v1/leak")
    assert response.json()["leak"] == {"secret": "[REDACTED]", "token": "[REDACTED]"}


@pytest.mark.parametrize("header", ["X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"])
def test_callers_may_not_send_signing_headers(runtime: InProcessRuntime, header: str) -> None:
    response = call(runtime, "GET", "/v/gw/v1/items", headers={header: "20200101T000000Z"})
    assert response.status_code == 403
    assert response.json()["error"] == "E-HEADER-FORBIDDEN"
