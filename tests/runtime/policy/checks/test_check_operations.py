"""`check_operation_headers`: X-Amz-Target values and copy sources must be listed."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.checks.operations import (
    NO_OPERATIONS,
    OperationRules,
    check_operation_headers,
    operation_header,
)
from aivault_ops.runtime.policy.checks.path import PathPrefix

HOST = "s3.eu-west-1.amazonaws.com"
RULES = OperationRules(
    frozenset({"DynamoDB_20120810.GetItem"}), (PathPrefix("/my-bucket/incoming/"),)
)


def check(rules: OperationRules, *headers: tuple[str, str]) -> None:
    check_operation_headers(rules, headers, host=HOST, capability="aws/test")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("X-Amz-Target", "x-amz-target"),
        ("x_amz_target", "x-amz-target"),
        ("X-Amz-Copy-Source", "x-amz-copy-source"),
        ("x-amz-copy-source-range", ""),
        ("x-amz-copy-source-if-match", ""),
        ("x-amz-rename-source", "x-amz-rename-source"),
        ("x-goog-copy-source", "x-goog-copy-source"),
        ("x-ms-copy-source", "x-ms-copy-source"),
        ("x-ms-rename-source", "x-ms-rename-source"),
        ("Content-Type", ""),
    ],
)
def test_which_names_select_an_operation(name: str, expected: str) -> None:
    assert operation_header(name) == expected


def test_requests_without_them_pass_any_rules() -> None:
    check(NO_OPERATIONS, ("Content-Type", "application/json"), ("x-amz-copy-source-range", "b"))


def test_a_listed_operation_passes_and_others_are_refused() -> None:
    check(RULES, ("X-Amz-Target", "DynamoDB_20120810.GetItem"))
    for value in (
        "DynamoDB_20120810.DeleteTable",
        "dynamodb_20120810.getitem",
        " DynamoDB_20120810.GetItem",
    ):
        with pytest.raises(Refusal) as refused:
            check(RULES, ("X-Amz-Target", value))
        assert (refused.value.status, refused.value.code) == (403, "E-OPERATION-FORBIDDEN")


def test_nothing_listed_refuses_every_operation_header() -> None:
    for header in (("X-Amz-Target", "X.Y"), ("x-amz-copy-source", "my-bucket/incoming/a")):
        with pytest.raises(Refusal, match="listed: none"):
            check(NO_OPERATIONS, header)


@pytest.mark.parametrize(
    "source",
    [
        "my-bucket/incoming/a.txt",
        "/my-bucket/incoming/a%20b.txt?versionId=x",
        f"https://{HOST}/my-bucket/incoming/a",
        f"https://{HOST}:443/my-bucket/incoming/a",
    ],
)
def test_sources_under_a_prefix_pass(source: str) -> None:
    check(RULES, ("x-amz-copy-source", source))


@pytest.mark.parametrize(
    "source",
    [
        "my-bucket/other/a",
        "my-bucket/incoming",
        "my-bucket/incoming/../other/a",
        "my-bucket/incoming/%2e%2e/other/a",
        "my-bucket/incoming%2fa",
        "my-bucket/incoming/a\r\nx: y",
        "",
        "https://evil.example.com/my-bucket/incoming/a",
        f"https://{HOST}:8443/my-bucket/incoming/a",
        f"https://user@{HOST}/my-bucket/incoming/a",
        "https://[::1/my-bucket/incoming/a",
    ],
)
def test_sources_outside_or_unreadable_are_refused(source: str) -> None:
    with pytest.raises(Refusal) as refused:
        check(RULES, ("x-amz-copy-source", source))
    assert refused.value.code == "E-OPERATION-FORBIDDEN"


def test_a_header_sent_twice_is_refused_even_with_listed_values() -> None:
    target = ("X-Amz-Target", "DynamoDB_20120810.GetItem")
    with pytest.raises(Refusal, match="more than once"):
        check(RULES, target, ("x_amz_target", target[1]))


def test_an_access_point_arn_matches_only_a_prefix_written_as_one() -> None:
    arn = "arn:aws:s3:eu-west-1:111122223333:accesspoint/ap/object/incoming/a.txt"
    with pytest.raises(Refusal):
        check(RULES, ("x-amz-copy-source", arn))
    listed = OperationRules(
        copy_sources=(PathPrefix("/arn:aws:s3:eu-west-1:111122223333:accesspoint/ap/object/"),)
    )
    check(listed, ("x-amz-copy-source", arn))


def test_a_refused_source_is_echoed_without_its_query() -> None:
    source = "https://other.blob.core.windows.net/c/a?sv=2024&sig=sas-canary-0a1b2c3d"
    with pytest.raises(Refusal) as refused:
        check(RULES, ("x-ms-copy-source", source))
    assert "sas-canary" not in refused.value.message
    assert "other.blob.core.windows.net/c/a" in refused.value.message
