"""The /aivault/proxy envelope: parsing requests, formatting responses."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from aivault_ops.runtime.http.envelope import envelope_response, parse_envelope
from aivault_ops.runtime.model import InboundRequest, Refusal
from aivault_ops.runtime.policy.checks.limits import MAX_ENVELOPE_CONTAINERS, MAX_ENVELOPE_DEPTH


def envelope(**request: Any) -> bytes:
    return json.dumps({"capability": "openai/chat", "request": request}).encode()


def test_full_envelope_is_parsed() -> None:
    capability, request = parse_envelope(
        envelope(
            method="post",
            path="/v1/chat/completions",
            query={"a": "1", "b": ["2", "3"]},
            headers={"Content-Type": "application/json", "X-Trace": "t"},
            body='{"model": "x"}',
        )
    )
    assert capability == "openai/chat"
    assert request == InboundRequest(
        method="POST",
        raw_path="/v1/chat/completions",
        query=(("a", "1"), ("b", "2"), ("b", "3")),
        headers=(("Content-Type", "application/json"), ("X-Trace", "t")),
        body=b'{"model": "x"}',
    )


def test_defaults_and_base64_body() -> None:
    _, request = parse_envelope(
        envelope(path="/x", bodyBase64=base64.b64encode(b"\xff\x00").decode())
    )
    assert (request.method, request.query, request.headers, request.body) == (
        "GET",
        (),
        (),
        b"\xff\x00",
    )


def test_path_characters_are_percent_encoded_but_traversal_stays_visible() -> None:
    assert parse_envelope(envelope(path="/v1/john doe/é"))[1].raw_path == "/v1/john%20doe/%C3%A9"
    assert parse_envelope(envelope(path="/v1/%2e%2e/x"))[1].raw_path == "/v1/%2e%2e/x"
    assert parse_envelope(envelope(path="/v1/..\\x"))[1].raw_path == "/v1/..\\x"
    assert parse_envelope(envelope(path="/v1/a\r\nb"))[1].raw_path == "/v1/a%0D%0Ab"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "the envelope is not valid JSON"),
        (b"\xff", "the envelope is not valid JSON"),
        (b"[]", "the envelope must be a JSON object"),
        (b'{"capability": "x"}', "request must be a JSON object"),
        (b'{"request": {"path": "/"}}', "capability must be a string"),
        (
            b'{"capability": "x", "request": {"path": "/"}, "host": "evil"}',
            "the envelope has unknown field(s): host",
        ),
        (envelope(path="/", host="evil.example.net"), "request has unknown field(s): host"),
        (envelope(path="/", url="https://evil"), "request has unknown field(s): url"),
        (envelope(method="GET"), "request.path must be a string"),
        (envelope(path="v1"), "request.path must start with '/'"),
        (envelope(path="https://evil.example.net/v1"), "request.path must start with '/'"),
        (
            envelope(path="/v1?key=x"),
            "request.path may not contain '?' or '#'; put parameters in request.query",
        ),
        (envelope(path="/", method=1), "request.method must be a string"),
        (
            envelope(path="/", query=["a"]),
            "request.query must be an object of strings or lists of strings",
        ),
        (envelope(path="/", query={"a": 1}), "request.query['a'] must be a string"),
        (envelope(path="/", query={"a": [1]}), "request.query['a'] must be a string"),
        (envelope(path="/", headers=[["a", "b"]]), "request.headers must be an object of strings"),
        (envelope(path="/", headers={"a": ["b"]}), "request.headers['a'] must be a string"),
        (
            envelope(path="/", body="a", bodyBase64="YQ=="),
            "request may have body or bodyBase64, not both",
        ),
        (envelope(path="/", bodyBase64="!!"), "request.bodyBase64 is not valid base64"),
        (envelope(path="/", body=1), "request.body must be a string"),
    ],
)
def test_bad_envelopes_are_refused_with_400(body: bytes, message: str) -> None:
    with pytest.raises(Refusal) as caught:
        parse_envelope(body)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400,
        "E-ENVELOPE-INVALID",
        message,
    )


def test_response_with_text_body() -> None:
    data = envelope_response(
        201, [("Content-Type", "application/json"), ("Vary", "A"), ("vary", "B")], "é".encode()
    )
    assert json.loads(data) == {
        "status": 201,
        "headers": {"content-type": "application/json", "vary": "A, B"},
        "body": "é",
    }


def test_response_with_binary_body_uses_base64() -> None:
    data = envelope_response(200, [], b"\x89PNG\xff")
    assert json.loads(data) == {
        "status": 200,
        "headers": {},
        "bodyBase64": base64.b64encode(b"\x89PNG\xff").decode(),
    }


def nested(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"capability": "x", "request": {"path": "/", "headers": ' + nested(100_000) + b"}}",
            f"the envelope has more than {MAX_ENVELOPE_CONTAINERS} JSON objects and arrays",
        ),
        (
            nested(100_000),
            f"the envelope has more than {MAX_ENVELOPE_CONTAINERS} JSON objects and arrays",
        ),
        (
            b'{"capability": "x", "request": {"path": "/", "query": {"a": '
            + nested(MAX_ENVELOPE_DEPTH - 2)
            + b"}}}",
            f"the envelope is nested deeper than {MAX_ENVELOPE_DEPTH} levels",
        ),
        (
            b'{"capability": "x", "request": {"path": "/", "x": '
            + b'{"a": ' * 20
            + b"1"
            + b"}" * 20
            + b"}}",
            f"the envelope is nested deeper than {MAX_ENVELOPE_DEPTH} levels",
        ),
        (b"[" * 40, "the envelope is not valid JSON"),
        (b"[{]}" * 10, "the envelope is not valid JSON"),
        ("é".encode("latin-1"), "the envelope is not valid JSON"),
        ('{"capability": "x"}'.encode("utf-16"), "the envelope is not valid JSON"),
    ],
    ids=range(8),
)
def test_deep_or_wide_json_is_refused_before_parsing(body: bytes, message: str) -> None:
    with pytest.raises(Refusal) as caught:
        parse_envelope(body)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400,
        "E-ENVELOPE-INVALID",
        message,
    )


def test_brackets_inside_strings_do_not_count() -> None:
    text = '{"a": "' + "[" * 5000 + '\\"]' + "{" * 5000 + '"}'
    _, request = parse_envelope(envelope(path="/", body=text, query={"q": "[[[[" * 100}))
    assert request.body == text.encode()


def test_the_deepest_legal_envelope_parses() -> None:
    body = envelope(path="/", query={"a": ["1", "2"]}, headers={"X-A": "b"})
    assert parse_envelope(body)[1].query == (("a", "1"), ("a", "2"))
    deep = (
        b'{"capability": "x", "request": {"path": "/", "query": {"a": '
        + nested(MAX_ENVELOPE_DEPTH - 3, b'"v"')
        + b"}}}"
    )
    with pytest.raises(Refusal) as caught:
        parse_envelope(deep)
    assert caught.value.message == "request.query['a'] must be a string"


def test_a_utf8_bom_is_accepted() -> None:
    assert parse_envelope(b"\xef\xbb\xbf" + envelope(path="/x"))[1].raw_path == "/x"


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        (
            b'{"capability": "x", "request": {"path": "/v1/\\ud800"}}',
            "E-PATH-INVALID",
            "request.path holds a lone surrogate, which cannot be sent",
        ),
        (
            b'{"capability": "x", "request": {"path": "/", "body": "a\\udc80"}}',
            "E-ENVELOPE-INVALID",
            "request.body holds a lone surrogate, which cannot be sent as UTF-8;"
            " send bytes as request.bodyBase64",
        ),
    ],
)
def test_strings_that_cannot_be_encoded_are_refused(raw: bytes, code: str, message: str) -> None:
    with pytest.raises(Refusal) as caught:
        parse_envelope(raw)
    assert (caught.value.status, caught.value.code, caught.value.message) == (400, code, message)


def test_surrogate_pairs_are_ordinary_text() -> None:
    raw = b'{"capability": "x", "request": {"path": "/\\ud83d\\ude00", "body": "\\ud83d\\ude00"}}'
    _, request = parse_envelope(raw)
    assert (request.raw_path, request.body) == ("/%F0%9F%98%80", "😀".encode())
