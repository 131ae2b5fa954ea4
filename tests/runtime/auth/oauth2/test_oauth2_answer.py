"""What is taken from a token endpoint's answer: RFC 6749 error codes, b64token access
tokens, rotated refresh tokens long enough to be redacted."""

from __future__ import annotations

from typing import Any

import pytest

from aivault_ops.runtime.auth.oauth2.answer import (
    ERROR_CODES,
    Unusable,
    access_token,
    error_code,
    rotated_refresh_token,
)
from aivault_ops.secret import Secret

CANARY = "cs-canary-client-secret-0123456789"


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_rfc_6749_error_codes_are_shown(code: str) -> None:
    assert error_code({"error": code, "error_description": CANARY}) == f" ({code})"


@pytest.mark.parametrize(
    "body",
    [
        {"error": CANARY},
        {"error": "invalid_grant " + CANARY},
        {"error": "Invalid_Grant"},
        {"error": ["invalid_grant"]},
        {"error": 7},
        {"error": ""},
    ],
    ids=["secret", "code-and-secret", "case", "list", "number", "empty"],
)
def test_any_other_error_value_becomes_a_neutral_word(body: dict[str, Any]) -> None:
    assert error_code(body) == " (unlisted error code)"


@pytest.mark.parametrize("body", [{}, None, "text", ["error"]], ids=["none", "null", "str", "list"])
def test_no_error_value_adds_nothing(body: Any) -> None:
    assert error_code(body) == ""


@pytest.mark.parametrize(
    "value",
    ["abcdefgh\x0bij", "abcdefgh\x7fij", "abcdefgh\x1b[2J", "abcdefgh ij", "abcdefgh\tij",
     "abcdefgh\r\nX: y", "abcdefgh\x00", "abcdefgh\u00e9", "==abcdefgh", "abcd=efgh"],
    ids=["vt", "del", "esc", "space", "tab", "crlf", "nul", "non-ascii", "lead-pad", "mid-pad"],
)  # fmt: skip
def test_access_tokens_outside_b64token_are_refused(value: str) -> None:
    with pytest.raises(Unusable) as caught:
        access_token({"access_token": value, "token_type": "Bearer"})
    assert str(caught.value) == "access_token"


@pytest.mark.parametrize(
    "value", ["abcdefgh", "a-b.c_d~e+f/g", "eyJhbGciOi.eyJzdWIi.c2ln==", "AAAAAAAA="]
)
def test_b64token_access_tokens_are_accepted(value: str) -> None:
    assert access_token({"access_token": value, "expires_in": 60}) == (Secret(value), 60.0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"access_token": "abcdefghij", "expires_in": -5}, "expires_in"),
        ({"access_token": "abcdefghij", "expires_in": "nan"}, "expires_in"),
        ({"access_token": "abcdefghij", "token_type": "N_A"}, "token_type"),
        ({"access_token": "short"}, "access_token"),
        ({"token_type": "bearer"}, "access_token"),
        ("text", "body"),
    ],
)
def test_unusable_answers_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(Unusable) as caught:
        access_token(body)
    assert str(caught.value) == field


@pytest.mark.parametrize("body", [{}, {"refresh_token": None}, {"refresh_token": ""}, "text"])
def test_a_refresh_token_absent_or_empty_is_not_rotated(body: Any) -> None:
    assert rotated_refresh_token(body) is None


@pytest.mark.parametrize("value", ["e", "1234567", 12345678, ["rt-rotated-0123"]])
def test_a_rotated_refresh_token_too_short_or_not_text_is_refused(value: Any) -> None:
    with pytest.raises(Unusable) as caught:
        rotated_refresh_token({"refresh_token": value})
    assert str(caught.value) == "refresh_token"


def test_a_rotated_refresh_token_of_eight_characters_is_kept() -> None:
    assert rotated_refresh_token({"refresh_token": "12345678"}) == Secret("12345678")
