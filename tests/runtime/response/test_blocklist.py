"""responseBlocklist: path syntax, redaction and content types (decoding: test_filtered_body)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aivault_ops.runtime.response.blocklist import (
    REDACTED,
    Blocklist,
    BlocklistError,
    ResponseRefused,
    is_json_media_type,
    redact_json_body,
)

SSN = "123-45-6789"
DOCUMENT: dict[str, Any] = {
    "token": "tok_live_abcdef",
    "data": [
        {"name": "Ada", "ssn": SSN, "address": {"zip": "1000", "geo": [1, 2]}},
        {"name": "Bob", "ssn": "987-65-4321"},
        {"name": "Eve"},
    ],
    "meta": {"key with space": "v", "clé": "café", "ssn": "top-level"},
}


def redact(paths: list[str], document: Any) -> Any:
    return Blocklist.compile(paths).apply(json.loads(json.dumps(document)))


def test_nested_member() -> None:
    out = redact(["$.token", "$.data[0].address.zip"], DOCUMENT)
    assert out["token"] == REDACTED
    assert out["data"][0]["address"] == {"zip": REDACTED, "geo": [1, 2]}
    assert out["data"][1] == DOCUMENT["data"][1]


def test_arrays_of_objects() -> None:
    out = redact(["$.data[*].ssn"], DOCUMENT)
    assert [item.get("ssn") for item in out["data"]] == [REDACTED, REDACTED, None]
    assert "ssn" not in out["data"][2]
    assert out["meta"]["ssn"] == "top-level"


def test_index_and_out_of_range_index() -> None:
    out = redact(["$.data[1]", "$.data[7].ssn", "$.data[0].address.geo[1]"], DOCUMENT)
    assert out["data"][1] == REDACTED
    assert len(out["data"]) == 3
    assert out["data"][0]["address"]["geo"] == [1, REDACTED]


def test_bracket_keys_with_spaces_and_unicode() -> None:
    out = redact(["$.meta['key with space']", "$.meta['clé']"], DOCUMENT)
    assert out["meta"] == {"key with space": REDACTED, "clé": REDACTED, "ssn": "top-level"}


def test_wildcards() -> None:
    assert redact(["$.meta.*"], DOCUMENT)["meta"] == dict.fromkeys(DOCUMENT["meta"], REDACTED)
    assert redact(["$.data[0].address.geo[*]"], DOCUMENT)["data"][0]["address"]["geo"] == [
        REDACTED,
        REDACTED,
    ]


def test_recursive_descent() -> None:
    out = redact(["$..ssn"], DOCUMENT)
    assert [item.get("ssn") for item in out["data"]] == [REDACTED, REDACTED, None]
    assert out["meta"]["ssn"] == REDACTED
    nested = redact(["$..a.b"], {"a": {"b": 1, "a": {"b": 2}}, "x": [{"a": {"b": 3}}]})
    assert nested == {"a": {"b": REDACTED, "a": {"b": REDACTED}}, "x": [{"a": {"b": REDACTED}}]}


def test_an_empty_blocklist_is_false() -> None:
    assert not Blocklist.compile([])
    assert Blocklist.compile(["$.a"])


def test_whole_document_and_type_mismatches() -> None:
    assert redact(["$"], DOCUMENT) == REDACTED
    assert redact(["$.token.deeper", "$.data.ssn", "$.meta[0]"], DOCUMENT) == DOCUMENT
    assert redact(["$.a"], [1, 2]) == [1, 2]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("token", "responseBlocklist path 'token' must start with '$'"),
        ("$token", "responseBlocklist path '$token' is invalid at character 2"),
        ("$.", "responseBlocklist path '$.' is invalid at character 2"),
        ("$.a.", "responseBlocklist path '$.a.' is invalid at character 4"),
        ("$.a b", "responseBlocklist path '$.a b' is invalid at character 4"),
        ("$[-1]", "responseBlocklist path '$[-1]' is invalid at character 2"),
        ('$["a"]', "responseBlocklist path '$[\"a\"]' is invalid at character 2"),
        ("$.['a']", "responseBlocklist path \"$.['a']\" is invalid at character 2"),
        ("$..", "responseBlocklist path '$..' is invalid at character 2"),
        ("$.1a", "responseBlocklist path '$.1a' is invalid at character 2"),
        ("$[?(@.x)]", "responseBlocklist path '$[?(@.x)]' is invalid at character 2"),
    ],
)
def test_invalid_paths_are_refused_at_build(path: str, message: str) -> None:
    with pytest.raises(BlocklistError) as caught:
        Blocklist.compile(["$.ok", path])
    assert caught.value.message == message


def body_of(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


BLOCK = Blocklist.compile(["$.data[*].ssn", "$.token"])


def assert_redacted(out: bytes) -> None:
    assert SSN.encode() not in out and b"tok_live" not in out
    parsed = json.loads(out)
    assert parsed["data"][0]["ssn"] == REDACTED
    assert parsed["meta"]["clé"] == "café"
    assert out == json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=utf-8", "application/problem+json"],
)
def test_json_body_is_redacted_and_compact(content_type: str) -> None:
    assert_redacted(redact_json_body(body_of(DOCUMENT), content_type, BLOCK))


def refusal(body: bytes, content_type: str | None) -> Any:
    with pytest.raises(ResponseRefused) as caught:
        redact_json_body(body, content_type, BLOCK)
    assert caught.value.status == 502
    return caught.value.to_json()


def test_non_json_content_type_is_refused() -> None:
    not_json = {
        "error": "E-RESPONSE-NOT-JSON",
        "message": "the upstream response is not JSON, and this capability redacts JSON paths",
    }
    for content_type in ("text/html", "text/plain", None, "application/jsonp", "json"):
        assert refusal(body_of(DOCUMENT), content_type) == not_json


@pytest.mark.parametrize(
    "body",
    [
        b'{"token": "tok_live_abcdef", "ssn": "123-45-6789"',
        b'{"token": NaN}',
        b"\xff\xfe{garbage",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"token": "tok_live_abcdef"} trailing',
    ],
    ids=["truncated", "nan", "bad-bytes", "too-deep", "trailing"],
)
def test_malformed_json_is_refused_never_passed(body: bytes) -> None:
    assert refusal(body, "application/json") == {
        "error": "E-RESPONSE-NOT-JSON",
        "message": "the upstream response is not valid JSON",
    }


def test_empty_body_stays_empty() -> None:
    assert redact_json_body(b"", None, BLOCK) == b""


def test_lone_surrogates_survive_reserialization() -> None:
    out = redact_json_body(b'{"k": "\\ud800", "token": "x"}', "application/json", BLOCK)
    assert json.loads(out) == {"k": "\ud800", "token": REDACTED}


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/vnd.api+json; charset=utf-8", True),
        (" APPLICATION/JSON ", True),
        ("application/json-seq", False),
        ("text/json", False),
        ("", False),
    ],
)
def test_json_media_types(content_type: str, expected: bool) -> None:
    assert is_json_media_type(content_type) is expected
