"""`header` and `multi_header` strategies."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.auth import build_injection
from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.secret import Secret

KEY = "sk-live-0123456789abcdef"


def test_header_renders_the_template_once() -> None:
    injection = build_injection(
        "openai",
        "openai",
        {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}},
        {"secret": Secret(KEY)},
    )
    assert injection.headers == (("authorization", Secret(f"Bearer {KEY}")),)
    assert injection.query == ()
    assert injection.path_prefix == ""
    assert injection.secret_values == (Secret(KEY),)
    assert injection.header_names() == frozenset({"authorization"})
    assert KEY not in repr(injection)


def test_multi_header_injects_every_header() -> None:
    injection = build_injection(
        "plaid",
        "plaid",
        {
            "multi_header": [
                {"header_name": "PLAID-CLIENT-ID", "value_template": "{{client_id}}"},
                {"header_name": "PLAID-SECRET", "value_template": "{{secret}}"},
            ]
        },
        {"client_id": Secret("client-0123456789"), "secret": Secret(KEY)},
    )
    assert injection.headers == (
        ("PLAID-CLIENT-ID", Secret("client-0123456789")),
        ("PLAID-SECRET", Secret(KEY)),
    )
    assert set(injection.secret_values) == {Secret("client-0123456789"), Secret(KEY)}
    assert injection.header_names() == frozenset({"plaid-client-id", "plaid-secret"})


def test_json_secret_fields_are_template_variables() -> None:
    secret = Secret('{"access_token": "tok-0123456789", "expires": 3600}')
    injection = build_injection(
        "x",
        "x",
        {"header": {"header_name": "Authorization", "value_template": "Bearer {{access_token}}"}},
        {"secret": secret},
    )
    assert injection.headers == (("Authorization", Secret("Bearer tok-0123456789")),)
    assert injection.secret_values == (Secret("tok-0123456789"),)


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (
            {"header": {"header_name": "x-key", "value_template": "{{missing}}"}},
            "header 'x-key' uses undefined variable(s) missing",
        ),
        (
            {"header": {"header_name": "x key", "value_template": "{{secret}}"}},
            "auth.header.header_name 'x key' is not a valid header name",
        ),
        (
            {"header": {"header_name": "x-key"}},
            "auth.header.value_template must be a non-empty string",
        ),
        ({"header": "x"}, "auth.header must be an object"),
        (
            {"header": {"header_name": "x-key", "value_template": "{{ secret.__class__ }}"}},
            "header 'x-key' failed to render (SecurityError)",
        ),
        (
            {"header": {"header_name": "x-key", "value_template": "{% for %}"}},
            "header 'x-key' is not a valid template (line 1)",
        ),
        (
            {"header": {"header_name": "x-key", "value_template": "{{secret}}\n"}},
            "header 'x-key' contains CR, LF or NUL after rendering",
        ),
        (
            {
                "multi_header": [
                    {"header_name": "X-A", "value_template": "{{secret}}"},
                    {"header_name": "x-a", "value_template": "{{secret}}"},
                ]
            },
            "auth.multi_header names the same header twice",
        ),
        ({"multi_header": []}, "auth.multi_header must be a non-empty list"),
    ],
)
def test_bad_header_config_makes_the_credential_unavailable(auth: object, message: str) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        build_injection("x", "x", auth, {"secret": Secret(KEY)})
    assert caught.value.message == message
    assert (caught.value.status, caught.value.code) == (503, "E-CREDENTIAL-UNAVAILABLE")


@pytest.mark.parametrize("value", ["abc\r\nX-Injected: 1", "abc\ndef-ghijkl", "abc\x00defghijk"])
def test_secret_with_line_breaks_is_refused_at_build(value: str) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        build_injection(
            "x",
            "x",
            {"header": {"header_name": "x-key", "value_template": "{{secret}}"}},
            {"secret": Secret(value)},
        )
    assert caught.value.message == "header 'x-key' contains CR, LF or NUL after rendering"
    assert value not in caught.value.message


def test_short_secret_is_refused_because_it_cannot_be_redacted() -> None:
    with pytest.raises(AuthUnavailable) as caught:
        build_injection(
            "x",
            "x",
            {"header": {"header_name": "x-key", "value_template": "{{secret}}"}},
            {"secret": Secret("1234567")},
        )
    assert caught.value.message == (
        "secret variable 'secret' is shorter than 8 characters and cannot be redacted"
        " reliably from responses"
    )


def test_template_sandbox_blocks_attribute_escapes() -> None:
    with pytest.raises(AuthUnavailable):
        build_injection(
            "x",
            "x",
            {
                "header": {
                    "header_name": "x-key",
                    "value_template": "{{ secret.__class__.__mro__[1].__subclasses__() }}",
                }
            },
            {"secret": Secret(KEY)},
        )
