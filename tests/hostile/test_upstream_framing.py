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
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from support.bundles import CANARY, BundleFactory
from support.byte_upstream import (
    CLOSE,
    CUT,
    HOST,
    OTHER_HOST,
    ByteUpstream,
    Drip,
    Pause,
    Script,
    Step,
    byte_upstream_thread,
    tls_files,
)
from support.fixtures import factory
from support.response_runtime import (
    Served,
    audit_lines,
    envelope,
    passthrough,
    read_cut,
    refusal,
    serving,
)

from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.upstream.client import (
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


async def pool_empties(client: Http1Upstream, bound_s: float = 5.0) -> bool:
    """Whether the client's pool holds no connection within `bound_s` (polled): the
    upstream can see the close before the client's transport reports it lost."""
    loop = asyncio.get_running_loop()
    until = loop.time() + bound_s
    while client.connections() != (0, 0) and loop.time() < until:
        await asyncio.sleep(0.01)
    return client.connections() == (0, 0)


async def closed_and_empty(client: Http1Upstream, upstream: ByteUpstream) -> None:
    """The client closed connection 1 and keeps nothing in its pool."""
    assert await upstream.wait_closed_by_client(1)
    assert await pool_empties(client)


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


def test_regression_101_switching_protocols_is_refused(
    tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, llhttp's upgrade exception escaped `data_received` (a traceback in the log)."""
    raw = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        failure = await refused(client)
        assert (failure.status, failure.code) == (502, PROTOCOL)
        assert failure.message == (
            "the upstream's response is not valid HTTP/1.1: it switches protocols (101)"
        )
        await closed_and_empty(client, upstream)

    run(tls, always(raw + b"\x81\x05hello"), scenario)
    assert [
        record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
    ] == []


def test_a_head_dripped_under_the_read_timeout_hits_the_deadline(tls: Tls) -> None:
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


# --- the corpus: every framing problem fails the exchange and closes the connection --------

HEAD_CAP = "its head exceeds 65536 bytes"
LINE_CAP = "a chunk line or its trailers exceed 65536 bytes"
NOT_CHUNKED = "its Transfer-Encoding is not exactly one 'chunked'"
NOT_START = "it does not start with a status line"
PARSER = "rejected by the parser ("
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
PAD_1K = b"x-pad: %s\r\n" % (b"p" * 1000)


def status(line: bytes, rest: bytes = b"content-length: 0\r\n\r\n") -> bytes:
    return line + b"\r\n" + rest


# id: (steps, reason: exact, or a prefix ending in "(")
VIOLATIONS: dict[str, tuple[tuple[Step, ...], str]] = {
    "head-endless": ((b"HTTP/1.1 200 OK\r\n" + PAD_1K * 70,), HEAD_CAP),
    "head-dripped-over-cap": ((b"HTTP/1.1 200 OK\r\n", *[PAD_1K] * 70), HEAD_CAP),
    "header-value-endless": ((b"HTTP/1.1 200 OK\r\nx-a: " + b"p" * 70_000,), HEAD_CAP),
    "reason-huge": ((b"HTTP/1.1 200 " + b"R" * 70_000 + b"\r\n",), HEAD_CAP),
    "interim-heads-over-cap": ((b"HTTP/1.1 103 Early\r\n" + PAD_1K * 40 + b"\r\n",) * 2, HEAD_CAP),
    "chunk-extension-endless": ((CHUNKED_HEAD + b"5;" + b"a" * 1_000_000,), LINE_CAP),
    "trailers-huge": ((CHUNKED_HEAD + b"0\r\n" + PAD_1K * 140 + b"\r\n",), LINE_CAP),
    "te-gzip": ((status(b"HTTP/1.1 200 OK", b"transfer-encoding: gzip\r\n\r\nbody"),), NOT_CHUNKED),
    "te-gzip-chunked": ((status(b"HTTP/1.1 200 OK", b"transfer-encoding: gzip, chunked\r\n\r\n"),),
                        NOT_CHUNKED),
    "te-twice": ((b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n" + CHUNKED_HEAD[17:],),
                 NOT_CHUNKED),
    "te-list": ((status(b"HTTP/1.1 200 OK", b"transfer-encoding: chunked, chunked\r\n\r\n"),),
                NOT_CHUNKED),
    "te-identity": ((status(b"HTTP/1.1 200 OK", b"transfer-encoding: identity\r\n\r\nx"),),
                    NOT_CHUNKED),
    "te-in-http10": ((b"HTTP/1.0" + CHUNKED_HEAD[8:] + b"0\r\n\r\n",),
                     "an HTTP/1.0 answer has a Transfer-Encoding"),
    "trailer-transfer-encoding": ((CHUNKED_HEAD + b"0\r\ntransfer-encoding: chunked\r\n\r\n",),
                                  "a trailer sets Content-Length or Transfer-Encoding"),
    "http-2.0": ((status(b"HTTP/2.0 200 OK"),), "its HTTP version is not 1.1 or 1.0"),
    "http-0.9": ((status(b"HTTP/0.9 200 OK"),), "its HTTP version is not 1.1 or 1.0"),
    "status-600": ((status(b"HTTP/1.1 600 Odd"),), "its status code is not between 100 and 599"),
    "status-099": ((status(b"HTTP/1.1 099 Odd"),), "its status code is not between 100 and 599"),
    "reason-with-nul": ((status(b"HTTP/1.1 200 O\x00K"),),
                        "its reason phrase has a control character"),
    "leading-crlf": ((b"\r\n" + ok(),), NOT_START),
    "blank-line-after-interim": ((b"HTTP/1.1 100 Continue\r\n\r\n\r\n" + ok(),), NOT_START),
    "garbage": ((b"NOT HTTP AT ALL\r\n\r\n",), NOT_START),
    "lowercase-http": ((status(b"http/1.1 200 OK"),), NOT_START),
    # refused by llhttp itself (strict mode); the reason quotes its fixed text
    "content-length-twice-same": ((ok(b"hello", b"content-length: 5\r\n"),), PARSER),
    "content-length-conflicting": ((ok(b"hello", b"content-length: 6\r\n"),), PARSER),
    "content-length-list": ((status(b"HTTP/1.1 200 OK", b"content-length: 5, 5\r\n\r\nhello"),),
                            PARSER),
    "content-length-negative": ((status(b"HTTP/1.1 200 OK", b"content-length: -1\r\n\r\n"),),
                                PARSER),
    "content-length-plus": ((status(b"HTTP/1.1 200 OK", b"content-length: +5\r\n\r\nhello"),),
                            PARSER),
    "content-length-overflow": ((status(b"HTTP/1.1 200 OK", b"content-length: 1" + b"0" * 25
                                        + b"\r\n\r\n"),), PARSER),
    "content-length-empty": ((status(b"HTTP/1.1 200 OK", b"content-length: \r\n\r\n"),), PARSER),
    "cl-and-te": ((status(b"HTTP/1.1 200 OK", b"content-length: 5\r\ntransfer-encoding: chunked"
                          b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),), PARSER),
    "te-and-cl": ((status(b"HTTP/1.1 200 OK", b"transfer-encoding: chunked\r\ncontent-length: 5"
                          b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),), PARSER),
    "chunk-size-negative": ((CHUNKED_HEAD + b"-5\r\nhello\r\n0\r\n\r\n",), PARSER),
    "chunk-size-0x": ((CHUNKED_HEAD + b"0x5\r\nhello\r\n0\r\n\r\n",), PARSER),
    "chunk-size-space": ((CHUNKED_HEAD + b"5 \r\nhello\r\n0\r\n\r\n",), PARSER),
    "chunk-size-overflow": ((CHUNKED_HEAD + b"f" * 20 + b"\r\nhello\r\n",), PARSER),
    "chunk-size-empty": ((CHUNKED_HEAD + b"\r\nhello\r\n0\r\n\r\n",), PARSER),
    "chunk-data-too-long": ((CHUNKED_HEAD + b"5\r\nhello!\r\n0\r\n\r\n",), PARSER),
    "chunk-size-bare-lf": ((CHUNKED_HEAD + b"5\nhello\r\n0\r\n\r\n",), PARSER),
    "chunk-extension-invalid": ((CHUNKED_HEAD + b"5;a b\r\nhello\r\n0\r\n\r\n",), PARSER),
    "trailer-content-length": ((CHUNKED_HEAD + b"0\r\ncontent-length: 9\r\n\r\n",), PARSER),
    "obs-fold": ((status(b"HTTP/1.1 200 OK", b"x-a: 1\r\n  2\r\ncontent-length: 0\r\n\r\n"),),
                 PARSER),
    "nul-in-value": ((ok(b"{}", b"x-a: 1\x002\r\n"),), PARSER),
    "cr-in-value": ((ok(b"{}", b"x-a: 1\r2\r\n"),), PARSER),
    "del-in-value": ((ok(b"{}", b"x-a: 1\x7f2\r\n"),), PARSER),
    "ctl-in-value": ((ok(b"{}", b"x-a: \x1b[0m\r\n"),), PARSER),
    "name-not-a-token": ((ok(b"{}", b"x a: 1\r\n"),), PARSER),
    "name-space-before-colon": ((ok(b"{}", b"x-a : 1\r\n"),), PARSER),
    "name-empty": ((ok(b"{}", b": 1\r\n"),), PARSER),
    "no-colon": ((ok(b"{}", b"x-a\r\n"),), PARSER),
    "header-starts-with-space": ((status(b"HTTP/1.1 200 OK", b" x-a: 1\r\n\r\n"),), PARSER),
    "http-2-no-minor": ((status(b"HTTP/2 200 OK"),), PARSER),
    "http-1.2": ((status(b"HTTP/1.1 200 OK").replace(b"1.1", b"1.2"),), PARSER),
    "status-two-digits": ((status(b"HTTP/1.1 20 OK"),), PARSER),
    "status-line-bare-lf": ((b"HTTP/1.1 200 OK\ncontent-length: 0\r\n\r\n",), PARSER),
    "header-bare-lf": ((b"HTTP/1.1 200 OK\r\ncontent-length: 0\n\r\n",), PARSER),
}  # fmt: skip


@pytest.mark.parametrize(("steps", "reason"), VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_a_framing_violation_fails_the_exchange_and_closes(
    tls: Tls, steps: tuple[Step, ...], reason: str
) -> None:
    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        failure = await refused(client)
        assert (failure.status, failure.code) == (502, PROTOCOL)
        message = "the upstream's response is not valid HTTP/1.1: " + reason
        if reason.endswith("("):
            assert failure.message.startswith(message) and failure.message.endswith(")")
        else:
            assert failure.message == message
        await closed_and_empty(client, upstream)

    run(tls, always(*steps), scenario)


EARLY_CLOSES: dict[str, tuple[Step, ...]] = {
    "before-anything": (CLOSE,),
    "mid-status-line": (b"HTTP/1.1 2", CLOSE),
    "mid-head": (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n", CLOSE),
    "after-an-interim-answer": (b"HTTP/1.1 100 Continue\r\n\r\n", CLOSE),
    "content-length-body-short": (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", CLOSE),
    "chunked-body-cut-after-a-chunk": (CHUNKED_HEAD + b"3\r\nabc\r\n", CLOSE),
    "chunked-body-cut-in-a-size-line": (CHUNKED_HEAD + b"3\r\nabc\r\n1", CLOSE),
    "chunked-body-cut-in-trailers": (CHUNKED_HEAD + b"0\r\nx-t: 1\r\n", CLOSE),
    "close-delimited-body-without-close-notify": (b"HTTP/1.1 200 OK\r\n\r\npartial", CUT),
    "content-length-body-short-bare-fin": (b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nab", CUT),
}


@pytest.mark.parametrize("steps", EARLY_CLOSES.values(), ids=EARLY_CLOSES.keys())
def test_a_close_before_the_end_is_an_error_not_a_short_answer(
    tls: Tls, steps: tuple[Step, ...]
) -> None:
    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        failure = await refused(client, request(method="POST"))  # POST: never retried
        assert (failure.status, failure.code, failure.message) == (
            502,
            RESET,
            "the upstream closed the connection",
        )
        assert client.connections() == (0, 0)

    run(tls, always(*steps), scenario)


# id: (answer, expected (status, headers, body), whether the connection is kept)
Expected = tuple[int, list[tuple[str, str]], bytes]
LEGIT: dict[str, tuple[bytes, Expected, bool]] = {
    "content-length": (ok(b"hello"), (200, [("content-length", "5")], b"hello"), True),
    "chunked-with-extensions": (
        CHUNKED_HEAD + b"3;a=b\r\nabc\r\n2;q=\"x y\"\r\nde\r\n0\r\n\r\n",
        (200, [("transfer-encoding", "chunked")], b"abcde"), True),
    "chunked-trailers-are-dropped": (
        CHUNKED_HEAD + b"3\r\nabc\r\n0\r\nx-trailer: secret-ish\r\n\r\n",
        (200, [("transfer-encoding", "chunked")], b"abc"), True),
    "interim-100-then-200": (b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"x"),
                             (200, [("content-length", "1")], b"x"), True),
    "interim-103-then-200": (b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + ok(b"x"),
                             (200, [("content-length", "1")], b"x"), True),
    "204": (b"HTTP/1.1 204 No Content\r\n\r\n", (204, [], b""), True),
    "304-with-length": (b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
                        (304, [("content-length", "5")], b""), True),
    "close-delimited-with-close-notify": (b"HTTP/1.1 200 OK\r\n\r\nuntil the close",
                                          (200, [], b"until the close"), False),
    "http-1.0": (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nhi",
                 (200, [("content-length", "2")], b"hi"), False),
    "connection-close": (ok(b"hi", b"connection: close\r\n"),
                         (200, [("content-length", "2"), ("connection", "close")], b"hi"), False),
    "casing-kept-whitespace-trimmed": (
        ok(b"", b"X-Mixed-Case:  \tpadded value \t\r\nX-Empty:\r\n"),
        (200, [("content-length", "0"), ("X-Mixed-Case", "padded value"), ("X-Empty", "")], b""),
        True),
    "obs-text-value": (ok(b"", b"x-a: caf\xc3\xa9 \xff\r\n"),  # not UTF-8: read as latin-1
                       (200, [("content-length", "0"), ("x-a", "caf\xc3\xa9 \xff")], b""), True),
    "reason-phrase-empty": (b"HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n",
                            (200, [("content-length", "0")], b""), True),
    "bytes-after-the-answer": (ok(b"hi") + b"junk", (200, [("content-length", "2")], b"hi"), False),
    "body-after-a-204": (b"HTTP/1.1 204 No Content\r\n\r\nsmuggled", (204, [], b""), False),
}  # fmt: skip


@pytest.mark.parametrize(("raw", "expected", "kept"), LEGIT.values(), ids=LEGIT.keys())
def test_a_well_framed_answer_arrives_exactly(
    tls: Tls, raw: bytes, expected: Expected, kept: bool
) -> None:
    def script(connection: int, number: int) -> tuple[Step, ...]:
        return (raw,) if kept else (raw, CLOSE)

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        assert await fetch(client) == expected
        assert client.connections() == (0, 1 if kept else 0)
        assert await fetch(client) == expected

    upstream = run(tls, script, scenario)
    assert upstream.accepted == (1 if kept else 2)


def test_a_head_answer_with_a_body_is_cut_at_the_head_and_closed(tls: Tls) -> None:
    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        expected = (200, [("content-length", "5")], b"")
        assert await fetch(client, request(method="HEAD")) == expected
        await closed_and_empty(client, upstream)

    run(tls, always(ok(b"hello")), scenario)


def test_repeated_content_encoding_fields_are_read_together(tls: Tls) -> None:
    """`get` joins repeated fields: a second `Content-Encoding` is never overlooked."""
    raw = ok(b"", b"content-encoding: identity\r\ncontent-encoding: gzip\r\n")

    async def scenario(client: Http1Upstream, _: ByteUpstream) -> None:
        response = await client.open(request())
        assert response.headers.get("Content-Encoding") == "identity, gzip"
        await response.aread()
        await response.aclose()

    run(tls, always(raw), scenario)


def test_regression_the_head_deadline_covers_the_wait_for_a_slot(tls: Tls) -> None:
    """0.3 s waiting for the only connection plus 0.3 s for the head exceed 0.5 s."""
    script = always(Pause(0.3), ok())

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        held = await client.open(request())
        waiting = asyncio.ensure_future(refused(client, request(timeout_s=0.5)))
        await asyncio.sleep(0.3)
        await held.aread()
        await held.aclose()
        failure = await waiting
        assert (failure.status, failure.code) == (504, TIMEOUT)
        assert client.connections() == (0, 0)

    run(tls, script, scenario, max_connections=1)


def test_a_body_stalled_longer_than_the_timeout_fails(tls: Tls) -> None:
    script = always(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", Pause(2))

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        failure = await refused(client, request(timeout_s=0.3))
        assert (failure.status, failure.code, failure.message) == (
            504,
            TIMEOUT,
            "the upstream did not answer in time",
        )
        await closed_and_empty(client, upstream)

    run(tls, script, scenario)


def test_an_idle_connection_that_speaks_is_dropped_and_frees_its_slot(tls: Tls) -> None:
    def script(connection: int, number: int) -> tuple[Step, ...]:
        return (ok(), Pause(0.1), b"HTTP/1.1 200 OK\r\n") if connection == 1 else (ok(),)

    async def scenario(client: Http1Upstream, upstream: ByteUpstream) -> None:
        assert (await fetch(client))[2] == b"{}"
        assert await upstream.wait_closed_by_client(1)
        assert await pool_empties(client)
        assert (await fetch(client))[2] == b"{}"

    upstream = run(tls, script, scenario, max_connections=1)
    assert upstream.accepted == 2


# --- through the whole runtime ---------------------------------------------------------------

ECHO = json.dumps({"echo": f"Bearer {CANARY}"}).encode()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ByteUpstream]:
    with byte_upstream_thread(tmp_path_factory.mktemp("hostile-up"), always(ok())) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, factory: BundleFactory, hostile: ByteUpstream
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("hostile-runtime")
    with serving("inprocess", root, factory, hostile, {}) as served:  # type: ignore[arg-type]
        yield served


def test_regression_the_padded_gzip_answer_is_a_502_json_error(
    runtime: Served, hostile: ByteUpstream
) -> None:
    body = gzip.compress(ECHO)
    hostile.script = always(padded_gzip_head(90) + b"content-length: %d\r\n\r\n" % len(body) + body)
    for call in (passthrough, envelope):
        message = refusal(call(runtime, "padded"), 502, PROTOCOL)
        assert message == f"the upstream's response is not valid HTTP/1.1: {HEAD_CAP}"
    assert [line["error"] for line in audit_lines(runtime.root)[-2:]] == [PROTOCOL, PROTOCOL]


def test_a_second_content_encoding_field_is_decoded_before_redaction(
    runtime: Served, hostile: ByteUpstream
) -> None:
    """`identity` then `gzip` in two fields: the body is still gunzipped and redacted."""
    body = gzip.compress(ECHO)
    head = b"content-encoding: identity\r\ncontent-encoding: gzip\r\n"
    hostile.script = always(ok(body, head))
    for call in (passthrough, envelope):
        response = call(runtime, "two-encodings")
        assert response.status_code == 200, response.text
    assert json.loads(passthrough(runtime, "again").content) == {"echo": "Bearer [REDACTED]"}


def test_a_streamed_body_cut_short_aborts_the_callers_connection(
    runtime: Served, hostile: ByteUpstream
) -> None:
    hostile.script = always(CHUNKED_HEAD + b"6\r\nchunk1\r\n", Pause(0.2), CLOSE)
    status, received = read_cut(runtime, "cut")  # the chunked answer never ends
    assert status == 200 and b"chunk1".startswith(received)  # the redactor may hold it back
    assert audit_lines(runtime.root)[-1]["error"] == RESET


def test_a_streamed_body_with_a_framing_error_aborts_the_callers_connection(
    runtime: Served, hostile: ByteUpstream
) -> None:
    hostile.script = always(CHUNKED_HEAD + b"6\r\nchunk1\r\n", Pause(0.2), b"zz\r\n")
    status, received = read_cut(runtime, "bad-chunk")
    assert status == 200 and b"chunk1".startswith(received)
    assert audit_lines(runtime.root)[-1]["error"] == PROTOCOL


def test_a_header_value_that_is_not_utf8_reaches_the_caller_as_latin1(
    runtime: Served, hostile: ByteUpstream
) -> None:
    """obs-text in a header value: read as ISO-8859-1, never a 500 after an `allow` line."""
    hostile.script = always(ok(b'{"ok": true}', b"x-b: caf\xe9\r\n"))
    answer = envelope(runtime, "obs-text")
    assert answer.status_code == 200, answer.text
    assert answer.json()["headers"]["x-b"] == "café"
    assert passthrough(runtime, "obs-text").headers["x-b"] == "café"  # re-encoded as UTF-8
    assert [line["decision"] for line in audit_lines(runtime.root)[-2:]] == ["allow", "allow"]
