"""Decisions on the repo's own vault.d, through the runtime's authorize and prepare."""

from __future__ import annotations

from pathlib import Path

import pytest

from aivault_ops.compiled_project import compile_project
from aivault_ops.policy_check.decide import (
    LONGEST_PREFIX,
    NAMED,
    Ask,
    OfflinePolicy,
    envelope_bytes,
    split_path,
)

VAULT = Path(__file__).resolve().parents[2] / "vault.d"


@pytest.fixture(scope="module")
def checked() -> OfflinePolicy:
    return OfflinePolicy(compile_project(VAULT, environment=None).document)


def test_an_allowed_envelope_names_the_rule(checked: OfflinePolicy) -> None:
    decision = checked.decide(
        Ask("research-agent", "GET", "/v1/users/7?x=1", capability="example-api/users")
    )
    assert decision.to_json() == {
        "decision": "allow",
        "status": 200,
        "capability": "example-api/users",
        "capabilityPickedBy": NAMED,
        "prefix": "/v1/users",
        "credential": "example-api",
        "host": "api.example.com",
        "injectedHeaderNames": ["authorization"],
        "injectedQueryNames": [],
        "injectsPathPrefix": False,
    }


@pytest.mark.parametrize(
    ("ask", "status", "code"),
    [
        (Ask("research-agent", "DELETE", "/v1/users/7", capability="example-api/users"), 405,
         "E-METHOD-NOT-ALLOWED"),
        (Ask("research-agent", "GET", "/v1/usersX", capability="example-api/users"), 403,
         "E-PATH-NOT-ALLOWED"),
        (Ask("research-agent", "GET", "/v1/models", capability="openai/models"), 403,
         "E-FORBIDDEN"),
        (Ask("research-agent", "GET", "/v1/x", capability="example-api/nope"), 404,
         "E-CAPABILITY-UNKNOWN"),
        (Ask("nobody", "GET", "/v1/users", capability="example-api/users"), 401,
         "E-UNAUTHENTICATED"),
        (Ask("research-agent", "GET", "/v2/x", credential="example-api"), 404, "E-NO-CAPABILITY"),
        (Ask("research-agent", "GET", "/v1/users", credential="nope"), 404,
         "E-CREDENTIAL-UNKNOWN"),
        (Ask("research-agent", "GET", "/v1/users/%2e%2e/health", credential="example-api"), 400,
         None),
    ],
    ids=["method", "prefix", "grant", "unknown-capability", "unknown-consumer", "no-capability",
         "unknown-credential", "traversal"],
)  # fmt: skip
def test_denials_carry_the_runtime_status_and_code(
    checked: OfflinePolicy, ask: Ask, status: int, code: str | None
) -> None:
    decision = checked.decide(ask)
    assert (decision.verdict, decision.status) == ("deny", status)
    assert decision.code == code or (code is None and decision.code)


def test_passthrough_picks_the_longest_prefix_and_says_so(checked: OfflinePolicy) -> None:
    decision = checked.decide(Ask("research-agent", "GET", "/v1/health", credential="example-api"))
    assert (decision.capability, decision.picked) == ("example-api/health", LONGEST_PREFIX)
    assert decision.summary() == "allow"


def test_the_envelope_is_what_a_caller_sends() -> None:
    ask = Ask("c", "GET", "/v1/x?a=1&a=2&b=", capability="p/c", headers=(("X-T", "1"),))
    assert split_path(ask.path) == ("/v1/x", (("a", "1"), ("a", "2"), ("b", "")))
    assert envelope_bytes(ask) == (
        b'{"capability": "p/c", "request": {"method": "GET", "path": "/v1/x",'
        b' "query": {"a": ["1", "2"], "b": [""]}, "headers": {"X-T": "1"}}}'
    )


def test_token_hash_finds_its_consumer(checked: OfflinePolicy) -> None:
    digest = checked.document.consumers["research-agent"].token_sha256
    assert checked.consumer_for_digest(digest.upper()) == "research-agent"
    assert checked.consumer_for_digest("0" * 64) is None
