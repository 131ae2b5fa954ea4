"""Token endpoint calls (o_auth2) through the same SSRF-checked client as any upstream."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from aivault_ops.runtime.auth.base import FormValues
from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.upstream.client import HTTPS_PORT, UpstreamClient, UpstreamResponse
from aivault_ops.secret import wire_text

TOKEN_RESPONSE_LIMIT: Final = 64 * 1024
TOKEN_TIMEOUT_S: Final = 30.0


async def post_form(
    client: UpstreamClient, url: str, form: FormValues, headers: FormValues
) -> tuple[int, Any]:
    """POST a form to a token endpoint through `client` (SSRF-checked, no redirects).

    Returns the status and the JSON answer (None when not JSON); the answer
    is read up to 64 KiB. `url` was checked when the policy loaded (https,
    port 443, one of the credential's hosts). The form's secrets are revealed
    here, into the request body; the headers' as the request head is written.
    """
    parts = urlsplit(url)
    request = UpstreamRequest(
        method="POST",
        host=parts.hostname or "",
        port=parts.port or HTTPS_PORT,
        path=parts.path or "/",
        query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
        headers=(*headers.items(), ("content-type", "application/x-www-form-urlencoded")),
        body=urlencode({name: wire_text(value) for name, value in form.items()}).encode(),
        timeout_s=TOKEN_TIMEOUT_S,
    )
    response = await client.open(request)
    try:
        body = await _read_capped(response, TOKEN_RESPONSE_LIMIT)
    finally:
        await response.aclose()
    try:
        return response.status_code, json.loads(body)
    except ValueError:
        return response.status_code, None


async def _read_capped(response: UpstreamResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            break
        chunks.append(chunk)
    return b"".join(chunks)


class TokenEndpoint:
    """`post_form` over the upstream client installed later (its pool needs the event loop)."""

    def __init__(self, client: Callable[[], UpstreamClient]) -> None:
        self._client = client

    async def post_form(self, url: str, form: FormValues, headers: FormValues) -> tuple[int, Any]:
        """See `post_form`."""
        return await post_form(self._client(), url, form, headers)
