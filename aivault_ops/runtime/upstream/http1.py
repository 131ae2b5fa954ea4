"""The upstream hot path: a small HTTP/1.1 client over TLS on the event loop,
parsing responses with httptools (llhttp, Node.js's parser).

Why not aiohttp's client: measured in `benchmarks/` (a `lean-client`
what-if variant before this module existed), its generic request machinery
(per-request `ClientRequest`/`ClientResponse` objects, tracing hooks,
timers, cookie and redirect handling the runtime never uses) cost ~40 % of
the runtime's CPU per request. This client does only what the runtime
needs:

- the request head is written as built: the target is not re-quoted, and a
  header name that is not a token or a value with CR, LF or NUL is refused
  before anything is sent (no header injection);
- the response is framed strictly by `http1_parser` (what it refuses is
  listed there): any framing problem is a `ProtocolViolation`, the exchange
  fails and its connection is closed; the answer is never used in part,
  and bytes after a complete answer are never read as the next one (the
  connection is closed instead);
- the response body is handed over as it arrives (reading pauses above
  256 KiB buffered);
- deadlines: the caller's deadline covers the wait for a pool slot, the
  connect (TLS handshake included), the write and the whole response head;
  then each body read may wait at most the capability's timeout, and the
  whole body must end within `body_timeout_s` (`BodyTimeout`), so an
  upstream dripping bytes cannot hold a connection indefinitely;
- keep-alive pools (`http1_pool`) and, in `upstream.py`, the retry of a
  reused connection the upstream closed before answering (idempotent
  methods only).

Errors are OSError/TimeoutError subclasses (`classify_error` gives the
stable code); a connection is pooled again only after a complete,
keep-alive HTTP/1.1 response with nothing after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Final

from aivault_ops.runtime.policy.checks.names import TOKEN
from aivault_ops.runtime.upstream.http1_parser import ProtocolViolation as ProtocolViolation
from aivault_ops.runtime.upstream.http1_parser import ResponseParser
from aivault_ops.runtime.upstream.http1_parser import UpstreamClosed as UpstreamClosed
from aivault_ops.secret import Secret

HIGH_WATER: Final = 256 * 1024
LOW_WATER: Final = 64 * 1024
DEFAULT_BODY_TIMEOUT_S: Final = 600.0
IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_DEFAULT_HEADERS: Final = (("user-agent", "aivault-ops"), ("accept", "*/*"))


class UnsendableRequest(ValueError):
    """A header name that is not a token, or a line break or NUL in the request head."""


class BodyTimeout(TimeoutError):
    """The response body did not end within the body time limit."""


def request_head(
    method: str,
    authority: str,
    target: str,
    headers: Iterable[tuple[str, str | Secret]],
    body_length: int,
) -> bytes:
    """The request line and headers, CRLF-terminated; `UnsendableRequest` if any part
    could break out of its line. Injected header values (`Secret`) are revealed here,
    as the head is written, and nowhere else on the request path."""
    lines = [f"{method} {target} HTTP/1.1", f"host: {authority}"]
    given: set[str] = set()
    for name, value in headers:
        if TOKEN.fullmatch(name) is None:
            raise UnsendableRequest("a request header name is not a valid HTTP token")
        lines.append(f"{name}: {value if isinstance(value, str) else value.reveal_text()}")
        given.add(name.lower())
    lines += [f"{name}: {value}" for name, value in _DEFAULT_HEADERS if name not in given]
    if body_length or method in _BODY_METHODS:
        lines.append(f"content-length: {body_length}")
    block = "\n".join(lines)
    if block.count("\n") != len(lines) - 1 or "\r" in block or "\0" in block:
        raise UnsendableRequest("the request head contains a line break or NUL")
    if TOKEN.fullmatch(method) is None or " " in target:
        raise UnsendableRequest("the request method or target is malformed")
    return (block.replace("\n", "\r\n") + "\r\n\r\n").encode("utf-8", "surrogateescape")


class ResponseHeaders:
    """Response headers in order; case-insensitive `get` joins repeated fields with ", "
    (RFC 9110 §5.3, as httpx does), so a second `Content-Encoding` is never missed."""

    __slots__ = ("_items", "_joined")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        joined: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            joined[key] = joined[key] + ", " + value if key in joined else value
        self._joined = joined

    def get(self, key: str, default: Any = None) -> Any:
        """Every value of `key`, joined with ", ", or `default`."""
        return self._joined.get(key.lower(), default)

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) as received."""
        return list(self._items)


