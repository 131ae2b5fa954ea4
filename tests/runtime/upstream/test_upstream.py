"""The upstream client: SSRF rule on connected addresses, dev-resolve, TLS, failures."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import weakref
from dataclasses import replace
from pathlib import Path

import pytest
from support.runtime_proc import free_port
from support.upstream import HOST, RecordingUpstream

from aivault_ops.errors import UsageError
from aivault_ops.runtime.auth.request_auth import ClientTls
from aivault_ops.runtime.model import UpstreamRequest
from aivault_ops.runtime.upstream.client import (
    DevResolve,
    Http1Upstream,
    UpstreamFailure,
    UpstreamSettings,
    is_forbidden_address,
    ssl_context,
)
from aivault_ops.runtime.upstream.http1 import UnsendableRequest, UpstreamClosed

FORBIDDEN = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "2002:7f00:1::1",
    "2001:db8::1",
]
PUBLIC = ["8.8.8.8", "93.184.216.34", "100.128.0.1", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_forbidden_ranges_are_refused(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden_address(ipaddress.ip_address(address))


def test_dev_resolve_parses_ipv4_and_ipv6() -> None:
    parsed = DevResolve.parse(["API.example.com=127.0.0.1:8443", "v6.example.com=[::1]:9443"])
    assert parsed.targets == {
        "api.example.com": ("127.0.0.1", 8443),
        "v6.example.com": ("::1", 9443),
    }


@pytest.mark.parametrize(
    "value", ["api.example.com", "=127.0.0.1:1", "h=127.0.0.1", "h=nothost:1", "h=127.0.0.1:0"]
)
def test_dev_resolve_refuses_malformed_values(value: str) -> None:
    with pytest.raises(UsageError) as caught:
        DevResolve.parse([value])
    assert caught.value.message == f"--dev-resolve {value!r}: expected HOST=IP:PORT"


def request(path: str, *, host: str = HOST, timeout_s: float = 5.0) -> UpstreamRequest:
    return UpstreamRequest(
        method="GET",
        host=host,
        port=443,
        path=path,
        query=(("q", "1"),),
        headers=(("x-test", "yes"), ("authorization", "Bearer injected")),
        body=b"",
        timeout_s=timeout_s,
    )


def send(settings: UpstreamSettings, outgoing: UpstreamRequest) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        client = Http1Upstream(settings)
        try:
            response = await client.open(outgoing)
            body = await response.aread()
            await response.aclose()
            return response.status_code, body
        finally:
            await client.aclose()
            await drain_transports()

    return asyncio.run(go())


async def drain_transports() -> None:
    """Let TLS close_notify exchanges of dropped connections finish before the loop closes.

    Cleanup only (bounded): a connection cut by a timeout is still shutting
    down TLS when the test's loop would close, which warns about an unclosed
    transport. Reads the selector loop's private transport table.
    """
    loop = asyncio.get_running_loop()
    for _ in range(100):
        transports = list(getattr(loop, "_transports", {}).values())
        if all(t is None or t.is_closing() for t in transports):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0)


async def abort_transports() -> None:
    """Abort every transport of this loop, even those still shutting TLS down (reads the
    selector loop's private transport table)."""
    for transport in list(getattr(asyncio.get_running_loop(), "_transports", {}).values()):
        if transport is not None:
            transport.abort()
    for _ in range(3):
        await asyncio.sleep(0)  # their connection_lost callbacks


def failure(settings: UpstreamSettings, outgoing: UpstreamRequest) -> UpstreamFailure:
    with pytest.raises(UpstreamFailure) as caught:
        send(settings, outgoing)
    return caught.value


def dev_settings(upstream: RecordingUpstream, ca: Path | None = None) -> UpstreamSettings:
    return UpstreamSettings(
        dev_resolve=DevResolve.parse([upstream.dev_resolve()]),
        dev_ca_cert=ca or upstream.ca_file,
    )


def test_request_reaches_the_dev_resolved_tls_upstream(upstream: RecordingUpstream) -> None:
    status, body = send(dev_settings(upstream), request("/v1/users/7"))
    assert status == 200
    assert b'"path": "/v1/users/7"' in body
    [seen] = upstream.seen
    assert (seen.path, seen.query) == ("/v1/users/7", (("q", "1"),))
    assert seen.header("authorization") == "Bearer injected"
    assert seen.header("accept-encoding") == "identity"
    assert seen.header("host") == HOST


def test_a_client_certificate_pool_goes_with_its_last_connection(
    upstream: RecordingUpstream,
) -> None:
    """A rotated-away mTLS credential's pool (and the key in its context) is freed."""
    settings = replace(dev_settings(upstream), keepalive_s=0.0)  # idle: reaped at once

    async def go() -> None:
        client = Http1Upstream(settings)
        try:
            tls = ClientTls("rotated-away", ssl_context(settings))
            context = weakref.ref(tls.context)
            for _ in range(2):  # the second request makes the pool again
                response = await client.open(replace(request("/v1/a"), tls=tls))
                assert response.status_code == 200
                assert b'"path": "/v1/a"' in await response.aread()
                await response.aclose()
                assert client.connections() == (0, 1)
                while client.connections() != (0, 0):
                    await asyncio.sleep(0)  # the reaper's turn
            del tls, response
            await abort_transports()  # a closing TLS transport keeps its context for up to 30 s
            gc.collect()
            assert context() is None
        finally:
            await client.aclose()
            await drain_transports()

    asyncio.run(go())


def test_redirects_are_returned_not_followed(upstream: RecordingUpstream) -> None:
    status, _ = send(dev_settings(upstream), request("/v1/users/redirect"))
    assert status == 302
    assert len(upstream.seen) == 1


def test_wrong_ca_is_a_tls_error(upstream: RecordingUpstream, tmp_path: Path) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    error = failure(dev_settings(upstream, other), request("/v1/users"))
    assert (error.status, error.code) == (502, "E-UPSTREAM-TLS")
    assert upstream.seen == []


def test_name_resolving_to_loopback_is_refused_without_dev_resolve(
    upstream: RecordingUpstream,
) -> None:
    error = failure(UpstreamSettings(dev_ca_cert=upstream.ca_file), request("/", host="localhost"))
    assert (error.status, error.code) == (403, "E-UPSTREAM-FORBIDDEN")
    assert upstream.seen == []


def test_dev_resolve_of_another_host_does_not_open_this_one(upstream: RecordingUpstream) -> None:
    settings = dev_settings(upstream)
    error = failure(settings, request("/", host="localhost"))
    assert error.code == "E-UPSTREAM-FORBIDDEN"


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "[::1]", "169.254.169.254"])
def test_ip_literal_hosts_are_checked_too(host: str) -> None:
    error = failure(UpstreamSettings(), request("/", host=host))
    assert (error.status, error.code) == (403, "E-UPSTREAM-FORBIDDEN")


