"""The upstream hot path: a small HTTP/1.1 client over TLS on the event loop,
parsing responses with httptools (llhttp, Node.js's parser).

Why not aiohttp's client: measured in `benchmarks/` (a `lean-client`
what-if variant before this module existed), its generic request machinery
(per-request `ClientRequest`/`ClientResponse` objects, tracing hooks,
timers, cookie and redirect handling the runtime never uses) cost ~40 % of
the runtime's CPU per request. This client does only what the runtime
needs:

- keep-alive connections per (host, port) in a pool per TLS context (so
  an mTLS client certificate is presented on its own credential's
  connections only), at most `limit` connections per pool, none reused
  after `keepalive_s` idle;
- the connect goes to the addresses `resolve` returns (the SSRF-checking
  resolver), with the policy host as TLS server name, hostname checked;
- the request head is written as built: the target is not re-quoted, and a
  header name that is not a token or a value with CR, LF or NUL is refused
  before anything is sent (no header injection);
- the response body is handed over as it arrives (reading pauses above
  256 KiB buffered) and its head is capped at 64 KiB; Content-Length,
  chunked and close-delimited bodies, 1xx interim answers, HEAD, 204 and
  304 are handled;
- a timeout bounds the connect (TLS handshake included), the wait for a
  free connection, the wait for the response head and each body read;
- a reused keep-alive connection the upstream closed before answering is
  retried once on a new connection, for idempotent methods only (a POST to
  a paid API is never sent twice).

Errors are OSError/TimeoutError subclasses (`classify_error` gives the
stable code); a connection is pooled again only after a complete response.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import httptools

MAX_HEAD_BYTES: Final = 64 * 1024
HIGH_WATER: Final = 256 * 1024
LOW_WATER: Final = 64 * 1024
IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_DEFAULT_HEADERS: Final = (("user-agent", "aivault-ops"), ("accept", "*/*"))

Resolve = Callable[[str, int], Awaitable[list[tuple[str, int]]]]


class UpstreamClosed(ConnectionResetError):
    """The upstream closed the connection (or sent what is not HTTP/1.1) mid-exchange."""


class UnsendableRequest(ValueError):
    """A header name that is not a token, or a line break or NUL in the request head."""


def request_head(
    method: str, authority: str, target: str, headers: list[tuple[str, str]], body_length: int
) -> bytes:
    """The request line and headers, CRLF-terminated; `UnsendableRequest` if any part
    could break out of its line."""
    lines = [f"{method} {target} HTTP/1.1", f"host: {authority}"]
    given: set[str] = set()
    for name, value in headers:
        if _TOKEN.fullmatch(name) is None:
            raise UnsendableRequest("a request header name is not a valid HTTP token")
        lines.append(f"{name}: {value}")
        given.add(name.lower())
    lines += [f"{name}: {value}" for name, value in _DEFAULT_HEADERS if name not in given]
    if body_length or method in _BODY_METHODS:
        lines.append(f"content-length: {body_length}")
    block = "\n".join(lines)
    if block.count("\n") != len(lines) - 1 or "\r" in block or "\0" in block:
        raise UnsendableRequest("the request head contains a line break or NUL")
    if _TOKEN.fullmatch(method) is None or " " in target:
        raise UnsendableRequest("the request method or target is malformed")
    return (block.replace("\n", "\r\n") + "\r\n\r\n").encode("utf-8", "surrogateescape")


class ResponseHeaders:
    """Response headers in order, with case-insensitive `get` (first value)."""

    __slots__ = ("_first", "_items")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._first: dict[str, str] = {}
        for name, value in items:
            self._first.setdefault(name.lower(), value)

    def get(self, key: str, default: Any = None) -> Any:
        """The first value of `key`, or `default`."""
        return self._first.get(key.lower(), default)

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) as received."""
        return list(self._items)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("the upstream did not answer in time"))


