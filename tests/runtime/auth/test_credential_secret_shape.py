"""`build_credential`: a secret that is not text fails its credential alone, never the load."""

from __future__ import annotations

import pytest

from aivault_ops.policy_document import PolicyCredential, SecretLocation
from aivault_ops.runtime.auth.credential import build_credential
from aivault_ops.secret import Secret

WHERE = SecretLocation("secrets/a.sops", "A")
HMAC = {"hmac": {"algorithm": "sha256", "header_name": "x-sig", "value_template": "{{signature}}"}}
AUTHS = [
    {"aws_sig_v4": {"service": "s3", "region": "eu-west-1"}},
    "mtls",
    HMAC,
    {"header": {"header_name": "x-key", "value_template": "{{secret}}"}},
]


@pytest.mark.parametrize("auth", AUTHS, ids=["aws", "mtls", "hmac", "header"])
def test_a_binary_secret_makes_the_credential_unavailable(auth: object) -> None:
    spec = PolicyCredential("p", ("a.example.com",), auth, {"secret": WHERE})  # type: ignore[arg-type]
    secret = Secret(b"\xff\xfe binary-canary \x00")
    built = build_credential("c", spec, ("a.example.com",), {(WHERE.file, WHERE.name): secret})
    assert built.injection is None and built.unavailable is not None
    assert (built.unavailable.status, built.unavailable.code) == (
        503,
        "E-CREDENTIAL-SECRET-INVALID",
    )
    assert built.unavailable.message == "a secret is not UTF-8 text"
