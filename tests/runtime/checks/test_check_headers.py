"""Caller request headers: auth-class refused, malformed refused, hop-by-hop dropped."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.checks.headers import HeaderPolicy
from aivault_ops.runtime.model import Refusal

POLICY = HeaderPolicy(["X-Goog-Api-Key"])

FORBIDDEN = [
    "Authorization",
    "authorization",
    "AUTHORIZATION",
    "Proxy-Authorization",
    "Cookie",
    "cookie",
    "X-Api-Key",
    "x-api-key",
    "X-Aivault-Token",
    "x-goog-api-key",
    "X-GOOG-API-KEY",
]

INVALID = [
    ("X-Test", "a\r\nX-Injected: 1"),
    ("X-Test", "a\nb"),
    ("X-Test", "a\rb"),
    ("X-Test", "a\x00b"),
    ("X-Test", "a\x1bb"),
    ("X-Test", "a\x7fb"),
    ("X-Te\r\nst", "a"),
    ("X-Test:", "a"),
    ("X Test", "a"),
    ("", "a"),
    ("X-Tést", "a"),
]

DROPPED = [
    "Connection",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Proxy-Connection",
    "Host",
    "Content-Length",
    "Accept-Encoding",
    "Expect",
]


@pytest.mark.parametrize("name", FORBIDDEN)
@pytest.mark.parametrize("passthrough", [True, False])
def test_auth_class_headers_are_refused(name: str, passthrough: bool) -> None:
    with pytest.raises(Refusal) as caught:
        POLICY.sanitize(((name, "Bearer attacker"),), passthrough=passthrough)
    assert (caught.value.status, caught.value.code) == (403, "E-HEADER-FORBIDDEN")
    assert "attacker" not in caught.value.message


def test_forbidden_header_messages_say_what_to_do() -> None:
    with pytest.raises(Refusal) as passthrough:
        POLICY.sanitize((("Cookie", "a=b"),), passthrough=True)
    assert passthrough.value.message == (
        "header 'Cookie' is an auth-class header the runtime sets itself; send the consumer"
        " token once, as 'Authorization: Bearer' or 'X-Aivault-Token'"
    )
    with pytest.raises(Refusal) as envelope:
        POLICY.sanitize((("Authorization", "Bearer x"),), passthrough=False)
    assert envelope.value.message == (
        "header 'Authorization' is an auth-class header the runtime sets itself;"
        " the envelope's request.headers may not carry credentials"
    )


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_header_injection_and_bad_names_are_refused(name: str, value: str) -> None:
    with pytest.raises(Refusal) as caught:
        POLICY.sanitize(((name, value),), passthrough=True)
    assert (caught.value.status, caught.value.code) == (400, "E-HEADER-INVALID")


@pytest.mark.parametrize("name", DROPPED)
def test_hop_by_hop_and_framing_headers_are_dropped(name: str) -> None:
    kept = POLICY.sanitize(((name, "x"), ("Accept", "application/json")), passthrough=True)
    assert kept == [("Accept", "application/json")]


def test_headers_named_in_connection_are_dropped() -> None:
    headers = (("Connection", "keep-alive, X-Secret-Hop"), ("x-secret-hop", "1"), ("X-Keep", "2"))
    assert POLICY.sanitize(headers, passthrough=True) == [("X-Keep", "2")]


def test_ordinary_headers_pass_unchanged_and_in_order() -> None:
    headers = (("Accept", "*/*"), ("Content-Type", "application/json"), ("X-Trace", "a\tb"))
    assert POLICY.sanitize(headers, passthrough=False) == list(headers)


def test_a_credential_without_injected_headers_still_refuses_the_fixed_set() -> None:
    with pytest.raises(Refusal):
        HeaderPolicy().sanitize((("X-API-KEY", "k"),), passthrough=True)
    assert HeaderPolicy().sanitize((("X-Goog-Api-Key", "k"),), passthrough=True) == [
        ("X-Goog-Api-Key", "k")
    ]
