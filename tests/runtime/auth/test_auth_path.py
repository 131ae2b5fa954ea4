"""`path` strategy: a templated prefix before the upstream path."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.auth import build_injection
from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.secret import Secret

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"


def test_path_prefix_is_rendered_and_percent_encoded() -> None:
    injection = build_injection(
        "telegram",
        "telegram",
        {"path": {"prefix_template": "/bot{{secret}}"}},
        {"secret": Secret(TOKEN)},
    )
    assert injection.path_prefix == Secret(f"/bot{TOKEN}")
    assert injection.headers == () and injection.query == ()
    assert injection.secret_values == (Secret(TOKEN),)


def test_characters_outside_the_path_alphabet_are_encoded() -> None:
    injection = build_injection(
        "x", "x", {"path": {"prefix_template": "/k/{{secret}}"}}, {"secret": Secret("a b?c#d%e/f")}
    )
    assert injection.path_prefix == Secret("/k/a%20b%3Fc%23d%25e/f")


@pytest.mark.parametrize(
    "secret", ["../../admin-x", "x/../../admin", "./abcdefgh", "abcdefgh/", "abcdefgh//x"]
)
def test_secret_cannot_move_the_request_elsewhere(secret: str) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        build_injection(
            "x", "x", {"path": {"prefix_template": "/{{secret}}"}}, {"secret": Secret(secret)}
        )
    assert caught.value.message == (
        "auth.path prefix must start with '/' and have no empty, '.' or '..' segments"
    )


def test_prefix_must_start_with_a_slash() -> None:
    with pytest.raises(AuthUnavailable):
        build_injection(
            "x", "x", {"path": {"prefix_template": "bot{{secret}}"}}, {"secret": Secret(TOKEN)}
        )
