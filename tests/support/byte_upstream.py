"""A TLS upstream on 127.0.0.1 that answers with byte scripts, for hostile-framing tests.

Each request is answered by `script(connection, number)`: a sequence of
steps, written in order — `bytes` are written as they are, `Pause(s)` waits,
`Drip(data, every_s)` writes one byte at a time, `CLOSE` closes the
connection (TLS close_notify, then FIN), `CUT` sends a bare FIN (no
close_notify: what a truncation looks like). After the last step the server
waits for the next request on the same connection, so a test can see
whether the client reused or closed it (`closed_by_client`).

`ByteUpstream.start()` runs it on the caller's event loop;
`byte_upstream_thread()` runs it on a loop of its own, for a runtime that
has its loop in another thread. Either way it offers `dev_resolve()` and
`ca_file` like `ScriptedUpstream`, so `support.response_runtime.serving`
takes it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trustme

HOST = "api.example.com"
OTHER_HOST = "other.example.com"


@dataclass(frozen=True)
class Pause:
    """Wait `seconds` before the next step."""

    seconds: float


@dataclass(frozen=True)
class Drip:
    """Write `data` one byte at a time, `every_s` apart."""

    data: bytes
    every_s: float


class _Close:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


CLOSE = _Close("CLOSE")
CUT = _Close("CUT")  # a bare TCP FIN, without TLS close_notify (a truncation)
Step = bytes | Pause | Drip | _Close
Script = Callable[[int, int], Sequence[Step]]


def tls_files(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for `HOST` and `OTHER_HOST`, and the file of the CA that issued it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, OTHER_HOST).configure_cert(context)
    ca_file = directory / "byte-upstream-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


@dataclass
class ByteUpstream:
    """The server: its script, what it saw, and which connections the client closed."""

    script: Script
    context: ssl.SSLContext
    ca_file: Path
    port: int = 0
    accepted: int = 0
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    closed_by_client: set[int] = field(default_factory=set)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    def dev_resolve(self, host: str = HOST) -> str:
        """The `--dev-resolve` value sending `host` here."""
        return f"{host}=127.0.0.1:{self.port}"

    async def start(self) -> ByteUpstream:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and end every connection still being served."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def wait_closed_by_client(self, connection: int, bound_s: float = 5.0) -> bool:
        """Whether the client closes `connection` within `bound_s` (polled)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + bound_s
        while connection not in self.closed_by_client and loop.time() < until:
            await asyncio.sleep(0.01)
        return connection in self.closed_by_client

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        connection, number = self.accepted, 0
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while True:
                try:
                    request = await _read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    self.closed_by_client.add(connection)
                    return
                number += 1
                self.requests.append((connection, request))
                if not await self._play(self.script(connection, number), writer):
                    return
        except (ConnectionError, ssl.SSLError):
            self.closed_by_client.add(connection)
        except asyncio.CancelledError:
            pass  # stopped by `stop()`
        finally:
            await _closed(writer)

    async def _play(self, steps: Sequence[Step], writer: asyncio.StreamWriter) -> bool:
        for step in steps:
            if step is CUT:
                _fin(writer)
            elif isinstance(step, _Close):
                return False
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Drip):
                for index in range(len(step.data)):
                    writer.write(step.data[index : index + 1])
                    await writer.drain()
                    await asyncio.sleep(step.every_s)
            else:
                writer.write(step)
                await writer.drain()
        return True


async def _closed(writer: asyncio.StreamWriter) -> None:
    """Close the connection and wait (briefly) until it is, else abort it: a transport
    left half-closed when the loop stops is reported later, in whichever test runs."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (TimeoutError, ConnectionError, ssl.SSLError, asyncio.CancelledError):
        writer.transport.abort()


def _fin(writer: asyncio.StreamWriter) -> None:
    """Shut the TCP write side under the TLS layer (uvloop hides the socket's own)."""
    raw = socket.socket(fileno=os.dup(writer.get_extra_info("socket").fileno()))
    raw.shutdown(socket.SHUT_WR)
    raw.close()


@contextmanager
def byte_upstream_thread(directory: Path, script: Script) -> Iterator[ByteUpstream]:
    """A `ByteUpstream` served by an event loop in a thread for the block's duration."""
    context, ca_file = tls_files(directory)
    upstream = ByteUpstream(script, context, ca_file)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(upstream.start(), loop).result(timeout=10)
    try:
        yield upstream
    finally:
        asyncio.run_coroutine_threadsafe(upstream.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
