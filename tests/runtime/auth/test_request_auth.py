"""`send_authorized`: sign just before sending, one retry after a 401 only when asked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from aivault_ops.runtime.auth import build_injection
from aivault_ops.runtime.auth.base import AuthServices, AuthUnavailable
from aivault_ops.runtime.auth.oauth2.strategy import OAuth2Auth
from aivault_ops.runtime.auth.request_auth import send_authorized
from aivault_ops.runtime.model import PreparedCall, UpstreamRequest
from aivault_ops.secret import Secret, wire_text

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
HOSTS = ("api.example.com", "auth.example.com")
OAUTH = {
    "o_auth2": {
        "grant_type": "client_credentials",
        "token_endpoint": "https://auth.example.com/token",
    }
}
OAUTH_SECRET = json.dumps({"client_id": "c", "client_secret": "client-secret-123"})
HMAC = {"hmac": {"algorithm": "sha256", "header_name": "X-Sig", "value_template": "{{signature}}"}}


class Opener:
    """Answers with the given statuses in turn and records what was sent."""

    def __init__(self, *statuses: int, challenge: str | None = None) -> None:
        self.statuses = list(statuses)
        self.sent: list[UpstreamRequest] = []
        self.headers = {} if challenge is None else {"WWW-Authenticate": challenge}

    async def open(self, request: UpstreamRequest) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(self.statuses.pop(0), content=b"{}", headers=self.headers)


class Tokens:
    def __init__(self) -> None:
        self.issued = 0

    async def __call__(
        self, url: str, form: Mapping[str, str | Secret], headers: Mapping[str, str | Secret]
    ) -> tuple[int, Any]:
        self.issued += 1
        return 200, {"access_token": f"token-number-{self.issued}", "expires_in": 3600}


def prepared(
    auth: Any, secret: str, services: AuthServices | None = None, method: str = "POST"
) -> PreparedCall:
    injection = build_injection(
        "cred", "cred", auth, {"secret": Secret(secret)}, hosts=HOSTS, services=services
    )
    upstream = UpstreamRequest(method, "api.example.com", 443, "/v1/x", (), (), b"body", 5.0)
    return PreparedCall("agent", "cred/api", "cred", upstream, auth=injection.request_auth)


def header(request: UpstreamRequest, name: str) -> str:
    """The header's value as it is written to the wire."""
    return next(wire_text(v) for key, v in request.headers if key.lower() == name.lower())


def run(call: PreparedCall, opener: Opener) -> tuple[PreparedCall, httpx.Response]:
    return asyncio.run(send_authorized(opener, call, lambda: NOW))


def test_a_call_without_per_request_auth_is_sent_as_is() -> None:
    call = PreparedCall("a", "c/x", "c", prepared(HMAC, "hmac-key-123").upstream)
    opener = Opener(401)
    sent, response = run(call, opener)
    assert sent is call
    assert response.status_code == 401
    assert opener.sent == [call.upstream]


def test_a_signature_is_never_retried() -> None:
    opener = Opener(401, 200)
    sent, response = run(prepared(HMAC, "hmac-key-123"), opener)
    assert response.status_code == 401
    assert len(opener.sent) == 1
    assert len(header(sent.upstream, "X-Sig")) == 64


def test_oauth2_refreshes_once_and_retries_once() -> None:
    tokens = Tokens()
    services = AuthServices(post_form=tokens)
    call = prepared(OAUTH, OAUTH_SECRET, services, method="GET")
    opener = Opener(401, 401)
    sent, response = run(call, opener)
    assert response.status_code == 401
    assert [header(r, "Authorization") for r in opener.sent] == [
        "Bearer token-number-1",
        "Bearer token-number-2",
    ]
    assert sent.redactor.redact(b"token-number-2") == b"[REDACTED]"
    opener = Opener(200)
    assert run(call, opener)[1].status_code == 200
    assert tokens.issued == 2


@pytest.mark.parametrize(
    ("method", "challenge", "sent"),
    [
        ("POST", None, 1),
        ("PATCH", 'Bearer realm="api"', 1),
        ("POST", 'Bearer error="insufficient_scope"', 1),
        ("POST", 'Bearer realm="api", error="invalid_token", error_description="expired"', 2),
        ("PATCH", "bearer error=invalid_token", 2),
        ("PUT", None, 2),
        ("DELETE", None, 2),
    ],
)
def test_a_request_that_is_not_idempotent_is_resent_only_for_an_invalid_token(
    method: str, challenge: str | None, sent: int
) -> None:
    tokens = Tokens()
    call = prepared(OAUTH, OAUTH_SECRET, AuthServices(post_form=tokens), method=method)
    opener = Opener(401, 200, challenge=challenge)
    response = run(call, opener)[1]
    assert (len(opener.sent), response.status_code) == (sent, 401 if sent == 1 else 200)
    run(call, Opener(200))  # the refused token is forgotten either way
    assert tokens.issued == 2


def test_the_time_spent_signing_counts_against_the_request_timeout() -> None:
    class Slow(Tokens):
        async def __call__(self, *args: Any) -> tuple[int, Any]:
            await asyncio.sleep(0.3)
            return await super().__call__(*args)

    opener = Opener(200)
    run(prepared(OAUTH, OAUTH_SECRET, AuthServices(post_form=Slow())), opener)
    assert 4.0 < opener.sent[0].timeout_s < 4.75


def test_the_per_call_redactor_is_compiled_once_per_token_set() -> None:
    call = prepared(OAUTH, OAUTH_SECRET, AuthServices(post_form=Tokens()))
    assert isinstance(call.auth, OAuth2Auth)
    first = run(call, Opener(200))[0].redactor
    assert run(call, Opener(200))[0].redactor is first
    for number in range(20):
        call.auth.redactor((Secret(f"another-token-{number}"),))
    assert len(call.auth._redactors) == 8


def test_oauth2_without_the_upstream_client_is_unavailable() -> None:
    with pytest.raises(AuthUnavailable, match="needs the runtime's upstream client"):
        prepared(OAUTH, OAUTH_SECRET)


def test_oauth2_secrets_too_short_to_redact_are_refused() -> None:
    short = json.dumps({"client_id": "c", "client_secret": "short"})
    with pytest.raises(AuthUnavailable, match="need at least 8 characters"):
        prepared(OAUTH, short, AuthServices(post_form=Tokens()))


@pytest.mark.parametrize("strategy", [HMAC, OAUTH, {"aws_sig_v4": {}}, "mtls"])
def test_every_per_request_strategy_needs_the_secret_placeholder(strategy: Any) -> None:
    with pytest.raises(AuthUnavailable, match="needs the credential's 'secret' placeholder"):
        build_injection("cred", "cred", strategy, {"other": Secret("x" * 12)}, hosts=HOSTS)
