"""Every auth strategy builds for decisions with stand-ins: names right, no secret read."""

from __future__ import annotations

from typing import Any

import pytest
from support.bundles import HOST, policy

from aivault_ops.policy_check.decide import Ask, OfflinePolicy
from aivault_ops.policy_check.stand_in import STAND_IN, stand_in_secrets, template_names
from aivault_ops.policy_document import PolicyDocument

OAUTH = {"o_auth2": {"grant_type": "client_credentials", "token_endpoint": f"https://{HOST}/token"}}
STRATEGIES: list[tuple[str, Any, set[str], set[str]]] = [
    ("header", {"header": {"header_name": "X-Key", "value_template": "{{secret}}"}},
     {"x-key"}, set()),
    ("query", {"query": {"param_name": "api_key"}}, set(), {"api_key"}),
    ("basic", "basic", {"authorization"}, set()),
    ("multi_header", {"multi_header": [
        {"header_name": "X-Id", "value_template": "{{client_id}}"},
        {"header_name": "X-Secret", "value_template": "{{client_secret}}"},
    ]}, {"x-id", "x-secret"}, set()),
    ("multi_query",
     {"multi_query": [{"param_name": "k", "value_template": "{{ account | upper }}"}]},
     set(), {"k"}),
    ("path", {"path": {"prefix_template": "/bot{{secret}}"}}, set(), set()),
    ("hmac", {"hmac": {"algorithm": "sha256", "header_name": "X-Sig",
                       "value_template": "{{signature}}"}}, {"x-sig"}, set()),
    ("aws_sig_v4", {"aws_sig_v4": {"service": "s3", "region": "us-east-1"}},
     {"authorization", "x-amz-date", "x-amz-content-sha256"}, set()),
    ("o_auth2", OAUTH, {"authorization"}, set()),
    ("mtls", "mtls", set(), set()),
]  # fmt: skip


def offline(auth: Any) -> OfflinePolicy:
    return OfflinePolicy(PolicyDocument.from_json(policy(auth=auth)))


@pytest.mark.parametrize(
    ("auth", "headers", "query"), [s[1:] for s in STRATEGIES], ids=[s[0] for s in STRATEGIES]
)
def test_every_strategy_is_available_and_names_what_it_injects(
    auth: Any, headers: set[str], query: set[str]
) -> None:
    checked = offline(auth)
    assert checked.active.problems() == []
    decision = checked.decide(Ask("agent", "GET", "/v1/users/7", capability="my-api/users"))
    assert decision.allowed, decision
    assert headers <= set(decision.injected_headers)
    assert set(decision.injected_query) == query
    assert STAND_IN not in repr(decision.to_json())


def test_a_header_the_credential_injects_is_refused_like_at_run_time() -> None:
    checked = offline({"header": {"header_name": "X-Key", "value_template": "{{secret}}"}})
    ask = Ask("agent", "GET", "/v1/users", capability="my-api/users", headers=(("x-key", "1"),))
    assert checked.decide(ask).code == "E-HEADER-FORBIDDEN"


def test_an_injected_query_name_is_refused_from_the_caller() -> None:
    checked = offline({"query": {"param_name": "api_key"}})
    decision = checked.decide(Ask("agent", "GET", "/v1/users?api_key=x", credential="my-api"))
    assert (decision.verdict, decision.status) == ("deny", 403)


def test_an_unsupported_strategy_is_denied_as_the_runtime_does() -> None:
    decision = offline({"carrier_pigeon": {}}).decide(
        Ask("agent", "GET", "/v1/users", capability="my-api/users")
    )
    assert (decision.status, decision.code) == (501, "E-AUTH-UNSUPPORTED")


def test_a_broken_auth_config_makes_the_credential_unavailable_offline_too() -> None:
    broken = {"header": {"header_name": "bad name", "value_template": "{{secret}}"}}
    decision = offline(broken).decide(Ask("agent", "GET", "/v1/users", capability="my-api/users"))
    assert decision.code == "E-CREDENTIAL-UNAVAILABLE"


def test_stand_ins_carry_the_fields_templates_name() -> None:
    assert template_names({"a": ["x {{ client_id }}", "{{ b | upper }}"]}) == {
        "client_id",
        "b",
        "upper",
    }
    document = PolicyDocument.from_json(policy())
    assert set(stand_in_secrets(document)) == {("secrets/my-api.sops.yaml", "MY_KEY")}
