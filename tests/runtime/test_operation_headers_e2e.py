"""Operation-selecting headers end to end: `X-Amz-Target` and copy sources need a listing.

A real TLS upstream (trustme) answers with what reached it, so each test
shows both the refusal and that nothing was sent, and the audit line of a
refusal is a `deny`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.auth_runtime import assert_clean, running
from support.bundles import BEARER, TOKEN
from support.inprocess import InProcessRuntime
from support.tls_app import TlsApp, tls_app

DDB_HOST, S3_HOST = "dynamodb.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com"
COMPAT_HOST = "alternator.example.com"
DDB_SECRET = "ddb-secret-access-key-canary-0a1b2c3d4e"
S3_SECRET = "s3-secret-access-key-canary-5f6a7b8c9d"
COMPAT_KEY = "compat-bearer-canary-9e8d7c6b5a"
SECRETS = [DDB_SECRET, S3_SECRET, COMPAT_KEY]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GET_ITEM, DELETE_TABLE = "DynamoDB_20120810.GetItem", "DynamoDB_20120810.DeleteTable"
OPERATIONS = ("operations", [GET_ITEM, "DynamoDB_20120810.Query"])
CREDS = {
    "ddb": Cred(
        (DDB_HOST,),
        {"aws_sig_v4": {"service": "dynamodb", "region": "eu-west-1"}},
        "DDB",
        ("/",),
        (OPERATIONS,),
    ),
    "s3": Cred(
        (S3_HOST,),
        {"aws_sig_v4": {"service": "s3", "region": "eu-west-1"}},
        "S3",
        ("/my-bucket/",),
        (("copySourcePrefixes", ["/my-bucket/incoming/"]),),
    ),
    "compat": Cred((COMPAT_HOST,), {"header": BEARER}, "COMPAT", ("/",), (OPERATIONS,)),
    "plain": Cred((COMPAT_HOST,), {"header": BEARER}, "COMPAT", ("/",)),
}
VALUES = {
    "DDB": json.dumps({"access_key_id": "AKIADDBEXAMPLE", "secret_access_key": DDB_SECRET}),
    "S3": json.dumps({"access_key_id": "AKIAS3EXAMPLE", "secret_access_key": S3_SECRET}),
    "COMPAT": COMPAT_KEY,
}
SEEN: list[dict[str, str]] = []


async def handler(request: web.Request) -> web.StreamResponse:
    """200 with the operation headers that arrived and the header names signed."""
    await request.read()
    names = ("X-Amz-Target", "x-amz-copy-source", "Authorization")
    seen = {name.lower(): request.headers[name] for name in names if name in request.headers}
    SEEN.append(seen)
    signed = seen.get("authorization", "").partition("SignedHeaders=")[2].partition(",")[0]
    answer = {k: v for k, v in seen.items() if k != "authorization"}
    return web.json_response({**answer, "signed": signed.split(";")})


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    hosts = (DDB_HOST, S3_HOST, COMPAT_HOST)
    with tls_app(tmp_path_factory.mktemp("ops-app"), handler, hosts) as app:
        yield app


@pytest.fixture
def runtime(tmp_path: Path, app: TlsApp) -> Iterator[InProcessRuntime]:
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    bundles.publish(tmp_path / "bundles", 1, CREDS, VALUES)
    options = bundles.runtime_options((DDB_HOST, app), (S3_HOST, app), (COMPAT_HOST, app))
    SEEN.clear()
    with running(tmp_path, options, SECRETS) as runtime:
        yield runtime


def call(runtime: InProcessRuntime, method: str, path: str, **headers: str) -> httpx.Response:
    sent = {**AUTH, **{name.replace("__", "-"): value for name, value in headers.items()}}
    response = httpx.request(method, runtime.url + path, headers=sent, content=b"{}", timeout=10)
    return assert_clean(response, SECRETS)


def audit_lines(tmp_path: Path) -> list[dict[str, Any]]:
    files = sorted((tmp_path / "state" / "audit").glob("*.jsonl"))
    return [json.loads(text) for path in files for text in path.read_text().splitlines()]


def test_a_listed_operation_is_signed_and_sent(runtime: InProcessRuntime) -> None:
    response = call(runtime, "POST", "/v/ddb/", X__Amz__Target=GET_ITEM)
    assert response.status_code == 200, response.text
    assert response.json()["x-amz-target"] == GET_ITEM
    assert "x-amz-target" in response.json()["signed"]


def test_an_unlisted_operation_is_refused_and_audited_as_deny(
    runtime: InProcessRuntime, tmp_path: Path
) -> None:
    response = call(runtime, "POST", "/v/ddb/", X__Amz__Target=DELETE_TABLE)
    assert response.status_code == 403
    assert response.json()["error"] == "E-OPERATION-FORBIDDEN"
    assert "DeleteTable" in response.json()["message"]
    assert SEEN == []
    [line] = audit_lines(tmp_path)
    assert (line["decision"], line["error"], line["status"]) == (
        "deny",
        "E-OPERATION-FORBIDDEN",
        403,
    )


@pytest.mark.parametrize(
    "name", ["x-amz-target", "X_Amz_Target", "x.amz.target"], ids=["lower", "under", "dots"]
)
def test_other_spellings_of_the_name_are_judged_too(runtime: InProcessRuntime, name: str) -> None:
    response = call(runtime, "POST", "/v/ddb/", **{name: DELETE_TABLE})
    assert response.status_code == 403
    assert response.json()["error"] == "E-OPERATION-FORBIDDEN"


def test_a_second_target_header_is_refused(runtime: InProcessRuntime) -> None:
    headers = [*AUTH.items(), ("X-Amz-Target", GET_ITEM), ("X_Amz_Target", DELETE_TABLE)]
    response = httpx.post(runtime.url + "/v/ddb/", headers=headers, content=b"{}", timeout=10)
    assert response.status_code == 403
    assert response.json()["error"] == "E-OPERATION-FORBIDDEN"
    assert SEEN == []


def test_the_rule_holds_for_a_bearer_token_credential(runtime: InProcessRuntime) -> None:
    allowed = call(runtime, "POST", "/v/compat/", X__Amz__Target=GET_ITEM)
    assert allowed.status_code == 200, allowed.text
    refused = call(runtime, "POST", "/v/compat/", X__Amz__Target=DELETE_TABLE)
    assert refused.status_code == 403
    none_listed = call(runtime, "POST", "/v/plain/", X__Amz__Target=GET_ITEM)
    assert none_listed.status_code == 403
    assert "listed: none" in none_listed.json()["message"]
    assert len(SEEN) == 1


def test_requests_without_operation_headers_are_unchanged(runtime: InProcessRuntime) -> None:
    response = call(runtime, "POST", "/v/plain/items", X__Custom="1")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "source",
    [
        "my-bucket/incoming/a.txt",
        "/my-bucket/incoming/sub/b%20c.txt",
        "my-bucket/incoming/a.txt?versionId=3sL4kqtJlcpXroDTDmJ",
        f"https://{S3_HOST}/my-bucket/incoming/a.txt",
    ],
    ids=["bare", "slash-encoded", "version", "url-same-host"],
)
def test_a_copy_source_under_a_listed_prefix_passes(runtime: InProcessRuntime, source: str) -> None:
    response = call(runtime, "POST", "/v/s3/my-bucket/copy.txt", x__amz__copy__source=source)
    assert response.status_code == 200, response.text
    assert response.json()["x-amz-copy-source"] == source
    assert "x-amz-copy-source" in response.json()["signed"]


@pytest.mark.parametrize(
    ("header", "source"),
    [
        ("x-amz-copy-source", "other-bucket/secret.txt"),
        ("x-amz-copy-source", "my-bucket/private/keys.txt"),
        ("x-amz-copy-source", "my-bucket/incoming/../private/keys.txt"),
        ("x-amz-copy-source", "my-bucket/incoming/%2e%2e/private/keys.txt"),
        ("x-amz-copy-source", "my-bucket/incomingX/a.txt"),
        ("x-amz-copy-source", "https://evil.example.com/my-bucket/incoming/a.txt"),
        ("x-amz-rename-source", "/my-bucket/private/keys.txt"),
        ("x-goog-copy-source", "other-bucket/a.txt"),
        ("x-ms-copy-source", "https://other.blob.core.windows.net/c/a"),
    ],
    ids=["bucket", "prefix", "dots", "encoded-dots", "boundary", "url", "rename", "goog", "ms"],
)
def test_a_copy_source_outside_is_refused(
    runtime: InProcessRuntime, header: str, source: str
) -> None:
    response = call(runtime, "POST", "/v/s3/my-bucket/copy.txt", **{header: source})
    assert response.status_code == 403
    assert response.json()["error"] == "E-OPERATION-FORBIDDEN"
    assert SEEN == []


def test_a_copy_source_through_a_capability_without_prefixes_is_refused(
    runtime: InProcessRuntime,
) -> None:
    response = call(runtime, "POST", "/v/ddb/", x__amz__copy__source="my-bucket/incoming/a")
    assert response.status_code == 403
    assert response.json()["error"] == "E-OPERATION-FORBIDDEN"


def test_the_envelope_applies_the_same_rule(runtime: InProcessRuntime) -> None:
    envelope = {
        "capability": "ddb/api",
        "request": {
            "method": "POST",
            "path": "/",
            "headers": {"X-Amz-Target": DELETE_TABLE},
            "body": "{}",
        },
    }
    response = httpx.post(runtime.url + "/aivault/proxy", headers=AUTH, json=envelope, timeout=10)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "E-OPERATION-FORBIDDEN"
    assert SEEN == []
