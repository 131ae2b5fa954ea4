"""Path rules: traversal after percent-decoding, syntax, segment-boundary prefixes."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.checks.path import (
    PathPrefix,
    check_prefix,
    longest_match,
    parse_path,
)

TRAVERSAL = [
    "/v1/users/../admin",
    "/v1/users/./7",
    "/v1/users/..",
    "/v1/users/.",
    "/v1/users/%2e%2e/admin",
    "/v1/users/%2E%2E/admin",
    "/v1/users/.%2e/admin",
    "/v1/users/%2e/7",
    "/v1/users%2f..%2fadmin",
    "/v1/users%2F7",
    "/v1/users/%5c..%5cadmin",
    "/v1/users/%5C7",
    "/v1/users/..\\admin",
    "/v1/users\\7",
    "/v1/users/%252e%252e/admin",
    "/v1/users/%252E%252E/admin",
    "/v1/users%252fadmin",
    "/v1/users%255cadmin",
    "/v1/users/%25252e%25252e",
    "/v1/users/%00",
    "/v1/users/7%00.json",
    "/v1/users/%0d%0aX-Injected:%201",
    "/v1/users/%0A",
    "/v1/users/%09",
    "/v1/users/%7f",
    "/v1/users/%250d%250a",
    "/v1/users//7",
    "//v1/users",
    "/v1/users/..;/admin",
    "/v1/users/.;x/7",
    "/v1/users/%20..%20/admin",
    "/v1/users/%EF%BC%8E%EF%BC%8E/admin",
    "/v1/users/%E2%80%A5/admin",
    "/v1/users/%EF%BC%8F..",
]

INVALID = [
    "v1/users",
    "",
    "/v1/users/7 8",
    "/v1/users/\r\nX: 1",
    "/v1/users/\x00",
    "/v1/users?x=1",
    "/v1/users#frag",
    "/v1/users/%zz",
    "/v1/users/%4",
    "/v1/users/%",
    "/v1/users/é",
    "/v1/users/%ff%fe",
]

ALLOWED = [
    "/v1/users",
    "/v1/users/",
    "/v1/users/7",
    "/v1/users/7/",
    "/v1/users/a.b",
    "/v1/users/...",
    "/v1/users/.well-known",
    "/v1/users/john%20doe",
    "/v1/users/%C3%A9",
    "/v1/users/a;b=c",
    "/v1/users/a:b@c",
    "/v1/users/%41",
]


@pytest.mark.parametrize("path", TRAVERSAL)
def test_traversal_is_refused_after_percent_decoding(path: str) -> None:
    with pytest.raises(Refusal) as caught:
        parse_path(path)
    assert (caught.value.status, caught.value.code) == (400, "E-PATH-TRAVERSAL")


@pytest.mark.parametrize("path", INVALID)
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(Refusal) as caught:
        parse_path(path)
    assert caught.value.status == 400
    assert caught.value.code in {"E-PATH-INVALID", "E-PATH-TRAVERSAL"}


@pytest.mark.parametrize("path", ALLOWED)
def test_ordinary_paths_pass_and_stay_as_sent(path: str) -> None:
    parsed = parse_path(path)
    assert parsed.raw == path
    check_prefix((PathPrefix("/v1/users"),), parsed, capability="x/users")


def test_decoded_path_is_decoded_once() -> None:
    assert parse_path("/v1/john%20doe/%C3%A9").decoded == "/v1/john doe/é".encode()


@pytest.mark.parametrize(
    "path", ["/v1/usersX", "/v1/users-admin", "/v1/user", "/v1", "/", "/v2/users"]
)
def test_prefix_matches_only_on_a_segment_boundary(path: str) -> None:
    with pytest.raises(Refusal) as caught:
        check_prefix((PathPrefix("/v1/users"),), parse_path(path), capability="x/users")
    assert (caught.value.status, caught.value.code) == (403, "E-PATH-NOT-ALLOWED")
    assert caught.value.message == (
        f"path {path!r} is outside the prefixes of capability 'x/users' (/v1/users)"
    )


def test_percent_encoded_prefix_spelling_is_compared_decoded() -> None:
    check_prefix((PathPrefix("/v1/users"),), parse_path("/v1/user%73/7"), capability="x/u")


def test_prefix_with_trailing_slash_allows_everything_below_only() -> None:
    prefix = PathPrefix("/v3/")
    assert prefix.matches(b"/v3/domains")
    assert prefix.matches(b"/v3/")
    assert not prefix.matches(b"/v3")
    assert not prefix.matches(b"/v30/x")


def test_longest_match_prefers_the_longest_prefix() -> None:
    prefixes = (PathPrefix("/v1"), PathPrefix("/v1/users"))
    assert longest_match(prefixes, b"/v1/users/7") == len("/v1/users")
    assert longest_match(prefixes, b"/v1/other") == len("/v1")
    assert longest_match(prefixes, b"/v2") == -1


def test_refusal_message_quotes_the_path_safely() -> None:
    with pytest.raises(Refusal) as caught:
        parse_path("/a/%0d%0aSet-Cookie:%20x")
    assert caught.value.message == (
        "path '/a/%0d%0aSet-Cookie:%20x' is refused: control character or double percent-encoding"
    )
    assert caught.value.to_json() == {"error": "E-PATH-TRAVERSAL", "message": caught.value.message}
