"""What-if only: the runtime's handler behind a minimal httptools server.

Measures what the runtime would gain from its own HTTP/1.1 server in place
of aiohttp's low-level server (per-request `BaseRequest`, `StreamResponse`,
`StreamWriter` and protocol bookkeeping). NOT production code and never
used by `aivault-ops`: it serves only answers the handler returns whole
(`web.Response`; the benchmark's 33-byte body is one), reads no request
body, has no timeouts, no pipelining order guarantees and no limits.
Parsing (httptools, llhttp) and the handler (`Runtime.handle`, every
policy rule, redaction, the audit line) are the real ones.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import httptools
from aiohttp import web
from multidict import CIMultiDict


class _NoBody:
    async def read(self, size: int = -1) -> bytes:
        return b""


class _Request:
    """The part of `aiohttp.web.BaseRequest` the runtime's handler reads."""

    content = _NoBody()
    content_length = None
    body_exists = False

    def __init__(self, method: str, raw_path: str, headers: CIMultiDict[str], transport: Any):
        self.method = method
        self.raw_path = raw_path
        self.headers = headers
        self.transport = transport


def _serialise(response: web.StreamResponse) -> bytes:
    assert isinstance(response, web.Response), "the what-if serves whole answers only"
    body = response.body if isinstance(response.body, bytes) else b""
    lines = [f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}"]
    lines += [f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "content-length"]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Protocol(asyncio.Protocol):
    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._parser = httptools.HttpRequestParser(self)
        self._transport: Any = None
        self._url = b""
        self._headers: CIMultiDict[str] = CIMultiDict()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._transport.close()

    def on_message_begin(self) -> None:
        self._url, self._headers = b"", CIMultiDict()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_message_complete(self) -> None:
        method = self._parser.get_method().decode("ascii")
        request = _Request(method, self._url.decode("latin-1"), self._headers, self._transport)
        asyncio.get_running_loop().create_task(self._answer(request))

    async def _answer(self, request: _Request) -> None:
        response = await self._handle(request)
        if not self._transport.is_closing():
            self._transport.write(_serialise(response))


class LeanServer:
    """Stands in for the runtime's `GuardedServer` in `serve_forever` (no limits)."""

    def __init__(self, handle: Any, **_: Any) -> None:
        self._handle = handle

    def __call__(self) -> _Protocol:
        return _Protocol(self._handle)

    def pre_shutdown(self) -> None:
        return None

    async def shutdown(self, timeout: float | None = None) -> None:
        return None


def install() -> None:
    """Make `serve` use `LeanServer` (benchmarks only)."""
    from aivault_ops.runtime.http import connections

    connections.GuardedServer = LeanServer  # type: ignore[misc,assignment]
