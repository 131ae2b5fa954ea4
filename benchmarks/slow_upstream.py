"""A TLS upstream that answers every request after a fixed delay, keep-alive.

    python -m benchmarks.slow_upstream PORT CERT KEY DELAY_S

The slow upstream of `benchmarks.bulkhead`: requests without a body (GET),
a 11-byte JSON answer after `DELAY_S` seconds. Held requests cost it next
to no CPU, so hundreds of them stay open without loading the machine.
"""

from __future__ import annotations

import asyncio
import ssl
import sys

BODY = b'{"ok":true}'
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(delay)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def serve(port: int, cert: str, key: str, delay: float) -> None:
    """Serve on 127.0.0.1:`port` until killed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, delay), "127.0.0.1", port, ssl=context, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    port, cert, key, delay = sys.argv[1:5]
    asyncio.run(serve(int(port), cert, key, float(delay)))
