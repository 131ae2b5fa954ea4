"""`query` and `multi_query` strategies."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.auth import build_injection
from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.secret import Secret

KEY = "AIzaSy-0123456789abcdef"


def test_query_defaults_to_the_secret_placeholder() -> None:
    injection = build_injection(
        "gemini", "gemini", {"query": {"param_name": "key"}}, {"secret": Secret(KEY)}
    )
    assert injection.query == (("key", Secret(KEY)),)
    assert injection.headers == ()
    assert injection.query_names() == frozenset({"key"})
    assert injection.secret_values == (Secret(KEY),)


def test_multi_query_injects_every_parameter() -> None:
    injection = build_injection(
        "trello",
        "trello",
        {
            "multi_query": [
                {"param_name": "key", "value_template": "{{key}}"},
                {"param_name": "Token", "value_template": "{{token}}"},
            ]
        },
        {"key": Secret("trello-key-0123"), "token": Secret("trello-token-4567")},
    )
    assert injection.query == (
        ("key", Secret("trello-key-0123")),
        ("Token", Secret("trello-token-4567")),
    )
    assert injection.query_names() == frozenset({"key", "token"})
    assert set(injection.secret_values) == {Secret("trello-key-0123"), Secret("trello-token-4567")}


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"query": {}}, "auth.query.param_name must be a non-empty string"),
        (
            {"query": {"param_name": "key", "value_template": "{{nope}}"}},
            "query parameter 'key' uses undefined variable(s) nope",
        ),
        (
            {
                "multi_query": [
                    {"param_name": "key", "value_template": "{{secret}}"},
                    {"param_name": "KEY", "value_template": "{{secret}}"},
                ]
            },
            "auth.multi_query names the same parameter twice",
        ),
        ({"multi_query": {}}, "auth.multi_query must be a non-empty list"),
    ],
)
def test_bad_query_config_makes_the_credential_unavailable(auth: object, message: str) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        build_injection("x", "x", auth, {"secret": Secret(KEY)})
    assert caught.value.message == message
