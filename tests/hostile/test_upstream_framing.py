"""Hostile upstreams: the HTTP/1.1 client fails closed on every framing problem.

A scripted TLS server on 127.0.0.1 answers with byte scripts: oversized
heads, duplicate or conflicting lengths, CL+TE, bad chunks, trailers,
bytes after the answer, 1xx/101, early closes and slow drips. Each case
ends either in exactly the right answer or in an `UpstreamFailure` with a
stable code; after a failure the connection is closed by the client and
the pool holds nothing of it. Never a partial or merged answer.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop
from support.byte_upstream import (
    HOST,
    OTHER_HOST,
    ByteUpstream,
    Drip,
    Script,
    Step,
    tls_files,
)
from support.fixtures import factory

from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.upstream import (
    DevResolve,
    Http1Upstream,
    UpstreamFailure,
    UpstreamSettings,
)

__all__ = ["factory"]

PROTOCOL = "E-UPSTREAM-PROTOCOL"
RESET = "E-UPSTREAM-RESET"
TIMEOUT = "E-UPSTREAM-TIMEOUT"
Tls = tuple[ssl.SSLContext, Path]
Scenario = Callable[[Http1Upstream, ByteUpstream], Awaitable[None]]


def ok(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunked(*parts: bytes, trailer: bytes = b"") -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    return (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        + body
        + b"0\r\n"
        + trailer
        + b"\r\n"
    )


def padded_gzip_head(count: int) -> bytes:
    """`count` one-KB `x-pad` headers, then `content-encoding: gzip`."""
    pads = b"".join(b"x-pad-%d: %s\r\n" % (index, b"p" * 1000) for index in range(count))
    return b"HTTP/1.1 200 OK\r\n" + pads + b"content-encoding: gzip\r\n"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return tls_files(tmp_path_factory.mktemp("hostile-tls"))


def request(method: str = "GET", timeout_s: float = 5.0, host: str = HOST) -> UpstreamRequest:
    return UpstreamRequest(
        method=method, host=host, port=443, path="/v1", query=(),
        headers=(("authorization", "Bearer k"),), body=b"", timeout_s=timeout_s,
    )  # fmt: skip


def run(tls: Tls, script: Script, scenario: Scenario, **settings: Any) -> ByteUpstream:
    """Serve `script`, run `scenario` against a fresh client, close both; bounded at 20 s.

    A failed assert (pytest's outcome exceptions are BaseExceptions, which stop the
    event loop mid-task) is carried out of the loop and raised after it closed."""
    upstream = ByteUpstream(script, *tls)
    outcome: list[BaseException] = []

    async def main() -> None:
        await upstream.start()
        try:
            await with_client(upstream)
        except (Exception, asyncio.CancelledError):
            raise
        except BaseException as failed:
            outcome.append(failed)
        finally:
            await upstream.stop()

    async def with_client(upstream: ByteUpstream) -> None:
        resolve = [upstream.dev_resolve(HOST), upstream.dev_resolve(OTHER_HOST)]
        options = {"dev_resolve": DevResolve.parse(resolve), "dev_ca_cert": tls[1]}
        client = Http1Upstream(UpstreamSettings(**{**options, "max_connections": 4, **settings}))
        try:
            async with asyncio.timeout(20):
                await scenario(client, upstream)
        finally:
            await client.aclose()

    uvloop.run(main())
    if outcome:
        raise outcome[0]
    return upstream


def always(*steps: Step) -> Script:
    return lambda connection, number: steps


async def fetch(
    client: Http1Upstream, req: UpstreamRequest | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    response = await client.open(req or request())
    try:
        return response.status_code, response.headers.multi_items(), await response.aread()
    finally:
        await response.aclose()


async def refused(client: Http1Upstream, req: UpstreamRequest | None = None) -> UpstreamFailure:
    """The failure of one exchange (at the head or while reading the body)."""
    with pytest.raises(UpstreamFailure) as caught:
        await fetch(client, req)
    return caught.value


async def closed_and_empty(client: Http1Upstream, upstream: ByteUpstream) -> None:
    """The client closed connection 1 and keeps nothing in its pool."""
    assert await upstream.wait_closed_by_client(1)
    assert client.connections() == (0, 0)


# --- the three reproductions of the issue --------------------------------------------------


def test_regression_a_head_past_the_cap_is_refused_not_cut(tls: Tls) -> None:
    """90 one-KB headers then `content-encoding: gzip`: before, the headers past 64 KiB
    were dropped and the gzip body went out as identity bytes."""
    body = gzip.compress(b'{"echo": "Bearer k"}')
    raw = padded_gzip_head(90) + b"content-length: %d\r\n\r\n" % len(body) + body

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        failure = await refused(client)
        assert (failure.status, failure.code) == (502, PROTOCOL)
        assert failure.message == (
            "the upstream's response is not valid HTTP/1.1: its head exceeds 65536 bytes"
        )
        await closed_and_empty(client, upstream)

    run(tls, always(raw), scenario)


def test_regression_a_second_answer_glued_to_the_first_is_never_merged(tls: Tls) -> None:
    """`content-length: 5` + `hello`, then at once a whole second response: the caller
    gets exactly the first answer, and the connection is closed, never reused."""
    second = b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\nxxxxxxxxxxxxxxxxxxxx"
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello" + second

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        assert await fetch(client) == (200, [("content-length", "5")], b"hello")
        await closed_and_empty(client, upstream)
        assert (await fetch(client))[2] == b"hello"

    upstream = run(tls, always(raw), scenario)
    assert upstream.accepted == 2


def test_regression_101_switching_protocols_is_refused(tls: Tls) -> None:
    raw = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        failure = await refused(client)
        assert (failure.status, failure.code) == (502, PROTOCOL)
        assert failure.message == (
            "the upstream's response is not valid HTTP/1.1: it switches protocols (101)"
        )
        await closed_and_empty(client, upstream)

    run(tls, always(raw + b"\x81\x05hello"), scenario)


def test_regression_a_head_dripped_under_the_read_timeout_hits_the_deadline(tls: Tls) -> None:
    """One byte every 50 ms never trips a 0.4 s per-read timeout; the head deadline does."""
    script = always(Drip(ok(b"late"), 0.05))

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        failure = await refused(client, request(timeout_s=0.4))
        assert (failure.status, failure.code) == (504, TIMEOUT)
        await closed_and_empty(client, upstream)

    run(tls, script, scenario)


def test_regression_a_body_dripped_under_the_read_timeout_hits_the_body_limit(tls: Tls) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 200\r\n\r\n"
    script = always(head, Drip(b"b" * 200, 0.05))

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        response = await client.open(request(timeout_s=0.4))
        try:
            with pytest.raises(UpstreamFailure) as caught:
                await response.aread()
        finally:
            await response.aclose()
        assert (caught.value.status, caught.value.code) == (504, TIMEOUT)
        assert caught.value.message == "the upstream response body did not end within 0.6 s"
        await closed_and_empty(client, upstream)

    run(tls, script, scenario, body_timeout_s=0.6)


def test_regression_idle_connections_are_reaped(tls: Tls) -> None:
    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        assert (await fetch(client))[2] == b"{}"
        assert client.connections() == (0, 1)
        assert await upstream.wait_closed_by_client(1)
        assert client.connections() == (0, 0)

    run(tls, always(ok()), scenario, keepalive_s=0.2)


def test_regression_idle_connections_count_toward_the_pool_limit(tls: Tls) -> None:
    """With a limit of 1, a call to another host closes the idle connection first."""

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        assert (await fetch(client))[2] == b"{}"
        assert (await fetch(client, request(host=OTHER_HOST)))[2] == b"{}"
        assert 1 in upstream.closed_by_client
        assert client.connections() == (0, 1)

    upstream = run(tls, always(ok()), scenario, max_connections=1)
    assert upstream.accepted == 2
