"""A real TLS upstream on 127.0.0.1 that records every request it gets.

Certificates come from `trustme` for a policy host (`api.example.com`); the
runtime reaches it through `--dev-resolve` and `--dev-ca-cert`. Paths pick
a behaviour: `/echo` answers with the request headers and query (to prove
redaction), `/sse` streams events, `/slow` waits, `/reset` drops the
connection, `/redirect` answers 302, anything else a small JSON document.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from support.tls_app import tls_app

HOST = "api.example.com"


@dataclass(frozen=True)
class Seen:
    """One request as the upstream received it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive)."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class RecordingUpstream:
    """The running upstream: its port, its CA file, and what it saw."""

    port: int
    ca_file: Path
    seen: list[Seen] = field(default_factory=list)
    sse_release: threading.Event = field(default_factory=threading.Event)

    def clear(self) -> None:
        """Forget what was seen."""
        self.seen.clear()

    def dev_resolve(self, host: str = HOST) -> str:
        """The `--dev-resolve` value sending `host` here."""
        return f"{host}=127.0.0.1:{self.port}"


async def _handle(upstream: RecordingUpstream, request: web.Request) -> web.StreamResponse:
    body = await request.read()
    seen = Seen(
        request.method,
        request.raw_path.partition("?")[0],
        tuple(request.query.items()),
        tuple(request.headers.items()),
        body,
    )
    upstream.seen.append(seen)
    name = seen.path.rsplit("/", 1)[-1]
    if name == "echo":
        data = {"headers": dict(seen.headers), "query": dict(seen.query), "body": body.decode()}
        return web.json_response(data)
    if name == "sse":
        return await _sse(upstream, request)
    if name == "slow":
        await asyncio.sleep(2)
    if name == "reset":
        assert request.transport is not None
        request.transport.abort()
        return web.Response()
    if name == "redirect":
        raise web.HTTPFound("https://elsewhere.example.org/steal")
    if name == "cookie":
        return web.json_response({"ok": True}, headers={"Set-Cookie": "session=upstream"})
    return web.json_response({"ok": True, "path": seen.path, "method": seen.method})


async def _sse(upstream: RecordingUpstream, request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: first\n\n")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, upstream.sse_release.wait, 10)
    try:
        await response.write(b"data: second\n\n")
        await response.write_eof()
    except ConnectionError:  # the runtime hung up (a test cut the stream): drop it cleanly
        if request.transport is not None:
            request.transport.abort()
    return response


@contextmanager
def recording_upstream(directory: Path, hosts: tuple[str, ...] = (HOST,)) -> Iterator[Any]:
    """Run a TLS upstream in a thread for the duration of the block."""
    running: list[RecordingUpstream] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        return await _handle(running[0], request)

    with tls_app(directory, handler, hosts) as app:
        running.append(RecordingUpstream(port=app.port, ca_file=app.ca_file))
        try:
            yield running[0]
        finally:
            running[0].sse_release.set()


def echo_json(body: bytes) -> dict[str, Any]:
    """Parse an `/echo` answer."""
    data: dict[str, Any] = json.loads(body)
    return data
