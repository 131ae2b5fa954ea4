"""The caller side of the server: connection cap, timeouts, malformed HTTP.

aiohttp's low-level server parses the callers' HTTP; this module adds what
a broker facing hostile callers needs on top of it:

- a cap on concurrent connections per process: one past the cap gets a
  fixed `503 E-TOO-MANY-CONNECTIONS` JSON answer and is closed at once,
  before any parsing, so a flood of idle sockets cannot take every file
  descriptor (and with them the audit log and the upstream connections);
- a header-read timeout: a new connection must deliver a complete request
  head within `header_timeout_s`, however slowly it trickles bytes; later
  requests on a kept-alive connection must arrive within the keep-alive
  idle timeout (aiohttp's own timer, which also covers a half-sent head);
- malformed HTTP (bare LF, duplicate Content-Length, CL+TE, obs-fold, an
  over-long line, a bad method …) is answered with a JSON `400
  E-BAD-REQUEST` and logged as one structured line holding only the error's
  class name: aiohttp's own answer and log would echo the raw request bytes,
  the consumer token included, and its log would carry a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

Log = Callable[..., None]
DEFAULT_HEADER_TIMEOUT_S: Final = 10.0
DEFAULT_KEEPALIVE_TIMEOUT_S: Final = 30.0
DEFAULT_BODY_TIMEOUT_S: Final = 60.0
DEFAULT_SHUTDOWN_GRACE_S: Final = 10.0
RESERVED_DESCRIPTORS: Final = 64
MAX_DEFAULT_CONNECTIONS: Final = 1024
LINGER_S: Final = 2.0

_ERRORS: Final = {
    400: ("E-BAD-REQUEST", "malformed HTTP request"),
    413: ("E-BAD-REQUEST", "request head too large"),
    500: ("E-INTERNAL", "internal error"),
    504: ("E-TIMEOUT", "the request took too long"),
}
_SILENT = logging.getLogger("aivault_ops.runtime.aiohttp")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False


def _fixed_answer(status: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


TOO_MANY_CONNECTIONS: Final = _fixed_answer(
    "503 Service Unavailable",
    "E-TOO-MANY-CONNECTIONS",
    "the runtime has too many open connections; retry later",
)


def default_max_connections(descriptor_limit: int | None = None) -> int:
    """Half the descriptors left after a reserve (the other half is for upstream
    connections), at most `MAX_DEFAULT_CONNECTIONS`, at least 16."""
    if descriptor_limit is None:
        descriptor_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if descriptor_limit == resource.RLIM_INFINITY:
        return MAX_DEFAULT_CONNECTIONS
    spare = (descriptor_limit - RESERVED_DESCRIPTORS) // 2
    return max(16, min(MAX_DEFAULT_CONNECTIONS, spare))


@dataclass(frozen=True)
class ConnectionLimits:
    """`serve`'s caller-side limits (seconds; connections per worker process)."""

    max_connections: int
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    keepalive_timeout_s: float = DEFAULT_KEEPALIVE_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S


class GuardedServer(Server):
    """aiohttp's server with the connection cap, the timeouts and quiet errors."""

    def __init__(
        self, handler: Callable[[web.BaseRequest], Any], *, limits: ConnectionLimits, log: Log
    ) -> None:
        super().__init__(
            handler,
            request_factory=self._request,
            access_log=None,
            logger=_SILENT,
            keepalive_timeout=limits.keepalive_timeout_s,
            lingering_time=LINGER_S,
        )
        self.limits = limits
        self.log = log
        self.open_connections = 0

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)

    def admit(self) -> bool:
        """Count one more connection, unless the cap is reached."""
        if self.open_connections >= self.limits.max_connections:
            return False
        self.open_connections += 1
        return True

    def _request(self, message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
        """aiohttp calls this once a request head is complete."""
        if isinstance(protocol, GuardedRequestHandler):
            protocol.head_received()
        return self._make_request(message, payload, protocol, writer, task)


class GuardedRequestHandler(RequestHandler):
    """One caller connection (see the module docstring for the rules)."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._admitted = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse past the cap with a fixed answer; otherwise start the head timer."""
        if not self._guard.admit():
            writable = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
            writable.write(TOO_MANY_CONNECTIONS)
            writable.close()
            return
        self._admitted = True
        super().connection_made(transport)
        timeout = self._guard.limits.header_timeout_s
        self._head_timer = asyncio.get_running_loop().call_later(timeout, self._head_timeout)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Give the slot back."""
        if not self._admitted:
            return
        self._admitted = False
        self._guard.open_connections -= 1
        self.head_received()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse only on admitted connections."""
        if self._admitted:
            super().data_received(data)

    def head_received(self) -> None:
        """A complete request head arrived: the header-read timer has done its job."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        self._guard.log("header_timeout", seconds=self._guard.limits.header_timeout_s)
        self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A JSON error and one log line with the error's class only (never the request
        bytes aiohttp's message quotes, never a traceback)."""
        code, text = _ERRORS.get(status, _ERRORS[400 if status < 500 else 500])
        event = "bad_request" if status < 500 else "server_error"
        self._guard.log(event, status=status, error=type(exc).__name__ if exc else None)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        response = web.Response(
            status=status,
            body=json.dumps({"error": code, "message": text}).encode(),
            content_type="application/json",
        )
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """aiohttp's internal failures: one structured line, no traceback, no arguments
        (they may quote the request)."""
        error = kwargs.get("exc_info")
        name = type(error).__name__ if isinstance(error, BaseException) else None
        self._guard.log("server_error", error=name)
