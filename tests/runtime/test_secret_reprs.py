"""Secrets stay `Secret` in every runtime object until the request is written.

A real signed bundle whose credentials use every auth strategy, with a
canary in each secret value, is loaded by the runtime's loader (SOPS
decryption included). One call per credential is prepared, signed and sent
through the real upstream client (the o_auth2 token endpoint too) to a TLS
test upstream. Then everything reachable from the policy, the calls, the
signatures and the loaded bundle is walked (`support.secret_walk`): no
canary may sit in a plain string or bytes object, nor show in any `repr()`
or `str()`. The upstream, on the other hand, must have received them: the
values are revealed on the wire and nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
from aiohttp import web
from support.auth_bundles import AuthBundles, Cred
from support.secret_walk import walk
from support.tls_app import TlsApp, peer_common_name, tls_app

from aivault_ops.bundle import BundleRef
from aivault_ops.runtime.auth.request_auth import Signed, send_authorized, sign_call
from aivault_ops.runtime.bundles.loader import Loaded, Loader
from aivault_ops.runtime.model import InboundRequest, PreparedCall
from aivault_ops.runtime.upstream.client import DevResolve, Http1Upstream, UpstreamSettings
from aivault_ops.runtime.wiring import auth_services
from aivault_ops.secret import Secret
from aivault_ops.sops import load_identities

API, LOGIN = "api.canary.example.com", "login.canary.example.com"
CLIENT_CA = trustme.CA()
CLIENT = CLIENT_CA.issue_cert("client.canary.example", common_name="canary-client")
KEY_PEM = CLIENT.private_key_pem.bytes().decode()
ACCESS_TOKEN = "canary-oauth-access-7c1d9e3f5a"
ROTATED = "canary-oauth-rotated-2b8e4f6a1c"
CANARY = {
    "header": "canary-header-4f2a9c7e1b",
    "query": "canary-query-8d3b5e1f7a",
    "path": "canary-path-6a1c8e2d4f",
    "user": "canary-user-3e7b1d9c5a",
    "pass": "canary-pass-9f4c2a6e8b",
    "mh_id": "canary-mh-id-5d8a2f6c1e",
    "mh_secret": "canary-mh-secret-1b7e3c9a5d",
    "mq_key": "canary-mq-key-7a2e6c1f9d",
    "mq_token": "canary-mq-token-4c9f1b5e3a",
    "hmac": "canary-hmac-key-2d6a9e4c8f",
    "aws_id": "AKIACANARY7E3B9D1F",
    "aws_secret": "canary-aws-secret-8b4f2d6a1e",
    "aws_session": "canary-aws-session-6e1a9c3f7b",
    "oauth_id": "canary-oauth-client-3a7d1f5b9e",
    "oauth_secret": "canary-oauth-secret-9c5e1a7d3b",
    "oauth_refresh": "canary-oauth-refresh-5f9b3d7a1c",
    "oauth_access": ACCESS_TOKEN,
    "oauth_rotated": ROTATED,
    "tls_key": KEY_PEM.splitlines()[1],
}
HMAC = {"algorithm": "sha256", "header_name": "X-Signature", "value_template": "{{signature}}"}
OAUTH = {"grant_type": "refresh_token", "token_endpoint": f"https://{LOGIN}/oauth/token"}
CREDS = {
    "header": Cred((API,), {"header": {"header_name": "authorization",
                                       "value_template": "Bearer {{secret}}"}}, "HEADER"),
    "query": Cred((API,), {"query": {"param_name": "key"}}, "QUERY"),
    "path": Cred((API,), {"path": {"prefix_template": "/bot{{secret}}"}}, "PATH"),
    "basic": Cred((API,), "basic", "BASIC"),
    "multi-header": Cred((API,), {"multi_header": [
        {"header_name": "X-Client-Id", "value_template": "{{client_id}}"},
        {"header_name": "X-Client-Secret", "value_template": "{{client_secret}}"},
    ]}, "MULTI_HEADER"),
    "multi-query": Cred((API,), {"multi_query": [
        {"param_name": "key", "value_template": "{{key}}"},
        {"param_name": "token", "value_template": "{{token}}"},
    ]}, "MULTI_QUERY"),
    "hmac": Cred((API,), {"hmac": HMAC}, "HMAC"),
    "aws": Cred((API,), {"aws_sig_v4": {"service": "execute-api", "region": "eu-west-1"}}, "AWS"),
    "oauth": Cred((API, LOGIN), {"o_auth2": OAUTH}, "OAUTH"),
    "mtls": Cred((API,), "mtls", "MTLS"),
}  # fmt: skip
VALUES = {
    "HEADER": CANARY["header"],
    "QUERY": CANARY["query"],
    "PATH": "123456:" + CANARY["path"],
    "BASIC": f"{CANARY['user']}:{CANARY['pass']}",
    "MULTI_HEADER": json.dumps(
        {"client_id": CANARY["mh_id"], "client_secret": CANARY["mh_secret"]}
    ),
    "MULTI_QUERY": json.dumps({"key": CANARY["mq_key"], "token": CANARY["mq_token"]}),
    "HMAC": CANARY["hmac"],
    "AWS": json.dumps({"access_key_id": CANARY["aws_id"], "secret_access_key":
                       CANARY["aws_secret"], "session_token": CANARY["aws_session"]}),
    "OAUTH": json.dumps({"client_id": CANARY["oauth_id"], "client_secret":
                         CANARY["oauth_secret"], "refresh_token": CANARY["oauth_refresh"]}),
    "MTLS": json.dumps({"certificate": CLIENT.cert_chain_pems[0].bytes().decode(),
                        "private_key": KEY_PEM}),
}  # fmt: skip
RECEIVED: list[str] = []


async def handler(request: web.Request) -> web.StreamResponse:
    """The token endpoint on LOGIN; on API, records the request as it arrived."""
    if request.host.startswith(LOGIN):
        form = await request.post()
        RECEIVED.append(f"token {request.headers.get('Authorization')} {sorted(form.items())}")
        body = {"access_token": ACCESS_TOKEN, "expires_in": 3600, "refresh_token": ROTATED}
        return web.json_response(body)
    headers = " ".join(f"{name}: {value}" for name, value in request.headers.items())
    RECEIVED.append(f"{request.path_qs} {headers} client={peer_common_name(request)}")
    return web.json_response({"ok": True})


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsApp]:
    directory = tmp_path_factory.mktemp("secret-reprs-app")
    with tls_app(directory, handler, (API, LOGIN), client_ca=CLIENT_CA) as app:
        yield app


@dataclass
class Sent:
    """Everything the runtime built for the calls, kept for the walk."""

    loaded: Loaded
    prepared: list[PreparedCall]
    signed: list[tuple[PreparedCall, Signed | None]]
    sent: list[PreparedCall]


def load(tmp_path: Path, app: TlsApp) -> tuple[Loaded, Any, UpstreamSettings]:
    bundles = AuthBundles.create(tmp_path)
    (tmp_path / "bundles").mkdir()
    path = bundles.publish(tmp_path / "bundles", 1, CREDS, VALUES)
    settings = UpstreamSettings(
        dev_resolve=DevResolve.parse([app.dev_resolve(API), app.dev_resolve(LOGIN)]),
        dev_ca_cert=app.ca_file,
    )
    identities = load_identities(bundles.identity, {})
    runtime = SimpleNamespace(upstream=None)
    services = auth_services(runtime, identities, settings, tmp_path / "state")  # type: ignore[arg-type]
    loader = Loader([bundles.key.public_key], identities, lambda: datetime.now(UTC), services)
    loaded = loader.load(BundleRef(1, path.name), path.read_bytes(), floor=None, active=None)
    return loaded, runtime, settings


async def call_each(loaded: Loaded, runtime: Any, settings: UpstreamSettings) -> Sent:
    """Prepare, sign and send one call per credential; redact each answer."""
    runtime.upstream = upstream = Http1Upstream(settings)
    sent = Sent(loaded, [], [], [])
    try:
        for name in sorted(CREDS):
            inbound = InboundRequest(
                "POST", "/v1/things", (("page", "2"),), (("content-type", "text/plain"),), b"hi"
            )
            authorized = loaded.policy.authorize("agent", f"{name}/api")
            call = loaded.policy.prepare(authorized, inbound)
            sent.prepared.append(call)
            sent.signed.append(await sign_call(call, datetime.now(UTC)))
            done, response = await send_authorized(upstream, call, lambda: datetime.now(UTC))
            assert response.status_code == 200, name
            done.redactor.redact(await response.aread() + ACCESS_TOKEN.encode())
            await response.aclose()
            sent.sent.append(done)
    finally:
        await upstream.aclose()
    return sent


def test_no_runtime_object_holds_or_shows_a_secret_as_plain_text(
    tmp_path: Path, app: TlsApp
) -> None:
    RECEIVED.clear()
    loaded, runtime, settings = load(tmp_path, app)
    assert loaded.policy.problems() == []
    sent = asyncio.run(call_each(loaded, runtime, settings))

    roots = [("loaded", sent.loaded), ("policy", loaded.policy)]
    roots += [(f"prepared[{i}]", call) for i, call in enumerate(sent.prepared)]
    roots += [(f"signed[{i}]", pair) for i, pair in enumerate(sent.signed)]
    roots += [(f"sent[{i}]", call) for i, call in enumerate(sent.sent)]
    found = walk(roots, CANARY.values())

    assert found.leaks == []
    not_reached = [name for name, value in CANARY.items() if not found.holding(value)]
    assert not_reached == [], "the walk missed the objects holding these secrets"


def test_the_secrets_were_revealed_on_the_wire(tmp_path: Path, app: TlsApp) -> None:
    RECEIVED.clear()
    loaded, runtime, settings = load(tmp_path, app)
    asyncio.run(call_each(loaded, runtime, settings))
    wire = "\n".join(RECEIVED)
    basic = base64.b64encode(f"{CANARY['user']}:{CANARY['pass']}".encode()).decode()
    token_basic = base64.b64encode(f"{CANARY['oauth_id']}:{CANARY['oauth_secret']}".encode())
    sent_as_is = ("header", "query", "path", "mh_id", "mh_secret", "mq_key", "mq_token",
                  "aws_id", "aws_session", "oauth_refresh", "oauth_access")  # fmt: skip
    assert [name for name in sent_as_is if CANARY[name] not in wire] == []
    assert basic in wire and token_basic.decode() in wire
    assert "client=canary-client" in wire
    never_sent = ("hmac", "aws_secret", "tls_key")
    assert [name for name in never_sent if CANARY[name] in wire] == []


@dataclass
class _Holder:
    inner: tuple[Any, ...]


def test_the_walk_finds_a_plain_secret_anywhere() -> None:
    """The walk is not vacuous: a plain copy is found in fields, slots, closures, dict keys,
    base64, and reprs; a `Secret` is not a leak."""
    canary = CANARY["header"]
    encoded = base64.b64encode(f"user:{canary}".encode()).decode()

    class Slotted:
        __slots__ = ("value",)

        def __init__(self, value: object) -> None:
            self.value = value

    class Shows:
        def __repr__(self) -> str:
            return f"Shows({canary})"

    def closure() -> str:
        return canary

    planted = {
        "field": _Holder((1, {"k": [canary]})),
        "slot": Slotted(canary.encode()),
        "closure": closure,
        "key": {canary: 1},
        "base64": _Holder((encoded,)),
        "repr": Shows(),
    }
    for name, obj in planted.items():
        assert walk([(name, obj)], [canary]).leaks != [], name
    wrapped = walk(
        [("ok", _Holder((Secret(canary), Slotted(Secret("Basic " + encoded)))))], [canary]
    )
    assert wrapped.leaks == []
    assert wrapped.holding(canary) == 1
