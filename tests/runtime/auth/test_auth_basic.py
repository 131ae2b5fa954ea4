"""`basic` strategy: where username and password come from."""

from __future__ import annotations

import base64

import pytest

from aivault_ops.runtime.auth import build_injection
from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.secret import Secret


def _basic(username: str, password: str) -> tuple[tuple[str, Secret], ...]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return (("Authorization", Secret(f"Basic {token}")),)


def test_username_and_password_placeholders_twilio() -> None:
    injection = build_injection(
        "twilio",
        "twilio",
        "basic",
        {"username": Secret("AC0123456789abcdef"), "password": Secret("auth-token-0123456")},
    )
    assert injection.headers == _basic("AC0123456789abcdef", "auth-token-0123456")
    assert set(injection.secret_values) == {
        Secret("auth-token-0123456"),
        Secret("AC0123456789abcdef:auth-token-0123456"),
        Secret("AC0123456789abcdef"),
    }


def test_json_secret_with_username_and_password() -> None:
    secret = Secret('{"username": "svc", "password": "pw-0123456789"}')
    injection = build_injection("x", "x", "basic", {"secret": secret})
    assert injection.headers == _basic("svc", "pw-0123456789")
    assert set(injection.secret_values) == {Secret("pw-0123456789"), Secret("svc:pw-0123456789")}


def test_user_colon_pass_secret_is_split_at_the_first_colon() -> None:
    injection = build_injection("x", "x", "basic", {"secret": Secret("user:pass:word-123")})
    assert injection.headers == _basic("user", "pass:word-123")


def test_mailgun_password_only_uses_the_documented_username_api() -> None:
    injection = build_injection(
        "mailgun", "mailgun", "basic", {"password": Secret("key-0123456789abcdef")}
    )
    assert injection.headers == _basic("api", "key-0123456789abcdef")
    assert set(injection.secret_values) == {
        Secret("key-0123456789abcdef"),
        Secret("api:key-0123456789abcdef"),
    }


def test_password_only_for_other_providers_is_unavailable() -> None:
    with pytest.raises(AuthUnavailable) as caught:
        build_injection("x", "custom", "basic", {"password": Secret("key-0123456789abcdef")})
    assert caught.value.message == (
        "basic auth needs variables 'username' and 'password', a 'user:pass' secret,"
        " or a JSON secret with username and password fields"
    )


@pytest.mark.parametrize(
    ("placeholders", "message"),
    [
        (
            {"secret": Secret("user:short")},
            "secret variable 'password' is shorter than 8 characters",
        ),
        ({"secret": Secret(":password-123")}, "basic auth username is empty or contains ':'"),
        (
            {"username": Secret("a:b"), "password": Secret("password-123")},
            "basic auth username is empty or contains ':'",
        ),
    ],
)
def test_unusable_basic_secrets_are_refused(placeholders: dict[str, Secret], message: str) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        build_injection("x", "x", "basic", placeholders)
    assert caught.value.message.startswith(message)