def _expire(connection: Connection, body_limit_s: float | None) -> None:
    if body_limit_s is None:
        connection.fail(TimeoutError("the upstream did not answer in time"))
    else:
        limit = f"{body_limit_s:g}"
        connection.fail(BodyTimeout(f"the upstream response body did not end within {limit} s"))


class Connection(asyncio.Protocol):
    """One upstream connection, one exchange at a time (no pipelining)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.parser = ResponseParser()
        self.transport: Any = None  # uvloop's SSL transport is not an asyncio.Transport
        self.closed = False
        self.active = False
        self.received_any = False
        self.idle_since = 0.0
        self.key: tuple[str, int] = ("", 0)
        self.on_idle_lost: Callable[[Connection], None] | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._close_notify = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.active:
            self.close()  # an idle connection has nothing to say: drop it
            return
        self.received_any = True
        if self._error is not None:
            return
        parser = self.parser
        try:
            parser.feed(data)
        except ConnectionError as error:
            self.fail(error)
            return
        if parser.trailing:
            self.close()  # the answer is whole; what follows is never read
        elif parser.buffered > HIGH_WATER and not self._paused:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> None:
        """The TLS layer read the upstream's close_notify (uvloop calls this only then:
        a bare TCP FIN goes straight to `connection_lost`)."""
        self._close_notify = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.active:
            if self.on_idle_lost is not None:
                self.on_idle_lost(self)
            return
        if self._error is None:
            try:
                self._end_of_stream(exc)
            except ConnectionError as error:
                self._error = error
        self._wake()

    def _end_of_stream(self, exc: Exception | None) -> None:
        """Prevents a truncated body from passing as whole: a body that ends at the
        close is complete only after TLS close_notify (RFC 9112 §9.8); a bare FIN or
        a reset is `UpstreamClosed`, as is any close before a framed body's end."""
        if exc is not None or not (self._close_notify or self.parser.complete):
            raise UpstreamClosed("the upstream closed the connection")
        self.parser.feed_eof()

    def fail(self, error: BaseException) -> None:
        """End the exchange with `error` and close the connection."""
        if self._error is None:
            self._error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self, at: float, body_limit_s: float | None = None) -> None:
        """Until the parser has news, or fail at loop time `at` (with `BodyTimeout` when
        `at` is the end of the body time limit `body_limit_s`)."""
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_at(at, _expire, self, body_limit_s)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def send(self, data: bytes, *, head_request: bool, deadline: float) -> None:
        """Write one request and wait for the whole response head, until `deadline`."""
        self.parser.begin(head_request=head_request)
        self.active, self.received_any = True, False
        if self.closed:
            raise UpstreamClosed("the upstream closed the connection")
        self.transport.write(data)
        while self._error is None and not self.parser.status:
            await self._wait(deadline)
        if self._error is not None:
            raise self._error

    async def read(self, idle_s: float, deadline: float, body_timeout_s: float) -> bytes:
        """The next piece of the body as it arrived; b"" at its end. Waits at most
        `idle_s` for it, and never past `deadline` (`BodyTimeout`)."""
        parser = self.parser
        while True:
            if self._error is not None:
                raise self._error
            if parser.chunks:
                chunk = parser.take()
                if self._paused and parser.buffered <= LOW_WATER:
                    self._paused = False
                    self.transport.resume_reading()
                return chunk
            if parser.complete:
                return b""
            idle_at = self._loop.time() + idle_s
            if idle_at < deadline:
                await self._wait(idle_at)
            else:
                await self._wait(deadline, body_timeout_s)

    @property
    def reusable(self) -> bool:
        """Whole response read, keep-alive HTTP/1.1, nothing after it, still open."""
        parser = self.parser
        return (
            parser.keep_alive
            and not parser.trailing
            and not parser.chunks
            and self._error is None
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

    __slots__ = (
        "_body_timeout_s",
        "_connection",
        "_deadline",
        "_idle_s",
        "_release",
        "_translate",
        "headers",
        "status_code",
    )

    def __init__(
        self,
        connection: Connection,
        release: Callable[[Connection], None],
        timeouts: tuple[float, float],
        translate: Callable[[Exception], Exception],
    ) -> None:
        self._connection = connection
        self._release: Callable[[Connection], None] | None = release
        self._idle_s, self._body_timeout_s = timeouts
        self._deadline = asyncio.get_running_loop().time() + self._body_timeout_s
        self._translate = translate
        self.status_code = connection.parser.status
        self.headers = ResponseHeaders(connection.parser.headers)

    async def _read(self) -> bytes:
        try:
            return await self._connection.read(self._idle_s, self._deadline, self._body_timeout_s)
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
        if self._release is not None:
            self._release(self._connection)
            self._release = None
