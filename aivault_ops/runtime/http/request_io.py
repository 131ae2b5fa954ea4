"""The caller's request as the runtime reads it: token, headers, body; JSON answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any, Final

from aiohttp import web

from aivault_ops.runtime.model import Refusal

JSON_TYPE: Final = "application/json"


def take_token(
    headers: Iterable[tuple[str, str]],
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The consumer token (`Authorization: Bearer` first, else `X-Aivault-Token`) and the
    headers without exactly the one that carried it, so it is never forwarded."""
    items = list(headers)
    for name in ("authorization", "x-aivault-token"):
        for index, (key, value) in enumerate(items):
            token = _token_in(name, key, value)
            if token is not None:
                return token, tuple(items[:index] + items[index + 1 :])
    return None, tuple(items)


def _token_in(name: str, key: str, value: str) -> str | None:
    if key.lower() != name:
        return None
    if name == "x-aivault-token":
        return value.strip()
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def json_response(status: int, data: Any) -> web.Response:
    """A JSON response."""
    return web.Response(status=status, body=json.dumps(data).encode(), content_type=JSON_TYPE)


def method_not_allowed(allowed: str) -> web.Response:
    response = json_response(
        405, {"error": "E-METHOD-NOT-ALLOWED", "message": f"use {allowed} on this route"}
    )
    response.headers["Allow"] = allowed
    return response


async def read_body(request: web.BaseRequest, limit: int, timeout_s: float) -> bytes:
    """Read the request body, stopping at `limit + 1` bytes (413 beyond `limit`).

    Prevents a caller from holding a connection and a request slot by
    trickling its body: the whole body must arrive within `timeout_s` (408).
    """
    if not request.body_exists:  # no timer for the many bodiless requests
        return b""
    length = request.content_length
    if length is not None and length > limit:
        raise _body_too_large(limit)
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_up_to(request, limit)
    except TimeoutError:
        raise Refusal(
            408, "E-REQUEST-TIMEOUT", f"the request body did not arrive within {timeout_s:g} s"
        ) from None


async def _read_up_to(request: web.BaseRequest, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(min(65536, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise _body_too_large(limit)


def _body_too_large(limit: int) -> Refusal:
    return Refusal(413, "E-BODY-TOO-LARGE", f"request body exceeds the limit of {limit} bytes")
