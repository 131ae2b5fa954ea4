"""`filtered_body`: a body under a `responseBlocklist` is decoded (`decoding.py`), capped,
filtered, then redacted; whatever cannot be decoded or is too large is refused."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import brotli
import httpx
import pytest

from aivault_ops.runtime.model import PreparedCall, UpstreamRequest
from aivault_ops.runtime.response.blocklist import REDACTED, Blocklist
from aivault_ops.runtime.response.body import filtered_body
from aivault_ops.runtime.response.redaction import SecretRedactor
from aivault_ops.runtime.upstream.client import UpstreamFailure
from aivault_ops.secret import Secret

SECRET = "sk-canary-filtered-3c9d41"
SSN = "123-45-6789"
DOCUMENT: dict[str, Any] = {
    "token": "tok_live_abcdef",
    "data": [{"name": "Ada", "ssn": SSN}, {"name": "Eve"}],
    "meta": {"clé": "café", "echo": SECRET},
}
BLOCK = Blocklist.compile(["$.data[*].ssn", "$.token"])
PLAIN = json.dumps(DOCUMENT, ensure_ascii=False, indent=2).encode()


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": ("GZIP", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "deflate": ("deflate", zlib.compress),
    "raw-deflate": ("deflate", _raw_deflate),
    "br": ("br", brotli.compress),
    "gzip-members": ("gzip", lambda data: gzip.compress(data[:10]) + gzip.compress(data[10:])),
    "stacked": ("gzip, br", lambda data: brotli.compress(gzip.compress(data))),
    "identity": ("identity", lambda data: data),
}


class Chunks(httpx.AsyncByteStream):
    """The body as the upstream client hands it over: in pieces."""

    def __init__(self, body: bytes, size: int = 1000) -> None:
        self.pieces = [body[i : i + size] for i in range(0, len(body), size)]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


def call(limit: int | None = None) -> PreparedCall:
    upstream = UpstreamRequest("GET", "api.example.com", 443, "/", (), (), b"", 5.0)
    return PreparedCall(
        "agent", "api/read", "api", upstream,
        max_response_body_bytes=limit, redactor=SecretRedactor([Secret(SECRET)]),
    )  # fmt: skip


def filtered(body: bytes, encoding: str | None, *, limit: int | None = None) -> bytes:
    headers = {"content-type": "application/json"}
    if encoding is not None:
        headers["content-encoding"] = encoding
    response = httpx.Response(200, headers=headers, stream=Chunks(body))
    return asyncio.run(filtered_body(response, call(limit), BLOCK))


def refused(body: bytes, encoding: str, *, limit: int | None = None) -> tuple[str, str]:
    with pytest.raises(UpstreamFailure) as caught:
        filtered(body, encoding, limit=limit)
    assert caught.value.status == 502
    return caught.value.code, caught.value.message


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_compressed_bodies_are_decoded_then_filtered_and_redacted(encoding: str) -> None:
    header, encode = ENCODERS[encoding]
    out = filtered(encode(PLAIN), header)
    assert SSN.encode() not in out and b"tok_live" not in out and SECRET.encode() not in out
    parsed = json.loads(out)
    assert (parsed["data"][0]["ssn"], parsed["token"]) == (REDACTED, REDACTED)
    assert parsed["meta"]["clé"] == "café"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_the_decoded_size_is_capped(encoding: str) -> None:
    plain = b'{"a":"' + b"0" * 5_000_000 + b'"}'
    bomb = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[encoding](plain)
    assert len(bomb) < 10_000
    assert refused(bomb, encoding, limit=1_000_000) == (
        "E-RESPONSE-TOO-LARGE",
        "the upstream response exceeds the limit of 1000000 bytes",
    )


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        (
            "gzip",
            gzip.compress(PLAIN, mtime=0)[:-5],
            "the upstream response is not valid gzip data",
        ),
        ("br", b"garbage!!", "the upstream response is not valid br data"),
        ("compress", PLAIN, "content-encoding 'compress' cannot be decoded"),
        ("gzip, gzip, gzip, gzip", PLAIN, "too many content-encoding layers"),
    ],
    ids=["cut-gzip", "bad-br", "unknown", "too-many-layers"],
)
def test_a_body_that_cannot_be_decoded_is_refused_never_passed(
    encoding: str, body: bytes, message: str
) -> None:
    assert refused(body, encoding) == ("E-RESPONSE-ENCODING", message)
