"""`mtls` secrets: a JSON object with both PEM strings, loaded without a file."""

from __future__ import annotations

import json
import os
import ssl

import pytest
import trustme

from aivault_ops.runtime.auth import build_injection
from aivault_ops.runtime.auth.base import AuthUnavailable, Injection
from aivault_ops.runtime.auth.mtls import load_client_pair
from aivault_ops.secret import Secret

LEAF = trustme.CA().issue_cert("client.example", common_name="client")
CERT = LEAF.cert_chain_pems[0].bytes().decode()
KEY = LEAF.private_key_pem.bytes().decode()


def injection(text: str, credential: str = "bank") -> Injection:
    return build_injection(credential, credential, "mtls", {"secret": Secret(text)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "mtls secret must be a JSON object"),
        ("[1]", "mtls secret must be a JSON object"),
        (json.dumps({"certificate": "x", "private_key": KEY}), "PEM string 'certificate'"),
        (json.dumps({"certificate": CERT, "private_key": 7}), "PEM string 'private_key'"),
    ],
    ids=["not-json", "array", "bad-certificate", "bad-private-key"],  # stable under xdist
)
def test_malformed_secrets_are_refused(text: str, message: str) -> None:
    with pytest.raises(AuthUnavailable, match=message):
        injection(text)


def test_each_credential_gets_its_own_context_and_pool_key() -> None:
    pair = json.dumps({"certificate": CERT, "private_key": KEY})
    first, second = injection(pair, "bank"), injection(pair, "other")
    assert first.client_tls is not None
    assert second.client_tls is not None
    assert first.client_tls.context is not second.client_tls.context
    assert first.client_tls.key != second.client_tls.key
    assert first.secret_values == (Secret(KEY),)
    assert repr(first.client_tls) == "ClientTls([secret])"


def test_without_memfd_the_key_is_not_written_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "memfd_create")
    with pytest.raises(AuthUnavailable, match="needs memfd_create"):
        load_client_pair(ssl.create_default_context(), CERT, KEY)
