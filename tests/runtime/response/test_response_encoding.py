"""Compressed upstream responses are decoded before redaction, never passed on encoded.

Security regression: an upstream that compresses despite
`accept-encoding: identity` must not smuggle the injected secret past the
redactor inside gzip/deflate/br bytes.
"""

from __future__ import annotations

import gzip
import json
import sys
import zlib

import brotli
import httpx
import pytest
from support.response_runtime import (
    Served,
    audit_lines,
    envelope,
    passthrough,
    read_cut,
    refusal,
    runtime_fixture,
    upstream_fixture,
)
from support.scripted_upstream import compress

from aivault_ops.runtime.response.body import Meter, decoded_body
from aivault_ops.runtime.response.decoding import PIECE, decoder_for
from aivault_ops.runtime.upstream.client import UpstreamFailure

ENCODINGS = ["gzip", "deflate", "deflate-raw", "br", "deflate, gzip"]
REDACTED_ECHO = {"echo": "Bearer [REDACTED]"}


upstream = upstream_fixture()
runtime = runtime_fixture("encoding", {})


def _decoded(response: httpx.Response) -> bytes:
    assert response.status_code == 200, response.text
    assert "content-encoding" not in response.headers
    return response.content


@pytest.mark.parametrize("stream", ["0", "1"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_compressed_echo_of_the_secret_is_redacted_in_passthrough(
    runtime: Served, encoding: str, stream: str
) -> None:
    body = _decoded(passthrough(runtime, f"encoded?enc={encoding}&stream={stream}"))
    assert json.loads(body) == REDACTED_ECHO


@pytest.mark.parametrize("stream", ["0", "1"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_compressed_echo_of_the_secret_is_redacted_in_the_envelope(
    runtime: Served, encoding: str, stream: str
) -> None:
    answer = envelope(runtime, f"encoded?enc={encoding}&stream={stream}")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert "content-encoding" not in {name.lower() for name in document["headers"]}
    assert json.loads(document["body"]) == REDACTED_ECHO


@pytest.mark.parametrize("stream", ["0", "1"])
def test_an_unknown_encoding_is_refused_not_passed_on(runtime: Served, stream: str) -> None:
    for response in (
        passthrough(runtime, f"encoded?enc=compress&stream={stream}"),
        envelope(runtime, f"encoded?enc=compress&stream={stream}"),
    ):
        message = refusal(response, 502, "E-RESPONSE-ENCODING")
        assert message == "content-encoding 'compress' cannot be decoded"
    last = audit_lines(runtime.root)[-1]
    assert (last["decision"], last["error"], last["status"]) == (
        "error",
        "E-RESPONSE-ENCODING",
        502,
    )


def test_corrupt_gzip_is_refused_or_cut_never_passed_on(runtime: Served) -> None:
    refusal(envelope(runtime, "encoded?enc=x-gzip"), 502, "E-RESPONSE-ENCODING")
    status, received = read_cut(runtime, "encoded?enc=x-gzip&stream=1")
    assert (status, received) == (200, b"")
    last = audit_lines(runtime.root)[-1]
    assert (last["decision"], last["error"], last["bytes"]) == ("error", "E-RESPONSE-ENCODING", 0)


def _decode_all(encoding: str, data: bytes, step: int) -> bytes:
    decoder = decoder_for(encoding)
    pieces = [p for i in range(0, len(data), step) for p in decoder.feed(data[i : i + step])]
    decoder.finish()
    assert all(len(piece) <= 2 * PIECE for piece in pieces)
    return b"".join(pieces)


PLAIN = bytes(range(256)) * 700 + b"z" * 300_000


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_decoders_work_chunk_by_chunk_in_bounded_pieces(encoding: str) -> None:
    for plain, step in ((PLAIN, 777), (PLAIN, 1 << 20), (PLAIN[:3000], 1)):
        data, header = compress(plain, encoding)
        assert _decode_all(header, data, step) == plain


def test_gzip_members_may_repeat() -> None:
    assert _decode_all("gzip", gzip.compress(b"ab") + gzip.compress(b"cd"), 3) == b"abcd"


def test_identity_and_empty_bodies_pass() -> None:
    assert _decode_all("identity", b"plain", 2) == b"plain"
    assert _decode_all("gzip", b"", 1) == b""
    assert _decode_all("br", b"", 1) == b""


@pytest.mark.parametrize(
    ("encoding", "data", "message"),
    [
        (
            "gzip",
            gzip.compress(PLAIN, mtime=0)[:-4],
            "the upstream response is not valid gzip data",
        ),
        ("gzip", b"not gzip at all", "the upstream response is not valid gzip data"),
        (
            "deflate",
            zlib.compress(b"abc") + b"junk",
            "the upstream response is not valid deflate data",
        ),
        ("deflate", b"x", "the upstream response is not valid deflate data"),
        ("br", brotli.compress(PLAIN)[:-3], "the upstream response is not valid br data"),
        ("br", brotli.compress(b"abc") + b"junk", "the upstream response is not valid br data"),
        ("gzip, gzip, gzip, gzip", b"", "too many content-encoding layers"),
        ("zstd", b"", "content-encoding 'zstd' cannot be decoded"),
    ],
)
def test_bad_encodings_are_refused(encoding: str, data: bytes, message: str) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        _decode_all(encoding, data, 100)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        502,
        "E-RESPONSE-ENCODING",
        message,
    )


def test_brotli_without_the_package_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "brotli", None)
    with pytest.raises(UpstreamFailure) as caught:
        decoder_for("br")
    assert caught.value.code == "E-RESPONSE-ENCODING"
    assert "cannot decode brotli" in caught.value.message


def test_a_tiny_bomb_is_decoded_in_bounded_pieces() -> None:
    decoder = decoder_for("gzip")
    sizes = [len(piece) for piece in decoder.feed(gzip.compress(b"\0" * (64 << 20)))]
    assert sum(sizes) == 64 << 20
    assert max(sizes) <= PIECE


def test_without_a_limit_a_body_held_whole_is_capped_when_decoded(runtime: Served) -> None:
    message = refusal(envelope(runtime, "bomb?enc=gzip&mib=33"), 502, "E-RESPONSE-TOO-LARGE")
    assert message == "the upstream response exceeds the limit of 33554432 bytes"


@pytest.mark.parametrize("value", ["gzip, chunked", "deflate"])
def test_a_compressing_transfer_coding_is_refused(value: str) -> None:
    response = httpx.Response(200, headers={"transfer-encoding": value}, content=b"x")
    with pytest.raises(UpstreamFailure) as caught:
        decoded_body(response, Meter(None, None))
    assert caught.value.code == "E-RESPONSE-ENCODING"
    assert caught.value.message.startswith("transfer-encoding ")


def test_chunked_transfer_coding_passes() -> None:
    response = httpx.Response(200, headers={"transfer-encoding": "chunked"}, content=b"x")
    assert decoded_body(response, Meter(None, None)) is not None
