"""Every strategy's injected names are refused in their other spellings (headers and query)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aivault_ops.policy_document import PolicyCredential, SecretLocation
from aivault_ops.runtime.auth.credential import CredentialRuntime, build_credential
from aivault_ops.runtime.model import Refusal
from aivault_ops.secret import Secret

SECRET = "secret-value-0123456789"
AWS = json.dumps({"access_key_id": "AKIDEXAMPLE", "secret_access_key": SECRET})
HMAC = {"algorithm": "sha256", "header_name": "X-Sig", "value_template": "{{signature}}"}
PLAID = [
    {"header_name": "PLAID-CLIENT-ID", "value_template": "{{secret}}"},
    {"header_name": "PLAID-SECRET", "value_template": "{{secret}}"},
]
TRELLO = [{"param_name": "key"}, {"param_name": "token", "value_template": "{{secret}}"}]


def runtime(auth: Any, secret: str = SECRET) -> CredentialRuntime:
    hosts = ("api.example.com",)
    spec = PolicyCredential("p", hosts, auth, {"secret": SecretLocation("f", "N")})
    built = build_credential("cred", spec, hosts, {("f", "N"): Secret(secret)})
    assert built.injection is not None, built.unavailable
    return built


CASES = [
    ({"header": {"header_name": "X-Acme-Key", "value_template": "{{secret}}"}}, SECRET,
     ["X_Acme_Key", "x.acme.key"], ["x_acme_key"]),
    ({"query": {"param_name": "api_key"}}, SECRET, ["Api_Key"], ["api_key[]", "api.key"]),
    ({"multi_header": PLAID}, SECRET, ["Plaid_Secret", "PLAID.CLIENT.ID"], ["plaid_secret"]),
    ({"multi_query": TRELLO}, SECRET, ["Token_"], ["token[]", "KEY%00"]),
    ({"basic": {}}, "user:" + SECRET, ["Authorization_"], ["authorization"]),
    ({"aws_sig_v4": {"service": "s3", "region": "us-east-1"}}, AWS,
     ["X_Amz_Date", "X-Amz-Content_Sha256", "x.amz.security.token"], ["x_amz_date"]),
    ({"hmac": HMAC}, SECRET, ["X_Sig"], ["x.sig"]),
]  # fmt: skip


@pytest.mark.parametrize(("auth", "secret", "headers", "query"), CASES, ids=lambda v: str(v)[:24])
def test_variants_of_injected_names_are_refused(
    auth: Any, secret: str, headers: list[str], query: list[str]
) -> None:
    built = runtime(auth, secret)
    for name in headers:
        with pytest.raises(Refusal) as caught:
            built.header_policy.sanitize(((name, "attacker"),), passthrough=True)
        assert caught.value.code == "E-HEADER-FORBIDDEN", name
    for name in query:
        with pytest.raises(Refusal) as caught:
            built.query_policy.check(((name, "attacker"),))
        assert caught.value.code == "E-QUERY-FORBIDDEN", name