class Connection(asyncio.Protocol):
    """One upstream connection, one exchange at a time (no pipelining)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: Any = None  # uvloop's SSL transport is not an asyncio.Transport
        self.closed = False
        self.idle_since = 0.0
        self.active = False
        self.key: tuple[str, int] = ("", 0)
        self.lost: asyncio.Future[None] = loop.create_future()
        self._waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self._head_bytes = 0
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._error: BaseException | None = None
        self._length_known = False
        self._interim = False
        self._head_request = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.active:
            self.close()  # an idle connection has nothing to say: drop it
            return
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(UpstreamClosed("the upstream's answer is not valid HTTP/1.1"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        if self.active and not self.complete:
            if self.status and exc is None and not self._length_known:
                self.complete = True  # a body delimited by the close
            else:
                self._error = self._error or UpstreamClosed("the upstream closed the connection")
        self._wake()

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.complete:  # bytes after the whole answer: this connection is out of step
            self._fail(UpstreamClosed("the upstream sent more than one answer"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._fail(UpstreamClosed("the upstream's response headers are too large"))
            return
        item = (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        self.headers.append(item)
        if item[0].lower() in ("content-length", "transfer-encoding"):
            self._length_known = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._interim, self.headers, self._length_known = True, [], False
            return
        self.status = status
        if self._head_request:
            self.complete = True  # the parser would wait for a body; the connection is not reused
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self.keep_alive = False
        self.close()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self, timeout_s: float) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout_s, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def send(self, data: bytes, *, head_request: bool, timeout_s: float) -> None:
        """Write one request and wait for the response head."""
        self._reset()
        self.active, self._head_request = True, head_request
        if self.closed:
            raise UpstreamClosed("the upstream closed the connection")
        self.transport.write(data)
        while not self.status:
            if self._error is not None:
                raise self._error
            await self._wait(timeout_s)

    async def read(self, timeout_s: float) -> bytes:
        """The next piece of the body as it arrived; b"" at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered <= LOW_WATER:
                    self._paused = False
                    self.transport.resume_reading()
                return chunk
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait(timeout_s)

    @property
    def reusable(self) -> bool:
        """Whole response read, keep-alive agreed, still open."""
        return (
            self.complete
            and self.keep_alive
            and not self._head_request
            and not self._chunks
            and not self.closed
        )

    def close(self) -> None:
        """Close the connection now."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """An upstream response whose body is read from its connection as it arrives.

    Read errors go through `translate` (the caller's error classification).
    """

    __slots__ = ("_connection", "_pool", "_timeout_s", "_translate", "headers", "status_code")

    def __init__(
        self,
        pool: Pool,
        connection: Connection,
        timeout_s: float,
        translate: Callable[[Exception], Exception],
    ) -> None:
        self._pool: Pool | None = pool
        self._connection = connection
        self._timeout_s = timeout_s
        self._translate = translate
        self.status_code = connection.status
        self.headers = ResponseHeaders(connection.headers)

    async def _read(self) -> bytes:
        try:
            return await self._connection.read(self._timeout_s)
        except Exception as error:
            raise self._translate(error) from None

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body, piece by piece, as received."""
        while chunk := await self._read():
            yield chunk

    async def aread(self) -> bytes:
        """The whole body."""
        chunks = []
        while chunk := await self._read():
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Give the connection back (pooled only if the response was read to its end)."""
        if self._pool is not None:
            self._pool.release(self._connection)
            self._pool = None


class Pool:
    """Keep-alive connections for one TLS context, at most `limit` in use or idle."""

    def __init__(self, context: ssl.SSLContext, limit: int, keepalive_s: float) -> None:
        self._context = context
        self._keepalive_s = keepalive_s
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._closed = False

    async def _slot(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        """Take a connection slot, waiting (first come, first served) up to `timeout_s`."""
        if self._free > 0:
            self._free -= 1
            return
        waiter = loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._free_slot()  # handed over just as we gave up: pass it on
            raise

    def _free_slot(self) -> None:
        """Hand the slot to the first live waiter, or put it back."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    async def checkout(
        self, host: str, port: int, resolve: Resolve, timeout_s: float
    ) -> tuple[Connection, bool]:
        """An idle connection to (host, port) if one is fresh, else a new one; and
        whether it was reused."""
        loop = asyncio.get_running_loop()
        await self._slot(loop, timeout_s)
        idle = self._idle.get((host, port))
        now = loop.time()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self._keepalive_s:
                return connection, True
            connection.close()
        try:
            connection = await self._connect(host, port, resolve, timeout_s)
        except BaseException:
            self._free_slot()
            raise
        connection.key = (host, port)
        return connection, False

    async def _connect(
        self, host: str, port: int, resolve: Resolve, timeout_s: float
    ) -> Connection:
        loop = asyncio.get_running_loop()
        error: BaseException | None = None
        async with asyncio.timeout(timeout_s):
            for address, target_port in await resolve(host, port):
                try:
                    _, connection = await loop.create_connection(
                        lambda: Connection(loop), address, target_port,
                        ssl=self._context, server_hostname=host.strip("[]"),
                    )  # fmt: skip
                    return connection
                except OSError as failed:
                    error = failed
        raise error or OSError(f"{host} has no address")

    def release(self, connection: Connection) -> None:
        """Pool `connection` again if it may be reused, else close it; free its slot."""
        connection.active = False
        if connection.reusable and not self._closed:
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.setdefault(connection.key, []).append(connection)
        else:
            connection.close()
        self._free_slot()

    async def aclose(self, grace_s: float = 2.0) -> None:
        """Close every idle connection and wait (at most `grace_s`) until they are
        closed; busy ones close when released."""
        self._closed = True
        idle = [connection for connections in self._idle.values() for connection in connections]
        self._idle.clear()
        for connection in idle:
            connection.close()
        if idle:
            await asyncio.wait([connection.lost for connection in idle], timeout=grace_s)
