"""Any aiohttp handler served over TLS on 127.0.0.1 in a thread (trustme certificates).

Unlike `upstream.py` (a fixed recording upstream), the test brings the
handler: an upstream that recomputes a signature, a token endpoint, a chat
completions API. With `client_ca`, the server asks for a client certificate
signed by that CA (optional or required) and handlers read the one
presented with `peer_common_name(request)`.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import trustme
from aiohttp import web
from support.runtime_proc import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class TlsApp:
    """A running TLS server: its port and the CA its certificate chains to."""

    port: int
    ca_file: Path

    def dev_resolve(self, host: str) -> str:
        """The `--dev-resolve` value sending `host` here."""
        return f"{host}=127.0.0.1:{self.port}"


def peer_common_name(request: web.Request) -> str | None:
    """The CN of the client certificate presented on this connection, if any."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _server_context(
    ca: trustme.CA, hosts: tuple[str, ...], client_ca: trustme.CA | None, required: bool
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hosts).configure_cert(context)
    if client_ca is not None:
        context.load_verify_locations(cadata=client_ca.cert_pem.bytes().decode())
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    return context


@contextmanager
def tls_app(
    directory: Path,
    handler: Handler,
    hosts: tuple[str, ...],
    *,
    client_ca: trustme.CA | None = None,
    require_client_cert: bool = False,
) -> Iterator[TlsApp]:
    """Serve `handler` for every path over TLS for the duration of the block."""
    ca = trustme.CA()
    port = free_port()
    ca_file = directory / f"tls-app-ca-{port}.pem"  # one per server: several may share a dir
    ca.cert_pem.write_to_path(str(ca_file))
    context = _server_context(ca, hosts, client_ca, require_client_cert)
    app = TlsApp(port, ca_file)
    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []

    async def start() -> None:
        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", app.port, ssl_context=context).start()
        runners.append(runner)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield app
    finally:
        asyncio.run_coroutine_threadsafe(_stop(runners[0]), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _stop(runner: web.AppRunner) -> None:
    """Clean up, then abort what is still open: a TLS connection a client kept open
    would otherwise wait for the client's close_notify after the loop has stopped, and
    its socket be left for the garbage collector to warn about during a later test."""
    server = runner.server
    transports = [] if server is None else [conn.transport for conn in server.connections]
    await runner.cleanup()
    for transport in transports:
        if transport is not None:
            transport.abort()
    await asyncio.sleep(0)  # the aborts' close callbacks run before this returns
