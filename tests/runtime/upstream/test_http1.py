"""The upstream HTTP/1.1 client against a scripted TLS server on 127.0.0.1.

Each test scripts what the server writes back, byte for byte, so framing
(Content-Length, chunked, close-delimited, HEAD, 1xx, 204), keep-alive
reuse and its limits, retries, timeouts and refusals are checked on a real
socket with real TLS.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
import uvloop

from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.upstream.client import (
    DevResolve,
    Http1Upstream,
    UpstreamFailure,
    UpstreamSettings,
)
from aivault_ops.runtime.upstream.http1 import UnsendableRequest, request_head

HOST = "api.example.com"
Reply = Callable[[int, int, bytes, asyncio.StreamWriter], Awaitable[bool]]


def ok(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def answer(data: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(data)
    await writer.drain()
    return True


@dataclass
class Server:
    """Accepts TLS connections and answers each request with `reply(conn, n, head, writer)`;
    records (connection number, request bytes)."""

    reply: Reply
    accepted: int = 0
    requests: list[tuple[int, bytes]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        connection, number = self.accepted, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                number += 1
                self.requests.append((connection, head + body))
                if not await self.reply(connection, number, head, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    ca_file = tmp_path_factory.mktemp("http1") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


def get(path: str = "/v1", method: str = "GET", **fields: object) -> UpstreamRequest:
    values: dict[str, object] = {
        "method": method, "host": HOST, "port": 443, "path": path, "query": (),
        "headers": (("authorization", "Bearer k"),), "body": b"", "timeout_s": 5.0,
    }  # fmt: skip
    return UpstreamRequest(**{**values, **fields})  # type: ignore[arg-type]


Scenario = Callable[[Http1Upstream, Server], Awaitable[None]]


def run(
    tls: tuple[ssl.SSLContext, Path],
    reply: Reply,
    scenario: Scenario,
    *,
    keepalive_s: float = 30.0,
    max_connections: int = 8,
) -> Server:
    server = Server(reply)

    async def main() -> None:
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls[0])
        port = listening.sockets[0].getsockname()[1]
        settings = UpstreamSettings(
            dev_resolve=DevResolve.parse([f"{HOST}=127.0.0.1:{port}"]),
            dev_ca_cert=tls[1],
            max_connections=max_connections,
            keepalive_s=keepalive_s,
        )
        client = Http1Upstream(settings)
        try:
            await scenario(client, server)
        finally:
            await client.aclose()
            listening.close()
            await listening.wait_closed()
            await asyncio.sleep(0.05)  # let the server side finish its closes

    uvloop.run(main())
    return server


async def fetch(client: Http1Upstream, request: UpstreamRequest | None = None) -> tuple[int, bytes]:
    response = await client.open(request or get())
    try:
        return response.status_code, await response.aread()
    finally:
        await response.aclose()


def failure_code(error: pytest.ExceptionInfo[UpstreamFailure]) -> str:
    return error.value.code


def test_keep_alive_reuses_one_connection(tls: tuple[ssl.SSLContext, Path]) -> None:
    async def scenario(client: Http1Upstream, _: Server) -> None:
        for _ in range(3):
            assert await fetch(client) == (200, b"{}")

    server = run(tls, lambda c, n, h, w: answer(ok(), w), scenario)
    assert (server.accepted, len(server.requests)) == (1, 3)
    head = server.requests[0][1]
    assert head.startswith(b"GET /v1 HTTP/1.1\r\nhost: api.example.com\r\n")
    assert b"authorization: Bearer k\r\n" in head and b"accept-encoding: identity\r\n" in head


@pytest.mark.parametrize(
    ("raw", "body", "reused"),
    [
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
         b"abcde", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"", True),
        (b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + ok(b"final"), b"final", True),
        (b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the close", b"until the close",
         False),
    ],
    ids=["chunked", "204", "interim-103", "close-delimited"],
)  # fmt: skip
def test_response_framing(
    tls: tuple[ssl.SSLContext, Path], raw: bytes, body: bytes, reused: bool
) -> None:
    async def reply(
        connection: int, number: int, head: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        await answer(raw, writer)
        return b"connection: close" not in raw

    async def scenario(client: Http1Upstream, _: Server) -> None:
        response = await client.open(get())
        assert "link" not in dict(response.headers.multi_items())
        assert await response.aread() == body
        await response.aclose()
        assert (await fetch(client))[1] == body

    server = run(tls, reply, scenario)
    assert server.accepted == (1 if reused else 2)


def test_head_has_no_body_and_its_connection_is_not_reused(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    async def scenario(client: Http1Upstream, _: Server) -> None:
        for _ in range(2):
            assert await fetch(client, get(method="HEAD")) == (200, b"")

    head_answer = b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n"
    server = run(tls, lambda c, n, h, w: answer(head_answer, w), scenario)
    assert server.accepted == 2


def test_a_closed_keep_alive_connection_is_retried_once_for_get_only(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    async def reply(
        connection: int, number: int, head: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        if number == 2:
            return False  # read the second request on a connection, close without answering
        return await answer(ok(), writer)

    async def scenario(client: Http1Upstream, server: Server) -> None:
        assert await fetch(client) == (200, b"{}")
        assert await fetch(client) == (200, b"{}")  # retried on a new connection
        with pytest.raises(UpstreamFailure) as caught:
            await fetch(client, get(method="POST", body=b"pay"))
        assert failure_code(caught) == "E-UPSTREAM-RESET"

    server = run(tls, reply, scenario)
    posts = [raw for _, raw in server.requests if raw.startswith(b"POST")]
    assert len(posts) == 1 and posts[0].endswith(b"content-length: 3\r\n\r\npay")


def test_an_idle_connection_past_keepalive_is_not_reused(tls: tuple[ssl.SSLContext, Path]) -> None:
    async def scenario(client: Http1Upstream, _: Server) -> None:
        for _ in range(2):
            assert await fetch(client) == (200, b"{}")

    server = run(tls, lambda c, n, h, w: answer(ok(), w), scenario, keepalive_s=0.0)
    assert server.accepted == 2


@pytest.mark.parametrize("later", [False, True], ids=["glued", "while-idle"])
def test_bytes_after_the_answer_drop_the_connection(
    tls: tuple[ssl.SSLContext, Path], later: bool
) -> None:
    stray = b"HTTP/1.1 200 OK\r\n"

    async def reply(
        connection: int, number: int, head: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        if not later:
            return await answer(ok() + stray, writer)
        await answer(ok(), writer)
        await asyncio.sleep(0.05)
        return await answer(stray, writer)

    async def scenario(client: Http1Upstream, _: Server) -> None:
        assert await fetch(client) == (200, b"{}")
        await asyncio.sleep(0.2)
        assert await fetch(client) == (200, b"{}")

    server = run(tls, reply, scenario)
    assert server.accepted == 2


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", "E-UPSTREAM-PROTOCOL"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b", "E-UPSTREAM-RESET"),
        (
            b"HTTP/1.1 200 OK\r\n" + b"x-pad: %s\r\n" % (b"p" * 1000) * 70 + b"\r\n",
            "E-UPSTREAM-PROTOCOL",
        ),
    ],
    ids=["garbage", "cut-body", "huge-head"],
)
def test_broken_answers_are_refused(
    tls: tuple[ssl.SSLContext, Path], raw: bytes, code: str
) -> None:
    async def reply(
        connection: int, number: int, head: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        await answer(raw, writer)
        return False

    async def scenario(client: Http1Upstream, _: Server) -> None:
        with pytest.raises(UpstreamFailure) as caught:
            await fetch(client)
        assert failure_code(caught) == code

    run(tls, reply, scenario)


def test_no_answer_is_a_timeout(tls: tuple[ssl.SSLContext, Path]) -> None:
    async def reply(
        connection: int, number: int, head: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        await asyncio.sleep(2)
        return False

    async def scenario(client: Http1Upstream, _: Server) -> None:
        with pytest.raises(UpstreamFailure) as caught:
            await fetch(client, get(timeout_s=0.2))
        assert failure_code(caught) == "E-UPSTREAM-TIMEOUT"

    run(tls, reply, scenario)


def test_a_full_pool_waits_for_a_free_connection_then_refuses_busy(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    async def scenario(client: Http1Upstream, _: Server) -> None:
        held = await client.open(get())
        waiting = asyncio.ensure_future(fetch(client, get(timeout_s=2.0)))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await held.aread()
        await held.aclose()
        assert await waiting == (200, b"{}")
        held = await client.open(get())
        with pytest.raises(UpstreamFailure) as caught:
            await fetch(client, get(timeout_s=0.1))
        assert (caught.value.status, failure_code(caught)) == (503, "E-UPSTREAM-BUSY")
        await held.aread()
        await held.aclose()
        # the waiter that gave up kept no slot: the one connection is free again
        assert await fetch(client, get(timeout_s=0.5)) == (200, b"{}")

    server = run(tls, lambda c, n, h, w: answer(ok(), w), scenario, max_connections=1)
    assert server.accepted == 1


def test_a_large_body_arrives_whole_through_paused_reads(tls: tuple[ssl.SSLContext, Path]) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB, well above the pause threshold

    async def scenario(client: Http1Upstream, _: Server) -> None:
        response = await client.open(get())
        await asyncio.sleep(0.2)  # let the buffer fill past the high-water mark
        pieces = [piece async for piece in response.aiter_raw()]
        await response.aclose()
        assert b"".join(pieces) == big and len(pieces) > 1
        assert await fetch(client) == (200, big)

    server = run(tls, lambda c, n, h, w: answer(ok(big), w), scenario)
    assert server.accepted == 1


@pytest.mark.parametrize(
    "headers",
    [
        (("x-note", "a\r\nx-injected: 1"),),
        (("x-note", "a\nb"),),
        (("x-note", "a\x00b"),),
        (("x note", "a"),),
        (("x-note:evil", "a"),),
    ],
    ids=["crlf", "lf", "nul", "space-in-name", "colon-in-name"],
)
def test_an_unsendable_header_is_refused_before_anything_is_sent(
    tls: tuple[ssl.SSLContext, Path], headers: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(UnsendableRequest):
        request_head("GET", HOST, "/", list(headers), 0)

    async def scenario(client: Http1Upstream, _: Server) -> None:
        with pytest.raises(UpstreamFailure) as caught:
            await fetch(client, get(headers=headers))
        assert failure_code(caught) == "E-UPSTREAM-REQUEST"
        assert "x-injected" not in str(caught.value) and "\r" not in str(caught.value)

    server = run(tls, lambda c, n, h, w: answer(ok(), w), scenario)
    assert server.requests == []


def test_request_head_frames_bodies_and_keeps_the_target_as_built() -> None:
    head = request_head("POST", "h:8443", "/a%2Fb?x=%41", [("user-agent", "me")], 0)
    assert head == (
        b"POST /a%2Fb?x=%41 HTTP/1.1\r\nhost: h:8443\r\nuser-agent: me\r\n"
        b"accept: */*\r\ncontent-length: 0\r\n\r\n"
    )
    assert b"content-length" not in request_head("GET", "h", "/", [], 0)
