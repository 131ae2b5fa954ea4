"""HMAC signer: signatures recomputed independently with `hmac.new`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.runtime.auth.signing.hmac_signer import HmacSigner
from aivault_ops.secret import Secret

KEY = "whsec-0123456789abcdef"
BODY = '{"amount": 100, "currency": "eur", "note": "café"}'.encode()
NOW = 1_700_000_000.75


def signer(**overrides: Any) -> HmacSigner:
    config = {"algorithm": "sha256", "header_name": "X-Signature"}
    config["value_template"] = "{{signature}}"
    return HmacSigner.from_config({**config, **overrides}, Secret(KEY))


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_body_signature_in_hex(algorithm: str) -> None:
    name, value = signer(algorithm=algorithm).sign("POST", "/v1/charges", BODY, NOW)
    assert name == "X-Signature"
    assert value == hmac.new(KEY.encode(), BODY, getattr(hashlib, algorithm)).hexdigest()


def test_stripe_like_template_with_timestamp() -> None:
    _, value = signer(value_template="t={{timestamp}},v1={{signature}}").sign(
        "POST", "/hook", BODY, NOW
    )
    expected = hmac.new(KEY.encode(), BODY, hashlib.sha256).hexdigest()
    assert value == f"t=1700000000,v1={expected}"


def test_base64_signature() -> None:
    _, value = signer(algorithm="sha512", value_template="HMAC {{signature_b64}}").sign(
        "PUT", "/x", b"", NOW
    )
    mac = hmac.new(KEY.encode(), b"", hashlib.sha512).digest()
    assert value == "HMAC " + base64.b64encode(mac).decode()


def test_canonical_message() -> None:
    _, value = signer(message="canonical", value_template="{{timestamp}}:{{signature}}").sign(
        "post", "/v1/a%20b", BODY, NOW
    )
    message = "1700000000\nPOST\n/v1/a%20b\n" + hashlib.sha256(BODY).hexdigest()
    expected = hmac.new(KEY.encode(), message.encode(), hashlib.sha256).hexdigest()
    assert value == f"1700000000:{expected}"


def test_canonical_signature_changes_with_method_path_body_and_time() -> None:
    canonical = signer(message="canonical")
    base = canonical.sign("POST", "/a", b"x", NOW)
    assert canonical.sign("PUT", "/a", b"x", NOW) != base
    assert canonical.sign("POST", "/b", b"x", NOW) != base
    assert canonical.sign("POST", "/a", b"y", NOW) != base
    assert canonical.sign("POST", "/a", b"x", NOW + 1) != base


# A known vector: the exact message bytes of `request` mode, and the HMAC-SHA256 of
# them under KEY, written out here (computed once with Python's hmac module alone).
REQUEST_WIRE = (
    b"1700000000\nPOST\n/v1/charges/a%20b\nexpand=customer&limit=10\n"
    b"4fd532955c4ec88ea75f6a44e9bc3d28e98d92313cab3dbae5ee8c693c52f0ab"
)
REQUEST_MAC = "7447957d8cabdcd2de6b3030174b544d51c83cdbf738dd0e0342132c126ae8eb"


def test_request_message_wire_format_matches_a_known_vector() -> None:
    assert hashlib.sha256(BODY).hexdigest() == REQUEST_WIRE.rsplit(b"\n", 1)[1].decode()
    assert hmac.new(KEY.encode(), REQUEST_WIRE, hashlib.sha256).hexdigest() == REQUEST_MAC
    request = signer(message="request", value_template="t={{timestamp}},v1={{signature}}")
    path, query = "/v1/charges/a%20b", "expand=customer&limit=10"
    assert request.message("post", path, BODY, 1_700_000_000, query=query) == REQUEST_WIRE
    _, value = request.sign("post", path, BODY, NOW, query=query)
    assert value == f"t=1700000000,v1={REQUEST_MAC}"


def test_request_message_without_a_query_keeps_an_empty_line() -> None:
    message = signer(message="request").message("GET", "/v1/x", b"", 5)
    assert message == b"5\nGET\n/v1/x\n\n" + hashlib.sha256(b"").hexdigest().encode()


def test_request_signature_changes_with_every_part_of_the_request() -> None:
    request = signer(message="request")
    base = request.sign("POST", "/a", b"x", NOW, query="q=1")
    assert request.sign("PUT", "/a", b"x", NOW, query="q=1") != base
    assert request.sign("POST", "/b", b"x", NOW, query="q=1") != base
    assert request.sign("POST", "/a", b"x", NOW, query="q=2") != base
    assert request.sign("POST", "/a", b"x", NOW, query="") != base
    assert request.sign("POST", "/a", b"y", NOW, query="q=1") != base
    assert request.sign("POST", "/a", b"x", NOW + 1, query="q=1") != base


def test_without_message_a_policy_keeps_meaning_body() -> None:
    assert signer().message_kind == "body"
    assert signer().sign("POST", "/a", BODY, NOW) == signer().sign("GET", "/b", BODY, 0)


def test_the_key_is_never_in_the_header_or_repr() -> None:
    hmac_signer = signer(value_template="{{signature}}/{{signature_b64}}")
    _, value = hmac_signer.sign("POST", "/", KEY.encode(), NOW)
    assert KEY not in value
    assert KEY not in repr(hmac_signer)
    assert hmac_signer.added_header_names() == frozenset({"x-signature"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algorithm": "md5"}, "auth.hmac.algorithm must be sha256 or sha512, not 'md5'"),
        ({"algorithm": "SHA256"}, "auth.hmac.algorithm must be sha256 or sha512, not 'SHA256'"),
        (
            {"message": "headers"},
            "auth.hmac.message must be request, canonical or body, not 'headers'",
        ),
        ({"header_name": "X Sig"}, "auth.hmac.header_name 'X Sig' is not a valid header name"),
        (
            {"value_template": "{{secret}}"},
            "auth.hmac.value_template may use only signature, signature_b64 and timestamp,"
            " not secret",
        ),
        (
            {"value_template": "t={{timestamp}}"},
            "auth.hmac.value_template must use {{signature}} or {{signature_b64}}",
        ),
        (
            {"value_template": "{{signature"},
            "auth.hmac.value_template is not a valid template (line 1)",
        ),
        (
            {"value_template": "{{signature.nope}}"},
            "auth.hmac.value_template failed to render (UndefinedError)",
        ),
        (
            {"value_template": "{{signature}}\r\nX-Evil: 1"},
            "header 'X-Signature' contains CR, LF or NUL after rendering",
        ),
        ({"value_template": ""}, "auth.hmac.value_template must be a non-empty string"),
    ],
)
def test_bad_config_is_refused_at_build(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        signer(**overrides)
    assert caught.value.message == message


def test_short_key_is_refused() -> None:
    config = {"algorithm": "sha256", "header_name": "X-Sig", "value_template": "{{signature}}"}
    with pytest.raises(AuthUnavailable, match="shorter than 8 characters"):
        HmacSigner.from_config(config, Secret("short"))
