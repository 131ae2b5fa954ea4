"""What-if variants of the runtime: one hot-path change patched in at start, to measure it.

    python -m benchmarks.variants VARIANT[+VARIANT…] serve ARGS…

Used by the proxy benchmark to put a number on a proposed change before
anyone makes it; never a way to run the runtime (`audit-off` drops the
audit trail). Variants:

- `audit-off`: `AuditLog.record` does nothing — the upper bound of what a
  cheaper audit append (kept-open descriptors, no per-line flock with one
  worker, one write per loop tick) can gain.
- `small-body`: a small identity-encoded body of known length (what
  `should_buffer` lets through) is read with one `aread()` and redacted
  with one stream-redactor pass, instead of the `aiter_raw` → `_decode` →
  `_redact` generator chain of `whole_body`; anything else goes the usual way.
- `reuseport`: with `--workers N`, each worker binds its own listening
  socket with SO_REUSEPORT (the kernel spreads connections over them)
  instead of all workers accepting on one inherited socket.
- `malloc-trim`: after each bundle load, `gc.collect()` and glibc's
  `malloc_trim(0)` hand the load's transient memory back to the OS.
- `raw-aiohttp`: `HttpxUpstream.open` sends through the same pooled
  `aiohttp.ClientSession` directly (no `httpx.Request`, no `httpx_aiohttp`
  translation) and reads the small body at once; the server still gets an
  `httpx.Response`. Same SSRF resolver, TLS context and pool.
"""

from __future__ import annotations

import ctypes
import gc
import socket
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx

from aivault_ops.runtime import audit, loader, upstream
from aivault_ops.runtime.model import UpstreamRequest

_DROPPED = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}
)


class _Body(httpx.AsyncByteStream):
    """A body already read, served once to `aiter_raw`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data


def _audit_off() -> None:
    def record(self: audit.AuditLog, **_: Any) -> None:
        return None

    audit.AuditLog.record = record  # type: ignore[method-assign]


def _raw_aiohttp() -> None:
    async def open_(self: upstream.HttpxUpstream, request: UpstreamRequest) -> httpx.Response:
        upstream.check_literal_host(request.host, self._settings.dev_resolve)
        session = self._get_transport().client
        assert isinstance(session, aiohttp.ClientSession)
        headers = [(k, v) for k, v in request.headers if k.lower() not in _DROPPED]
        headers.append(("accept-encoding", "identity"))
        timeout = aiohttp.ClientTimeout(sock_connect=request.timeout_s, sock_read=request.timeout_s)
        try:
            async with session.request(
                request.method, request.url(), headers=headers, data=request.body or None,
                allow_redirects=False, timeout=timeout,
            ) as response:  # fmt: skip
                body = await response.read()
                raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
        except Exception as error:
            raise upstream.classify_error(error) from None
        return httpx.Response(response.status, headers=raw, stream=_Body(body))

    upstream.HttpxUpstream.open = open_  # type: ignore[method-assign]


def _malloc_trim() -> None:
    original = loader.Loader.load
    libc = ctypes.CDLL("libc.so.6")

    def load(self: loader.Loader, *args: Any, **kwargs: Any) -> loader.Loaded:
        loaded = original(self, *args, **kwargs)
        gc.collect()
        libc.malloc_trim(0)
        return loaded

    loader.Loader.load = load  # type: ignore[method-assign]


def _small_body() -> None:
    from aivault_ops.runtime import response_body, server

    original = server.whole_body  # type: ignore[attr-defined]

    async def whole_body(response: httpx.Response, call: Any) -> bytes:
        length = response.headers.get("content-length", "")
        encoded = response_body.layers(  # type: ignore[attr-defined]
            response.headers.get("content-encoding")
        )
        if call.response_blocklist or encoded or not length.isdigit() or int(length) > 65536:
            return await original(response, call)
        try:
            body = await response.aread()
        except (httpx.HTTPError, OSError) as failure:
            raise upstream.classify_error(failure) from None
        finally:
            await response.aclose()
        redactor = call.body_redactor()
        return bytes(redactor.feed(body) + redactor.flush())

    server.whole_body = whole_body  # type: ignore[attr-defined]


def _reuseport() -> None:
    from aivault_ops.commands import serve

    original_open, original_serve, original_run = (
        serve.open_listeners, serve.serve_forever, serve.run_workers,
    )  # fmt: skip
    address: dict[str, Any] = {}

    def open_listeners(listen: Any, socket_path: Any) -> Any:
        listeners = original_open(listen, socket_path)
        if listeners.tcp is not None:
            address["tcp"] = (listeners.tcp.getsockname()[:2], listeners.tcp.family)
        return listeners

    def run_workers(process: Any, listeners: Any, count: int) -> int:
        if listeners.tcp is not None:
            listeners.tcp.close()
            listeners.tcp = None
        return original_run(process, listeners, count)

    async def serve_forever(process: Any, listeners: Any, until: Any = None) -> None:
        if listeners.tcp is None and "tcp" in address:
            where, family = address["tcp"]
            listeners.tcp = socket.create_server(
                where, family=family, backlog=1024, reuse_port=True
            )
        await original_serve(process, listeners, until)

    serve.open_listeners = open_listeners
    serve.run_workers = run_workers
    serve.serve_forever = serve_forever


VARIANTS: dict[str, Callable[[], None]] = {
    "reuseport": _reuseport,
    "small-body": _small_body,
    "audit-off": _audit_off,
    "raw-aiohttp": _raw_aiohttp,
    "malloc-trim": _malloc_trim,
}


def main(argv: list[str]) -> int:
    """Apply the variants named in argv[0], then run `aivault-ops` with the rest."""
    for name in argv[0].split("+"):
        VARIANTS[name]()
    from aivault_ops.main import main as aivault_main

    return aivault_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
