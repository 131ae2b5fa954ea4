"""Caller query parameters named like injected ones, method overrides, and query limits."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.checks.limits import (
    MAX_QUERY_COUNT,
    MAX_QUERY_NAME_LENGTH,
    MAX_QUERY_TOTAL_LENGTH,
    MAX_QUERY_VALUE_LENGTH,
)
from aivault_ops.runtime.policy.checks.query import QueryPolicy

POLICY = QueryPolicy(["key", "token"])
GEMINI_LIKE = QueryPolicy(["api_key"], ["x-acme-key"])


def refused(policy: QueryPolicy, query: tuple[tuple[str, str], ...]) -> Refusal:
    with pytest.raises(Refusal) as caught:
        policy.check(query)
    return caught.value


@pytest.mark.parametrize("name", ["key", "KEY", "Key", "token"])
def test_injected_parameter_names_are_refused_case_insensitively(name: str) -> None:
    error = refused(POLICY, (("q", "x"), (name, "attacker")))
    assert (error.status, error.code) == (403, "E-QUERY-FORBIDDEN")
    assert error.message == (
        f"query parameter {name!r} is injected by the runtime; callers may not send it"
    )


@pytest.mark.parametrize(
    "name",
    [
        "api_key[]",
        "api_key[0]",
        "api_key%00",
        "api_key ",
        " api_key",
        "api_key\x00",
        "api_key\t",
        "api.key",
        "api-key",
        "apikey",
        "api+key",
        "%61pi_key",
        "%2561pi_key",
        "%252561pi_key",
        "api%5Fkey",
        "ＡＰＩ＿ＫＥＹ",
        "api\u200bkey",
        "[api_key]",
    ],
)
def test_near_variants_of_an_injected_name_are_refused(name: str) -> None:
    error = refused(GEMINI_LIKE, ((name, "attacker"),))
    assert (error.status, error.code) == (403, "E-QUERY-FORBIDDEN")
    assert error.message.endswith(
        "reads as 'api_key', which the runtime injects; callers may not send it"
    )
    assert "attacker" not in error.message


@pytest.mark.parametrize("name", ["x%26api_key", "x&api_key", "a=1;api_key", "x%2526API.KEY"])
def test_a_name_hiding_the_injected_one_behind_a_separator_is_refused(name: str) -> None:
    error = refused(GEMINI_LIKE, ((name, "attacker"),))
    assert (error.status, error.code) == (403, "E-QUERY-FORBIDDEN")


def test_a_method_override_behind_a_separator_is_refused() -> None:
    error = refused(QueryPolicy(), (("a%26_method", "DELETE"),))
    assert error.message.startswith("query parameter 'a%26_method' is a method override")


def test_an_injected_header_name_is_refused_as_a_query_name_too() -> None:
    error = refused(GEMINI_LIKE, (("X_Acme_Key", "attacker"),))
    assert error.message == (
        "query parameter 'X_Acme_Key' reads as 'x-acme-key', which the runtime injects;"
        " callers may not send it"
    )


@pytest.mark.parametrize("name", ["access_token", "accessToken", "authorization", "x-api-key"])
def test_auth_class_parameters_are_refused_for_every_credential(name: str) -> None:
    error = refused(QueryPolicy(), ((name, "attacker"),))
    assert (error.status, error.code) == (403, "E-QUERY-FORBIDDEN")
    assert "an auth-class parameter; callers may not send credentials" in error.message


@pytest.mark.parametrize(
    "name",
    ["_method", "_METHOD", "%5Fmethod", "_method[]", "X-HTTP-Method-Override", "x_method_override"],
)
def test_method_overrides_are_refused(name: str) -> None:
    error = refused(QueryPolicy(), ((name, "DELETE"),))
    assert (error.status, error.code) == (403, "E-QUERY-FORBIDDEN")
    assert error.message.endswith(
        "is a method override; it could make the upstream apply another method than the policy"
        " checked"
    )


def test_ordinary_parameters_that_merely_look_alike_pass() -> None:
    query = (("method", "flickr.photos.search"), ("page_token", "a"), ("keys", "b"))
    assert POLICY.check(query) == query
    assert GEMINI_LIKE.check(query) == query


def test_other_parameters_pass_in_order() -> None:
    query = (("b", "2"), ("a", "1"), ("b", "3"))
    assert POLICY.check(query) == query
    assert QueryPolicy().check(query) == query


@pytest.mark.parametrize(
    "query", [(("\ud800", "x"),), (("a", "\udfff"),), (("a", "ok\ud83dx"),)], ids=str
)
def test_a_lone_surrogate_is_refused_before_anything_is_sent(
    query: tuple[tuple[str, str], ...],
) -> None:
    error = refused(POLICY, query)
    assert (error.status, error.code) == (400, "E-QUERY-INVALID")
    assert error.message.endswith("holds a lone surrogate, which cannot be sent")


def test_non_ascii_text_is_fine() -> None:
    assert POLICY.check((("q", "café 😀"),)) == (("q", "café 😀"),)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            tuple(("a", "1") for _ in range(MAX_QUERY_COUNT + 1)),
            f"the number of query parameters exceeds the runtime's limit of {MAX_QUERY_COUNT}",
        ),
        (
            (("n" * (MAX_QUERY_NAME_LENGTH + 1), "1"),),
            f"query parameter name {'n' * 120 + '…'!r} exceeds the runtime's limit of"
            f" {MAX_QUERY_NAME_LENGTH} characters",
        ),
        (
            (("a", "v" * (MAX_QUERY_VALUE_LENGTH + 1)),),
            f"the value of query parameter 'a' exceeds the runtime's limit of"
            f" {MAX_QUERY_VALUE_LENGTH} characters",
        ),
        (
            tuple((f"p{i}", "v" * 8000) for i in range(MAX_QUERY_TOTAL_LENGTH // 8000 + 1)),
            f"the query exceeds the runtime's limit of {MAX_QUERY_TOTAL_LENGTH} characters",
        ),
    ],
)
def test_query_limits(query: tuple[tuple[str, str], ...], message: str) -> None:
    error = refused(POLICY, query)
    assert (error.status, error.code, error.message) == (400, "E-QUERY-INVALID", message)


def test_queries_at_the_limits_pass() -> None:
    many = tuple(("a", "1") for _ in range(MAX_QUERY_COUNT))
    assert POLICY.check(many) == many
    long = (("n" * MAX_QUERY_NAME_LENGTH, "v" * MAX_QUERY_VALUE_LENGTH),)
    assert POLICY.check(long) == long


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/v1/users;key=attacker",
            "path parameter ';key' is injected by the runtime; callers may not send it",
        ),
        (
            "/v1/users;KEY/7",
            "path parameter ';KEY' is injected by the runtime; callers may not send it",
        ),
        (
            "/v1;x=1;api%5Fkey=a/users",
            "path parameter ';api_key' reads as 'api_key', an auth-class parameter;"
            " callers may not send credentials",
        ),
        (
            "/v1/users%3Fkey=attacker",
            "path parameter '?key' is injected by the runtime; callers may not send it",
        ),
        (
            "/v1/users%26token%3Dattacker",
            "path parameter '&token' is injected by the runtime; callers may not send it",
        ),
        (
            "/v1/users%23key",
            "path parameter '#key' is injected by the runtime; callers may not send it",
        ),
        (
            "/v1/users;jsessionid=ABC",
            "path parameter ';jsessionid' reads as 'jsessionid', a session id;"
            " callers may not send it",
        ),
    ],
)
def test_path_parameters_named_like_credentials_are_refused(path: str, message: str) -> None:
    with pytest.raises(Refusal) as caught:
        POLICY.check_path(path)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        403,
        "E-QUERY-FORBIDDEN",
        message,
    )


@pytest.mark.parametrize(
    "path", ["/v1/users", "/v1/items;version=2/x", "/v1/a;b", "/v1/a%20b&c", "/v1/k%65ys"]
)
def test_other_path_parameters_pass(path: str) -> None:
    POLICY.check_path(path)