def test_refused_connection_is_unreachable(upstream: RecordingUpstream) -> None:
    settings = UpstreamSettings(dev_resolve=DevResolve.parse([f"{HOST}=127.0.0.1:{free_port()}"]))
    error = failure(settings, request("/v1/users"))
    assert (error.status, error.code) == (502, "E-UPSTREAM-UNREACHABLE")
    assert error.to_json() == {
        "error": "E-UPSTREAM-UNREACHABLE",
        "message": "the upstream could not be reached",
    }


def test_reset_connection_is_reported(upstream: RecordingUpstream) -> None:
    error = failure(dev_settings(upstream), request("/v1/users/reset"))
    assert (error.status, error.code) == (502, "E-UPSTREAM-RESET")


def test_slow_upstream_times_out(upstream: RecordingUpstream) -> None:
    error = failure(dev_settings(upstream), request("/v1/users/slow", timeout_s=0.3))
    assert (error.status, error.code) == (504, "E-UPSTREAM-TIMEOUT")


def test_caller_framing_headers_are_not_forwarded(upstream: RecordingUpstream) -> None:
    outgoing = UpstreamRequest(
        method="POST",
        host=HOST,
        port=443,
        path="/v1/users",
        query=(),
        headers=(("Host", "evil.example"), ("Content-Length", "1"), ("Accept-Encoding", "gzip")),
        body=b"hello",
        timeout_s=5,
    )
    status, _ = send(dev_settings(upstream), outgoing)
    assert status == 200
    [seen] = upstream.seen
    assert (seen.header("host"), seen.body) == (HOST, b"hello")
    assert seen.header("accept-encoding") == "identity"


def test_unreadable_dev_ca_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        Http1Upstream(UpstreamSettings(dev_ca_cert=tmp_path / "missing.pem"))


def test_no_cookie_is_kept_between_requests(upstream: RecordingUpstream) -> None:
    async def go() -> None:
        client = Http1Upstream(dev_settings(upstream))
        try:
            for path in ("/v1/users/cookie", "/v1/users"):
                response = await client.open(request(path))
                await response.aread()
                await response.aclose()
        finally:
            await client.aclose()

    asyncio.run(go())
    assert [seen.header("cookie") for seen in upstream.seen] == [None, None]


def test_read_errors_mid_body_are_classified() -> None:
    from aivault_ops.runtime.upstream.client import classify_error

    assert classify_error(UpstreamClosed("boom")).code == "E-UPSTREAM-RESET"
    assert classify_error(TimeoutError("slow")).code == "E-UPSTREAM-TIMEOUT"
    assert classify_error(UnsendableRequest("crlf")).code == "E-UPSTREAM-REQUEST"


def test_the_path_goes_on_the_wire_exactly_as_policy_built_it(upstream: RecordingUpstream) -> None:
    """No re-quoting: a signer signs these bytes, so the client must not normalise them."""
    path = "/v1/users/%41b%2Fc%7e;x=1"
    assert send(dev_settings(upstream), request(path))[0] == 200
    assert upstream.seen[-1].path == path
