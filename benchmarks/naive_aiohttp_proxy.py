"""The Python peer to beat: aiohttp server + pooled aiohttp client, no policy at all.

python benchmarks/naive_aiohttp_proxy.py PORT UPSTREAM_URL CA_FILE
"""

import ssl
import sys
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

PORT, UPSTREAM, CA_FILE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
INJECTED = {"Authorization": "Bearer sk-naive-proxy-key"}
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def handle(request: web.Request) -> web.Response:
    session = request.app[SESSION]
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "connection")}
    async with session.request(
        request.method, UPSTREAM + request.raw_path, headers={**headers, **INJECTED}
    ) as upstream:
        body = await upstream.read()
    return web.Response(status=upstream.status, body=body, content_type=upstream.content_type)


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    context = ssl.create_default_context(cafile=CA_FILE)
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=256))
    yield
    await app[SESSION].close()


app = web.Application()
app.router.add_route("*", "/{tail:.*}", handle)
app.cleanup_ctx.append(session_ctx)
web.run_app(
    app, host="127.0.0.1", port=PORT, access_log=None, print=None, loop=uvloop.new_event_loop()
)
