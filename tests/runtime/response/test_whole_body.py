"""`whole_body`: a small identity body of declared length is read in one step, still
capped and redacted; anything else goes through the metered, decoded stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from aivault_ops.runtime.model import PreparedCall, UpstreamRequest
from aivault_ops.runtime.response.body import declared_length, whole_body
from aivault_ops.runtime.response.redaction import SecretRedactor
from aivault_ops.runtime.upstream.client import UpstreamFailure
from aivault_ops.secret import Secret

SECRET = "sk-canary-5b1f0e9d2c7a"


class OneStepOnly:
    """An `UpstreamResponse` that fails the test if its body is streamed."""

    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        self.status_code = 200
        self.headers = httpx.Headers(headers)
        self.body = body

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        raise AssertionError("streamed a body that could be read in one step")
        yield b""  # pragma: no cover

    async def aread(self) -> bytes:
        return self.body

    async def aclose(self) -> None:
        return None


def call(limit: int | None = None) -> PreparedCall:
    upstream = UpstreamRequest("GET", "api.example.com", 443, "/", (), (), b"", 5.0)
    return PreparedCall(
        "agent", "api/read", "api", upstream,
        max_response_body_bytes=limit, redactor=SecretRedactor([Secret(SECRET)]),
    )  # fmt: skip


def read(response: OneStepOnly, prepared: PreparedCall) -> bytes:
    return asyncio.run(whole_body(response, prepared, declared_length(response)))


def test_a_small_plain_body_is_read_at_once_and_redacted() -> None:
    body = f'{{"echo":"{SECRET}"}}'.encode()
    response = OneStepOnly({"content-length": str(len(body))}, body)
    out = read(response, call(limit=4096))
    assert SECRET.encode() not in out and out.startswith(b'{"echo":"')


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    response = OneStepOnly({"content-length": "100"}, b"x" * 100)
    with pytest.raises(UpstreamFailure) as caught:
        read(response, call(limit=99))
    assert caught.value.code == "E-RESPONSE-TOO-LARGE"


@pytest.mark.parametrize(
    "headers",
    [
        {"content-encoding": "gzip", "content-length": "2"},
        {"transfer-encoding": "chunked", "content-length": "2"},
        {},
    ],
    ids=["encoded", "chunked", "no-length"],
)
def test_other_bodies_go_through_the_stream(headers: dict[str, str]) -> None:
    response = OneStepOnly(headers, b"{}")
    with pytest.raises(AssertionError, match="streamed"):
        read(response, call())
