"""Strict framing of upstream HTTP/1.1 responses: llhttp (httptools) plus the checks it lacks.

`ResponseParser` is fed the bytes of one response at a time, split anywhere,
and keeps what the connection hands on: status, headers, body pieces,
whether the response is complete and whether its connection may be reused.
It does no I/O, so tests can feed it bytes directly.

llhttp, in its strict default mode, already refuses: bare LF and CR
without LF, obs-fold, header names that are not tokens, CR/NUL/other
control characters in header values, duplicate or malformed
Content-Length (signs, lists, overflow), Content-Length together with
Transfer-Encoding, malformed chunk sizes and extensions, and chunk data
not followed by CRLF. On top of that this parser refuses (each a
`ProtocolViolation`, so the answer is never used in part):

- a head (status reason and header fields) over `MAX_HEAD_BYTES`, and
  more than that many bytes of an unfinished head line, chunk line or
  trailer section: nothing is cut and nothing grows without bound;
- a response that does not start with its status line, a version other
  than HTTP/1.1 or HTTP/1.0, a status outside 100-599, a control
  character (but TAB) in the reason phrase, `101 Switching Protocols`
  (100 and other interim 1xx answers are skipped);
- Transfer-Encoding other than one field holding exactly `chunked` (a
  compressing transfer-coding would slip compressed bytes past the secret
  redactor), or any Transfer-Encoding in an HTTP/1.0 response;
- Content-Length or Transfer-Encoding in trailers (trailers are checked,
  counted and dropped: they never join the headers).

Bytes after a complete response are never parsed as the next one: they
set `trailing`, and the connection is closed after this answer. A close
before the end of a Content-Length or chunked body (or of the head) is
`UpstreamClosed`; only a body with neither ends at the close. The work is
O(1) Python calls per header, body piece and response: no per-byte loop.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Final

import httptools

MAX_HEAD_BYTES: Final = 64 * 1024
_VERSIONS: Final = frozenset({"1.1", "1.0"})
_FRAMING_TRAILERS: Final = frozenset({b"content-length", b"transfer-encoding"})
_CONTROL: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class UpstreamClosed(ConnectionResetError):
    """The upstream closed the connection before its answer was complete."""


class ProtocolViolation(ConnectionError):
    """The upstream's bytes are not a well-framed HTTP/1.1 response; `reason` says why
    (fixed text: never the upstream's bytes)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Trailing(Exception):
    """Raised inside a callback to stop llhttp at bytes past the complete response."""


class _InterimEnd(Exception):
    """Raised inside a callback to stop llhttp at the end of an interim (1xx) head."""


class ResponseParser:
    """One connection's response parser; `begin` before each exchange, then `feed`."""

    __slots__ = (
        "_chunked",
        "_framed",
        "_head_bytes",
        "_head_done",
        "_head_request",
        "_http11",
        "_interim",
        "_parser",
        "_pending",
        "_started",
        "_tail",
        "buffered",
        "chunks",
        "complete",
        "headers",
        "keep_alive",
        "status",
        "trailing",
    )

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.begin(head_request=False)

    def begin(self, *, head_request: bool) -> None:
        """Expect a new response (one without a body when it answers a HEAD request)."""
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = self.keep_alive = self.trailing = False
        self._head_request = head_request
        self._head_done = self._started = self._interim = False
        self._chunked = self._framed = self._http11 = False
        self._head_bytes = self._pending = 0
        self._tail = b""

    def take(self) -> bytes:
        """The oldest body piece not yet taken (call only when `chunks` is not empty)."""
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        return chunk

    def feed(self, data: bytes) -> None:
        """Parse the next bytes of the response; `ProtocolViolation` if they break framing."""
        if self.complete:
            self.trailing = self.trailing or bool(data)
            return
        while data:
            data = self._feed_once(data)
        if self._pending > MAX_HEAD_BYTES and not self.complete:
            raise ProtocolViolation(self._overlong())

    def _feed_once(self, data: bytes) -> bytes:
        """Feed llhttp; what is left after an interim head (to parse anew), else b""."""
        if not self._started:
            if data[:1] != b"H":
                raise ProtocolViolation("it does not start with a status line")
            self._started = True
        self._pending += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise ProtocolViolation("it switches protocols (101)") from None
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, _InterimEnd):
                return self._after_interim(data)
            self._failed(error)
        if not self._head_done:
            self._tail = (self._tail + data[-3:])[-3:]
        return b""

    def _after_interim(self, data: bytes) -> bytes:
        """The bytes after an interim head, for a fresh llhttp parser.

        llhttp would skip blank lines before the next status line; stopping
        at each interim head and checking that the next message starts with
        its status line refuses them, as for the first one. The head ends at
        its first empty line (llhttp allows no other line end)."""
        joined = self._tail + data
        end = joined.find(b"\r\n\r\n")
        if end < 0:  # cannot happen with llhttp's strict line ends; never guess
            raise ProtocolViolation("an interim answer's head has no end")
        rest = joined[end + 4 :]
        self._parser = httptools.HttpResponseParser(self)
        self._started, self._tail = False, b""
        self._pending -= len(rest)  # counted again when fed anew
        return rest

    def _failed(self, error: httptools.HttpParserError) -> None:
        """Bytes past the complete response end parsing (`trailing`); anything else is a
        violation, named by our own check or by llhttp's fixed reason text."""
        if self.complete:
            self.trailing = True
            return
        cause = error.__context__
        if isinstance(cause, ProtocolViolation):
            raise cause from None
        reason = str(error).strip().rstrip(".")[:80] or type(error).__name__
        raise ProtocolViolation(f"rejected by the parser ({reason})") from None

    def _overlong(self) -> str:
        if not self._head_done:
            return f"its head exceeds {MAX_HEAD_BYTES} bytes"
        return f"a chunk line or its trailers exceed {MAX_HEAD_BYTES} bytes"

    def feed_eof(self) -> None:
        """The upstream closed cleanly: the end of a body delimited by the close, else
        `UpstreamClosed` (a head or a Content-Length or chunked body cut short)."""
        if self.complete:
            return
        if self._head_done and not (self._framed or self._chunked):
            self.complete = True
            return
        raise UpstreamClosed("the upstream closed the connection before its answer ended")

    # httptools callbacks (llhttp calls them while `feed` runs)
    def on_message_begin(self) -> None:
        if self.complete:
            raise _Trailing()

    def on_status(self, reason: bytes) -> None:
        self._count(len(reason))
        if _CONTROL.search(reason) is not None:
            raise ProtocolViolation("its reason phrase has a control character")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        lower = name.lower()
        if self._head_done:
            self._trailer(lower)
            return
        value = value.rstrip(b" \t")
        if lower == b"transfer-encoding":
            self._transfer_coding(value)
        elif lower == b"content-length":
            self._framed = True
        self.headers.append((name.decode("ascii"), _text(value)))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        self._check_start(status, self._parser.get_http_version())
        if status < 200:
            self.headers, self._chunked, self._framed, self._interim = [], False, False, True
            return
        self.status = status
        self._head_done = True
        self._head_bytes = self._pending = 0
        if self._head_request:
            self.complete = True

    def on_body(self, body: bytes) -> None:
        if self.complete:
            raise _Trailing()  # a body after a HEAD answer
        self._pending = 0
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            raise _InterimEnd()
        if not self.complete:
            self.complete = True
            self.keep_alive = self._http11 and self._parser.should_keep_alive()

    # checks
    def _count(self, size: int) -> None:
        """Prevents an endless or huge head (or trailer section) from being cut or
        growing memory: over `MAX_HEAD_BYTES` the whole answer is refused."""
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise ProtocolViolation(self._overlong())

    def _check_start(self, status: int, version: str) -> None:
        """Refuse what is not an HTTP/1.x answer this client can frame: another version,
        a status outside 100-599, a switch of protocol, chunked framing in HTTP/1.0."""
        if version not in _VERSIONS:
            raise ProtocolViolation("its HTTP version is not 1.1 or 1.0")
        if not 100 <= status <= 599:
            raise ProtocolViolation("its status code is not between 100 and 599")
        if status == 101:
            raise ProtocolViolation("it switches protocols (101)")
        if self._chunked and version == "1.0":
            raise ProtocolViolation("an HTTP/1.0 answer has a Transfer-Encoding")
        self._http11 = version == "1.1"

    def _transfer_coding(self, value: bytes) -> None:
        """Only one Transfer-Encoding field, holding exactly `chunked`.

        Prevents a compressing transfer-coding (gzip, deflate …) from handing
        the redactor compressed bytes, and a body delimited by the close from
        hiding behind an unknown coding."""
        if self._chunked or value.lower() != b"chunked":
            raise ProtocolViolation("its Transfer-Encoding is not exactly one 'chunked'")
        self._chunked = True

    def _trailer(self, lower_name: bytes) -> None:
        """Trailers never change framing (they are dropped after these checks)."""
        if lower_name in _FRAMING_TRAILERS:
            raise ProtocolViolation("a trailer sets Content-Length or Transfer-Encoding")


def _text(value: bytes) -> str:
    """A header value as text: UTF-8, else ISO-8859-1 (RFC 9110's obs-text), so every
    value can be re-encoded for the caller (JSON envelope or wire) and redacted."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")
