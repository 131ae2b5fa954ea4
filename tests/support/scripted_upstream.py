"""A real TLS upstream on 127.0.0.1 whose responses test the runtime's response path.

It learns the injected secret the only honest way: from the request's
`Authorization: Bearer <secret>` header, and echoes it back in many forms
(compressed, split across chunks, inside nested JSON), so a test proves the
caller still never sees it. The last path segment picks the behaviour:

- `encoded?enc=E[&stream=1]`: `{"echo": <authorization>}` with
  `Content-Encoding: E` (`gzip`, `deflate`, `deflate-raw` sent as `deflate`,
  `br`, `deflate, gzip`, or any other name sent as is over plain bytes);
  `stream=1` sends it chunked in three parts, else with a `Content-Length`;
- `json?enc=E[&stream=1]`: a nested JSON document (arrays of objects) that
  also echoes the secret;
- `html`: a `text/html` page; `notjson`: `application/json` that is not JSON;
- `bomb?enc=E&mib=N`: N MiB of zeros, compressed;
- `bytes?size=N&chunks=K`: N bytes of `a` in K chunks, no `Content-Length`
  (`whole=1`: in one body with its `Content-Length`);
- `held`: `chunk-1\\n`, then waits for `release`, then `chunk-2\\n`;
- `split?enc=E`: `data: first\\n\\n` plus the first part of the secret, waits for
  `release`, then the rest of the secret and `\\n\\n` (gzip as one stream with
  a sync flush per part, when `enc=gzip`).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brotli
from aiohttp import web
from support.tls_app import tls_app

HOST = "api.example.com"
RELEASE_WAIT_S = 10.0


@dataclass
class ScriptedUpstream:
    """The running upstream: port, CA file, and the event that releases held responses."""

    port: int
    ca_file: Path
    release: threading.Event = field(default_factory=threading.Event)

    def dev_resolve(self) -> str:
        """The `--dev-resolve` value sending the policy host here."""
        return f"{HOST}=127.0.0.1:{self.port}"


def compress(data: bytes, encoding: str) -> tuple[bytes, str]:
    """`data` encoded as `encoding`; returns the bytes and the header value to send."""
    if encoding == "gzip":
        return gzip.compress(data), "gzip"
    if encoding == "deflate":
        return zlib.compress(data), "deflate"
    if encoding == "deflate-raw":
        packer = zlib.compressobj(wbits=-15)
        return packer.compress(data) + packer.flush(), "deflate"
    if encoding == "br":
        return brotli.compress(data), "br"
    if encoding == "deflate, gzip":
        return gzip.compress(zlib.compress(data)), encoding
    return data, encoding


def nested_document(secret_echo: str) -> dict[str, Any]:
    """The JSON the `json` route answers: blocklist targets at several depths."""
    return {
        "data": [
            {"id": 1, "ssn": "111-11-1111", "name": "ada"},
            {"id": 2, "ssn": "222-22-2222", "name": "bob", "card": {"pan": "4111"}},
        ],
        "token": "session-token-xyz",
        "echo": secret_echo,
        "meta": {"count": 2},
    }


async def _send(
    request: web.Request, body: bytes, headers: dict[str, str], stream: bool
) -> web.StreamResponse:
    if not stream:
        return web.Response(body=body, headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    third = max(len(body) // 3, 1)
    for start in range(0, len(body), third):
        await response.write(body[start : start + third])
    await response.write_eof()
    return response


async def _encoded(request: web.Request, document: Any) -> web.StreamResponse:
    data, header = compress(json.dumps(document).encode(), request.query.get("enc", "identity"))
    headers = {"Content-Type": "application/json"}
    if header != "identity":
        headers["Content-Encoding"] = header
    return await _send(request, data, headers, request.query.get("stream") == "1")


async def _chunks(request: web.Request, parts: list[bytes], headers: dict[str, str]) -> Any:
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    for part in parts:
        await response.write(part)
    await response.write_eof()
    return response


async def _held(
    upstream: ScriptedUpstream, request: web.Request, parts: tuple[bytes, bytes], ctype: str
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": ctype})
    if request.query.get("enc") == "gzip":
        response.headers["Content-Encoding"] = "gzip"
        packer = zlib.compressobj(wbits=31)
        parts = (
            packer.compress(parts[0]) + packer.flush(zlib.Z_SYNC_FLUSH),
            packer.compress(parts[1]) + packer.flush(),
        )
    await response.prepare(request)
    await response.write(parts[0])
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, upstream.release.wait, RELEASE_WAIT_S)
    await response.write(parts[1])
    await response.write_eof()
    return response


async def _handle(upstream: ScriptedUpstream, request: web.Request) -> web.StreamResponse:
    await request.read()
    secret = request.headers.get("authorization", "").removeprefix("Bearer ")
    name = request.path.rsplit("/", 1)[-1]
    query = request.query
    if name == "encoded":
        return await _encoded(request, {"echo": request.headers.get("authorization")})
    if name == "json":
        return await _encoded(request, nested_document(f"key={secret}"))
    if name == "html":
        return web.Response(text=f"<p>{secret}</p>", content_type="text/html")
    if name == "notjson":
        return web.Response(body=b"{not json", headers={"Content-Type": "application/json"})
    if name == "bomb":
        data, header = compress(b"\0" * (int(query["mib"]) << 20), query["enc"])
        return web.Response(body=data, headers={"Content-Encoding": header})
    if name == "bytes":
        size, count = int(query.get("size", 0)), int(query.get("chunks", 1))
        if query.get("whole") == "1":
            return web.Response(body=b"a" * size)
        return await _chunks(request, [b"a" * (size // count)] * count, {})
    if name == "held":
        return await _held(upstream, request, (b"chunk-1\n", b"chunk-2\n"), "text/plain")
    if name == "split":
        cut = len(secret) // 2
        first, rest = b"data: first\n\n" + secret[:cut].encode(), secret[cut:].encode()
        return await _held(upstream, request, (first, rest + b"\n\n"), "text/event-stream")
    return web.json_response({"ok": True})


@contextmanager
def scripted_upstream(directory: Path) -> Iterator[ScriptedUpstream]:
    """Run the upstream in a thread for the duration of the block."""
    running: list[ScriptedUpstream] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        return await _handle(running[0], request)

    with tls_app(directory, handler, (HOST,)) as app:
        running.append(ScriptedUpstream(port=app.port, ca_file=app.ca_file))
        try:
            yield running[0]
        finally:
            running[0].release.set()
