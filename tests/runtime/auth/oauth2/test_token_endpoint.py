"""`post_form`: token endpoint requests through the (SSRF-checked) upstream client."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

import httpx

from aivault_ops.runtime.auth.oauth2.token_endpoint import TokenEndpoint, post_form
from aivault_ops.runtime.model import UpstreamRequest


def answer(status: int, body: bytes) -> httpx.Response:
    """A response whose body still streams, as the upstream client returns it."""
    return httpx.Response(status, stream=httpx.ByteStream(body))


class Client:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.sent: list[UpstreamRequest] = []

    async def open(self, request: UpstreamRequest) -> httpx.Response:
        self.sent.append(request)
        return self.response

    async def aclose(self) -> None:
        return None


def test_the_form_goes_to_the_endpoint_host_and_path() -> None:
    client = Client(answer(200, b'{"access_token": "abc"}'))
    form = {"grant_type": "client_credentials", "scope": "a b"}
    status, body = asyncio.run(
        post_form(client, "https://auth.example.com/o/token?tenant=1", form, {"Accept": "x"})
    )
    assert (status, body) == (200, {"access_token": "abc"})
    [sent] = client.sent
    assert (sent.method, sent.host, sent.port, sent.path) == (
        "POST",
        "auth.example.com",
        443,
        "/o/token",
    )
    assert sent.query == (("tenant", "1"),)
    assert ("content-type", "application/x-www-form-urlencoded") in sent.headers
    assert ("Accept", "x") in sent.headers
    assert dict(parse_qsl(sent.body.decode())) == form


def test_an_answer_that_is_not_json_is_none() -> None:
    client = Client(answer(502, b"<html>bad gateway</html>"))
    endpoint = TokenEndpoint(lambda: client)
    assert asyncio.run(endpoint.post_form("https://a.example.com/t", {}, {})) == (502, None)


def test_the_answer_is_read_up_to_64_kib() -> None:
    client = Client(answer(200, b'{"a": "' + b"x" * 100_000 + b'"}'))
    assert asyncio.run(post_form(client, "https://a.example.com/t", {}, {})) == (200, None)
