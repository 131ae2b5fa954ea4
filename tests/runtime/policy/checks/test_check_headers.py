"""Caller request headers: auth-class, routing and malformed refused, hop-by-hop dropped."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.checks.headers import HeaderPolicy
from aivault_ops.runtime.policy.checks.limits import (
    MAX_HEADER_COUNT,
    MAX_HEADER_NAME_LENGTH,
    MAX_HEADER_TOTAL_LENGTH,
    MAX_HEADER_VALUE_LENGTH,
)

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


ACME = HeaderPolicy(["X-Acme-Key", "api_key"])


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("X_Acme_Key", "x-acme-key"),
        ("X.Acme.Key", "x-acme-key"),
        ("XAcmeKey", "x-acme-key"),
        ("X-Acme%2DKey", "x-acme-key"),
        ("API.KEY", "api-key"),
        ("Api_Key", "api-key"),
        ("Proxy_Authorization", "proxy-authorization"),
        ("X_Aivault_Token", "x-aivault-token"),
    ],
)
def test_near_variants_of_injected_and_auth_class_names_are_refused(name: str, shown: str) -> None:
    with pytest.raises(Refusal) as caught:
        ACME.sanitize(((name, "attacker"),), passthrough=False)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        403,
        "E-HEADER-FORBIDDEN",
        f"header {name!r} reads as {shown!r}, an auth-class header the runtime sets itself",
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("X-HTTP-Method-Override", "x-http-method-override"),
        ("X-HTTP-Method", "x-http-method"),
        ("X-Method-Override", "x-method-override"),
        ("X_HTTP_Method_Override", "x-http-method-override"),
        ("X-Original-URL", "x-original-url"),
        ("X-Rewrite-URL", "x-rewrite-url"),
        ("X-Forwarded-Host", "x-forwarded-host"),
        ("X-Forwarded-For", "x-forwarded-for"),
        ("X-Forwarded-Anything", "x-forwarded-*"),
        ("X-Original-Whatever", "x-original-*"),
        ("X-Envoy-Retry-On", "x-envoy-*"),
        ("Forwarded", "forwarded"),
        ("X-Host", "x-host"),
        ("X-Real-IP", "x-real-ip"),
        ("True-Client-IP", "true-client-ip"),
        ("Via", "via"),
    ],
)
@pytest.mark.parametrize("passthrough", [True, False])
def test_method_override_and_routing_headers_are_refused(
    name: str, shown: str, passthrough: bool
) -> None:
    with pytest.raises(Refusal) as caught:
        HeaderPolicy().sanitize(((name, "/admin"),), passthrough=passthrough)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        403,
        "E-HEADER-FORBIDDEN",
        f"header {name!r} is a method-override or routing header ({shown!r}); it could make the"
        " upstream apply another method, path or host than the policy checked",
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [("Content_Length", "content-length"), ("Transfer_Encoding", "transfer-encoding"),
     ("Host_", "host"), ("Connection.", "connection")],
)  # fmt: skip
def test_other_spellings_of_dropped_headers_are_refused(name: str, shown: str) -> None:
    with pytest.raises(Refusal) as caught:
        HeaderPolicy().sanitize(((name, "0"),), passthrough=False)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        403,
        "E-HEADER-FORBIDDEN",
        f"header {name!r} reads as {shown!r}, a connection or framing header the runtime sets"
        " itself",
    )


@pytest.mark.parametrize(
    "value", ["\ud800", "a\udfffb", "\udc80", "a\x85b", "a\u2028b", "a\u2029b", "a\x9bb"]
)
def test_values_that_cannot_be_sent_are_refused(value: str) -> None:
    with pytest.raises(Refusal) as caught:
        POLICY.sanitize((("X-Test", value),), passthrough=False)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400,
        "E-HEADER-INVALID",
        "header 'X-Test' has an invalid name, or a value with a control character"
        " (CR, LF, NUL …) or a character that cannot be sent (a lone surrogate)",
    )


def test_non_ascii_text_and_obs_text_are_sent_as_utf8() -> None:
    headers = (("X-Title", "Café ☕ 😀"), ("X-Latin", "\xa0\xff"))
    assert POLICY.sanitize(headers, passthrough=False) == list(headers)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            tuple((f"X-H{i}", "1") for i in range(MAX_HEADER_COUNT + 1)),
            f"the number of request headers exceeds the runtime's limit of {MAX_HEADER_COUNT}",
        ),
        (
            (("X-" + "n" * MAX_HEADER_NAME_LENGTH, "1"),),
            f"header name {'X-' + 'n' * 118 + '…'!r} exceeds the runtime's limit of"
            f" {MAX_HEADER_NAME_LENGTH} characters",
        ),
        (
            (("X-Big", "v" * (MAX_HEADER_VALUE_LENGTH + 1)),),
            f"the value of header 'X-Big' exceeds the runtime's limit of"
            f" {MAX_HEADER_VALUE_LENGTH} characters",
        ),
        (
            tuple((f"X-H{i}", "v" * 8000) for i in range(MAX_HEADER_TOTAL_LENGTH // 8000 + 1)),
            f"the request headers exceeds the runtime's limit of {MAX_HEADER_TOTAL_LENGTH}"
            " characters",
        ),
    ],
)
def test_header_limits(headers: tuple[tuple[str, str], ...], message: str) -> None:
    with pytest.raises(Refusal) as caught:
        POLICY.sanitize(headers, passthrough=True)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400,
        "E-HEADER-INVALID",
        message,
    )


def test_headers_at_the_limits_pass() -> None:
    headers = tuple((f"X-H{i}", "1") for i in range(MAX_HEADER_COUNT))
    assert POLICY.sanitize(headers, passthrough=True) == list(headers)
    long = (("X-" + "n" * (MAX_HEADER_NAME_LENGTH - 2), "v" * MAX_HEADER_VALUE_LENGTH),)
    assert POLICY.sanitize(long, passthrough=True) == list(long)


def test_look_alike_but_unrelated_names_pass() -> None:
    headers = (("X-Acme-Keys", "1"), ("X-Request-Id", "2"), ("Accept-Language", "fr"))
    assert ACME.sanitize(headers, passthrough=True) == list(headers)
