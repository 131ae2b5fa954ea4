"""Secret redaction in response bodies and headers, across chunk boundaries."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aivault_ops.runtime.response.headers import ResponseHeaderFilter
from aivault_ops.runtime.response.redaction import MARK, SecretRedactor, base64_spellings
from aivault_ops.secret import Secret

SECRET = "sk-Canary/0123+456789_ABC"
REDACTOR = SecretRedactor([Secret(SECRET)])


def spellings(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [
        raw,
        base64.b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
        quote(secret, safe="").encode(),
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(secret, safe="")).encode(),
        quote_plus(secret).encode(),
        "".join(f"%{b:02X}" for b in raw).encode(),
        json.dumps(secret).encode()[1:-1],
        json.dumps(secret).encode().replace(b"/", b"\\/")[1:-1],
        "".join(f"\\u{ord(c):04x}" for c in secret).encode(),
    ]


def leaks(secret: str, data: bytes) -> bool:
    return any(spelling in data for spelling in spellings(secret))


@pytest.mark.parametrize("spelling", spellings(SECRET))
def test_every_spelling_is_redacted(spelling: bytes) -> None:
    redacted = REDACTOR.redact(b"before " + spelling + b" after")
    assert redacted == b"before " + MARK + b" after"


@pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"user:", b"ab:", b"x" * 7])
def test_base64_of_the_secret_inside_longer_text_is_redacted(prefix: bytes) -> None:
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(prefix + SECRET.encode() + b"-trailer")
        redacted = REDACTOR.redact(b"Basic " + encoded)
        assert MARK in redacted
        assert not any(core in redacted for core in base64_spellings(SECRET.encode()))


def test_echoed_basic_authorization_header_is_redacted() -> None:
    redactor = SecretRedactor([Secret("pw-0123456789"), Secret("svc:pw-0123456789")])
    header = "Basic " + base64.b64encode(b"svc:pw-0123456789").decode()
    assert (
        redactor.redact_text(f'{{"authorization": "{header}"}}')
        == '{"authorization": "Basic [REDACTED]"}'
    )


def test_mixed_percent_encoding_case_is_redacted() -> None:
    mixed = b"sk-Canary%2f0123%2B456789_ABC"
    assert REDACTOR.redact(mixed) == MARK


def test_text_without_secrets_is_unchanged() -> None:
    body = b'{"id": "chatcmpl-1", "choices": [{"text": "sk-Canary/0123+45678"}]}'
    assert REDACTOR.redact(body) == body


def test_empty_redactor_passes_everything() -> None:
    stream = SecretRedactor.empty().stream()
    assert stream.feed(b"abc") == b"abc"
    assert stream.flush() == b""


def test_repr_does_not_show_the_secret() -> None:
    assert repr(REDACTOR) == "SecretRedactor([secret])"


def test_stream_holds_back_only_a_possible_secret_start() -> None:
    stream = REDACTOR.stream()
    assert stream.feed(b"data: hello\n\n") == b"data: hello\n\n"
    first = stream.feed(b"data: sk-Can")
    assert first == b"data: "
    assert stream.feed(b"ary/0123+456789_ABC\n\n") == MARK + b"\n\n"
    assert stream.flush() == b""


def test_stream_flush_releases_a_held_tail() -> None:
    stream = REDACTOR.stream()
    assert stream.feed(b"end sk-Can") == b"end "
    assert stream.flush() == b"sk-Can"


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=40
    ),
    before=st.binary(max_size=40),
    after=st.binary(max_size=40),
    which=st.integers(min_value=0, max_value=11),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_random_split_points_never_let_a_secret_through(
    secret: str, before: bytes, after: bytes, which: int, cuts: list[int]
) -> None:
    spelling = spellings(secret)[which]
    assume(spelling not in MARK)  # a "secret" such as `[REDACTE` is in every mark
    body = before + spelling + after
    stream = SecretRedactor([Secret(secret)]).stream()
    output = b"".join(stream.feed(chunk) for chunk in _chunks(body, cuts)) + stream.flush()
    assert spelling not in output
    assert output == SecretRedactor([Secret(secret)]).redact(body)


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.binary(max_size=10),
    suffix=st.binary(max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_random_split_points_in_base64_at_any_offset(
    prefix: bytes, suffix: bytes, cuts: list[int]
) -> None:
    encoded = base64.b64encode(prefix + SECRET.encode() + suffix)
    stream = REDACTOR.stream()
    output = b"".join(stream.feed(chunk) for chunk in _chunks(encoded, cuts)) + stream.flush()
    assert MARK in output
    assert not any(core in output for core in base64_spellings(SECRET.encode()))


def test_response_headers_are_filtered_and_redacted() -> None:
    header_filter = ResponseHeaderFilter(["X-Goog-Api-Key"])
    headers = [
        ("Content-Type", "application/json"),
        ("Set-Cookie", "session=abc"),
        ("set-cookie2", "x"),
        ("WWW-Authenticate", "Bearer"),
        ("Proxy-Authenticate", "Basic"),
        ("Authorization", "Bearer x"),
        ("x-goog-api-key", "x"),
        ("Connection", "close, X-Hop"),
        ("X-Hop", "1"),
        ("Transfer-Encoding", "chunked"),
        ("Keep-Alive", "timeout=5"),
        ("Content-Length", "10"),
        ("Content-Encoding", "gzip"),
        ("X-Echo", f"key={quote(SECRET, safe='')}"),
        ("Vary", "Accept"),
    ]
    assert header_filter.apply(headers, REDACTOR) == [
        ("Content-Type", "application/json"),
        ("X-Echo", "key=[REDACTED]"),
        ("Vary", "Accept"),
    ]


def test_patterns_are_compiled_on_first_use_only() -> None:
    redactor = SecretRedactor([Secret(SECRET)])
    assert redactor._compiled is None
    assert redactor.redact(b"clean body") == b"clean body"
    compiled = redactor._compiled
    assert compiled is not None
    assert redactor.redact(SECRET.encode()) == MARK
    assert redactor._compiled is compiled


@pytest.mark.parametrize(
    "use",
    [
        lambda r: r.redact(SECRET.encode()),
        lambda r: r.redact_text(SECRET).encode(),
        lambda r: r.redact_headers([("x", SECRET)])[0][1].encode(),
        lambda r: b"".join((r.split_safe(SECRET.encode() + b" ")[0], b"")),
    ],
)
def test_every_entry_point_compiles_and_redacts_on_first_use(use: Any) -> None:
    assert use(SecretRedactor([Secret(SECRET)])).startswith(MARK)


PEM_LIKE = "-----BEGIN KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8\n-----END KEY-----"


@pytest.mark.parametrize(
    ("secret", "echo"),
    [
        ("sk-Can&ary<0123456789>", b"sk-Can&amp;ary&lt;0123456789&gt;"),
        ("sk-\"Canary'0123456789", b"sk-&#34;Canary&#x00027;0123456789"),
        ("sk-Canary/0123456789+x", b"sk-Canary&#X2f;0123456789&plus;x"),
        ("sk-Canary/0123456789+x", b"sk-Canary%252F0123456789%252Bx"),
        (PEM_LIKE, json.dumps(PEM_LIKE).encode()[1:-1]),
        ("sk-Canary\b0123456789\f", b"sk-Canary\\b0123456789\\f"),
        ("sk-Canary'0123456789\\", b"sk-Canary\\'0123456789\\x5c"),
    ],
)
def test_escapes_that_leaked_are_redacted(secret: str, echo: bytes) -> None:
    assert (
        SecretRedactor([Secret(secret)]).redact(b"<p>" + echo + b"</p>") == b"<p>" + MARK + b"</p>"
    )


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
@pytest.mark.parametrize("width", [64, 76])
def test_line_wrapped_base64_is_redacted(newline: bytes, width: int) -> None:
    encoded = base64.b64encode(b"x" * (width * 3 // 4 - 10) + SECRET.encode() + b"-end")
    wrapped = newline.join(encoded[i : i + width] for i in range(0, len(encoded), width))
    redacted = REDACTOR.redact(wrapped)
    assert MARK in redacted
    joined = redacted.replace(b"\r", b"").replace(b"\n", b"")
    assert not any(core in joined for core in base64_spellings(SECRET.encode()))


def test_a_line_wrapped_secret_split_at_its_line_break_is_redacted() -> None:
    encoded = base64.b64encode(SECRET.encode())
    stream = REDACTOR.stream()
    first = stream.feed(b"data\r\n" + encoded[:12] + b"\r")
    rest = stream.feed(b"\n" + encoded[12:] + b"\r\n") + stream.flush()
    assert first == b"data\r\n"
    assert rest == MARK + b"\r\n"


def test_long_patterns_are_compiled_only_when_a_body_may_hold_their_forms() -> None:
    redactor = SecretRedactor([Secret(SECRET)])
    assert redactor.redact(b'{\n  "clean": true\n}\n') == b'{\n  "clean": true\n}\n'
    compiled = redactor._compiled
    assert compiled is not None
    assert compiled._patterns == {}
    assert redactor.redact(SECRET.encode()) == MARK
    assert compiled._patterns == {}
    encoded = base64.b64encode(SECRET.encode())
    assert redactor.redact(encoded) == MARK
    assert set(compiled._patterns) == {"literal"}
    assert redactor.redact(encoded[:20] + b"\n" + encoded[20:]) == MARK
    assert set(compiled._patterns) == {"literal", "wrapped"}


@pytest.mark.parametrize(
    "chunk",
    [b"chunk-1\n", b'data: {"n": 1}\n\n', b'{"n": 1}\r\n', b"event: x\ndata: y\n\n"],
)
def test_a_stream_is_not_held_back_past_a_line_end(chunk: bytes) -> None:
    stream = SecretRedactor([Secret("sk-canary-3f9d2c7a1b8e4d6f")]).stream()
    assert stream.feed(chunk) == chunk


def test_a_stream_holds_a_possible_wrapped_base64_start() -> None:
    stream = SecretRedactor([Secret("sk-canary-3f9d2c7a1b8e4d6f")]).stream()
    assert stream.feed(b"line\nc2stY2\n") == b"line\n"
    assert stream.feed(b"FuYXJ5LTNmOWQyYzdhMWI4ZTRkNmY=\n") == MARK + b"\n"


def test_a_header_whose_name_holds_the_secret_is_dropped_not_renamed() -> None:
    header_filter = ResponseHeaderFilter(["X-Goog-Api-Key"])
    headers = [
        (f"X-Echo-{quote(SECRET, safe='')}", "1"),
        (f"x-echo-{quote(SECRET, safe='').lower()}", "1"),
        (base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="), "1"),
        ("X-Ok", f"echo={SECRET}"),
    ]
    assert header_filter.apply(headers, REDACTOR) == [("X-Ok", "echo=[REDACTED]")]


@pytest.mark.parametrize(
    "echo",
    [
        PEM_LIKE.encode(),
        (PEM_LIKE + "\n").encode(),
        json.dumps(PEM_LIKE + "\n").encode()[1:-1],
        PEM_LIKE.replace("\n", "\r\n").encode(),
        json.dumps(PEM_LIKE.replace("\n", "\r\n")).encode()[1:-1],
        quote(PEM_LIKE.replace("\n", "\r\n"), safe="").encode(),
    ],
)
def test_a_multi_line_secret_is_redacted_trimmed_and_with_crlf_line_ends(echo: bytes) -> None:
    redactor = SecretRedactor([Secret(PEM_LIKE + "\n")])
    assert redactor.redact(b"<pre>" + echo + b"</pre>") == b"<pre>" + MARK + b"</pre>"
