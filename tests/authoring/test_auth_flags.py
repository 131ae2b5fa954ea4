"""`--auth STRATEGY` and its flags → the manifest's `auth` value."""

from __future__ import annotations

import dataclasses

import pytest

from aivault_ops.authoring.auth_flags import AuthFlags, auth_from_flags
from aivault_ops.errors import UsageError


@pytest.mark.parametrize(
    ("strategy", "flags", "expected"),
    [
        (
            "header",
            AuthFlags(header_name="authorization", value_template="Bearer {{secret}}"),
            {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}},
        ),
        ("query", AuthFlags(query_param="key"), {"query": {"param_name": "key"}}),
        (
            "path",
            AuthFlags(path_prefix_template="/bot{{secret}}"),
            {"path": {"prefix_template": "/bot{{secret}}"}},
        ),
        (
            "multi_header",
            AuthFlags(auth_header=("x-id={{id}}", "x-key={{secret}}")),
            {
                "multi_header": [
                    {"header_name": "x-id", "value_template": "{{id}}"},
                    {"header_name": "x-key", "value_template": "{{secret}}"},
                ]
            },
        ),
        (
            "multi_query",
            AuthFlags(auth_query=("k={{secret}}",)),
            {"multi_query": [{"param_name": "k", "value_template": "{{secret}}"}]},
        ),
        (
            "o_auth2",
            AuthFlags(grant_type="client_credentials", token_endpoint="https://t/x", scope=("a",)),
            {
                "o_auth2": {
                    "grant_type": "client_credentials",
                    "token_endpoint": "https://t/x",
                    "scopes": ["a"],
                }
            },
        ),
        (
            "o_auth2",
            AuthFlags(grant_type="client_credentials", token_endpoint="https://t/x"),
            {"o_auth2": {"grant_type": "client_credentials", "token_endpoint": "https://t/x"}},
        ),
        (
            "aws_sig_v4",
            AuthFlags(aws_service="s3", aws_region="eu-west-1"),
            {"aws_sig_v4": {"service": "s3", "region": "eu-west-1"}},
        ),
        (
            "hmac",
            AuthFlags(hmac_algorithm="sha256", header_name="x-sig", value_template="{{signature}}"),
            {
                "hmac": {
                    "algorithm": "sha256",
                    "header_name": "x-sig",
                    "value_template": "{{signature}}",
                    "message": "request",
                }
            },
        ),
        ("basic", AuthFlags(), "basic"),
        ("mtls", AuthFlags(), "mtls"),
    ],
)
def test_each_strategy_has_the_schema_shape(
    strategy: str, flags: AuthFlags, expected: object
) -> None:
    assert auth_from_flags(strategy, flags) == expected


def test_a_missing_flag_is_named() -> None:
    with pytest.raises(UsageError, match="--auth header needs --value-template"):
        auth_from_flags("header", AuthFlags(header_name="authorization"))


def test_a_flag_of_another_strategy_is_refused() -> None:
    with pytest.raises(UsageError, match="--auth basic does not take --query-param"):
        auth_from_flags("basic", AuthFlags(query_param="key"))


def test_pairs_need_name_equals_template() -> None:
    with pytest.raises(UsageError, match="NAME=TEMPLATE"):
        auth_from_flags("multi_header", AuthFlags(auth_header=("x-key",)))


def test_an_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="use one of header, query"):
        auth_from_flags("bearer", AuthFlags())


def test_a_new_hmac_signs_the_whole_request_unless_told_otherwise() -> None:
    flags = AuthFlags(hmac_algorithm="sha512", header_name="x-sig", value_template="{{signature}}")
    assert auth_from_flags("hmac", flags)["hmac"]["message"] == "request"  # type: ignore[index]
    body = dataclasses.replace(flags, hmac_message="body")
    assert auth_from_flags("hmac", body)["hmac"]["message"] == "body"  # type: ignore[index]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"hmac_algorithm": "md5"}, "--hmac-algorithm md5: use sha256 or sha512"),
        ({"hmac_message": "query"}, "--hmac-message query: use one of request, canonical, body"),
    ],
)
def test_hmac_flags_outside_the_known_values_are_refused(
    changes: dict[str, str], match: str
) -> None:
    flags = AuthFlags(hmac_algorithm="sha256", header_name="x-sig", value_template="{{signature}}")
    with pytest.raises(UsageError, match=match):
        auth_from_flags("hmac", dataclasses.replace(flags, **changes))
