"""The runtime over real HTTP: a subprocess, a TLS upstream that records, real bundles.

Every refusal asserts both the error and that nothing reached the upstream;
every response is scanned for the canary secret.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.bundles import CANARY, OTHER_TOKEN, TOKEN, BundleFactory
from support.inprocess import InProcessRuntime
from support.runtime_proc import RuntimeProcess, StartRuntime, free_port, scan_tree, wait_until
from support.upstream import HOST, RecordingUpstream

from aivault_ops.runtime.observe.audit_verify import verify_chain

AUTH = {"Authorization": f"Bearer {TOKEN}"}
Runtime = RuntimeProcess | InProcessRuntime


def clean(response: httpx.Response) -> httpx.Response:
    """Assert the canary is nowhere in the response; return it."""
    assert CANARY not in response.text
    assert all(CANARY not in f"{k}: {v}" for k, v in response.headers.multi_items())
    return response


def get(runtime: Runtime, path: str, **kwargs: Any) -> httpx.Response:
    return clean(httpx.request(kwargs.pop("method", "GET"), runtime.url + path, **kwargs))


def envelope(runtime: Runtime, request: dict[str, Any], **kwargs: Any) -> httpx.Response:
    body = {"capability": kwargs.pop("capability", "my-api/users"), "request": request}
    headers = kwargs.pop("headers", AUTH)
    return clean(httpx.post(runtime.url + "/aivault/proxy", json=body, headers=headers, **kwargs))


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    assert data["error"] == code
    assert set(data) == {"error", "message"}
    assert "Traceback" not in response.text
    return data


@pytest.fixture(params=["subprocess", "inprocess"])
def runtime(
    request: pytest.FixtureRequest,
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
    tmp_path: Path,
) -> Iterator[RuntimeProcess | InProcessRuntime]:
    """The runtime as a subprocess, and the same code served in this process (for coverage)."""
    factory.publish(
        bundle_dir,
        1,
        limits={"maxRequestBodyBytes": 64, "maxResponseBodyBytes": 4096, "timeoutMs": 800},
    )
    if request.param == "subprocess":
        yield start_runtime()
        return
    options = {
        "identity": factory.identity,
        "trust": [factory.trust],
        "dev_resolve": [upstream.dev_resolve()],
        "dev_ca_cert": upstream.ca_file,
    }
    inprocess = InProcessRuntime(bundle_dir, tmp_path / "state", options).start()
    yield inprocess
    assert inprocess.stop() == 0
    assert CANARY not in inprocess.log()
    assert scan_tree(tmp_path / "state", CANARY) == []


def test_passthrough_injects_the_credential_and_never_forwards_the_token(
    runtime: Runtime, upstream: RecordingUpstream
) -> None:
    response = get(runtime, "/v/my-api/v1/users/7?page=2", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "path": "/v1/users/7", "method": "GET"}
    [seen] = upstream.seen
    assert seen.header("authorization") == f"Bearer {CANARY}"
    assert TOKEN not in repr(seen)
    assert seen.query == (("page", "2"),)


def test_x_aivault_token_header_works_and_is_not_forwarded(
    runtime: Runtime, upstream: RecordingUpstream
) -> None:
    response = get(runtime, "/v/my-api/v1/users", headers={"X-Aivault-Token": TOKEN})
    assert response.status_code == 200
    assert TOKEN not in repr(upstream.seen)


def test_envelope_call_returns_status_headers_and_body(
    runtime: Runtime, upstream: RecordingUpstream
) -> None:
    request = {"method": "POST", "path": "/v1/users", "query": {"a": "1"}, "body": "hi"}
    response = envelope(runtime, request)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == 200
    assert json.loads(answer["body"])["method"] == "POST"
    assert upstream.seen[0].body == b"hi"
    assert upstream.seen[0].header("authorization") == f"Bearer {CANARY}"


@pytest.mark.parametrize("mode", ["passthrough", "envelope"])
def test_an_echoed_secret_is_redacted(
    runtime: Runtime, upstream: RecordingUpstream, mode: str
) -> None:
    if mode == "passthrough":
        response = get(runtime, "/v/my-api/v1/users/echo", headers=AUTH)
    else:
        response = envelope(runtime, {"method": "GET", "path": "/v1/users/echo"})
    assert response.status_code == 200
    assert "[REDACTED]" in response.text
    assert upstream.seen[0].header("authorization") == f"Bearer {CANARY}"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "E-UNAUTHENTICATED"),
        ({"Authorization": "Bearer wrong-token"}, 401, "E-UNAUTHENTICATED"),
        ({"Authorization": f"Bearer {OTHER_TOKEN}"}, 403, "E-FORBIDDEN"),
    ],
)
@pytest.mark.parametrize("mode", ["passthrough", "envelope"])
def test_callers_without_a_grant_are_refused(
    runtime: Runtime,
    upstream: RecordingUpstream,
    headers: dict[str, str],
    status: int,
    code: str,
    mode: str,
) -> None:
    if mode == "passthrough":
        response = get(runtime, "/v/my-api/v1/users", headers=headers)
    else:
        response = envelope(runtime, {"method": "GET", "path": "/v1/users"}, headers=headers)
    refused(response, status, code)
    assert upstream.seen == []


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("DELETE", "/v/my-api/v1/users/7", 405, "E-METHOD-NOT-ALLOWED"),
        ("GET", "/v/my-api/v1/usersX", 404, "E-NO-CAPABILITY"),
        ("GET", "/v/my-api/v1/admin", 404, "E-NO-CAPABILITY"),
        ("GET", "/v/nope/v1/users", 404, "E-CREDENTIAL-UNKNOWN"),
    ],
)
def test_passthrough_routing_refusals(
    runtime: Runtime,
    upstream: RecordingUpstream,
    method: str,
    path: str,
    status: int,
    code: str,
) -> None:
    refused(get(runtime, path, method=method, headers=AUTH), status, code)
    assert upstream.seen == []


@pytest.mark.parametrize(
    "path",
    [
        "/v/my-api/v1/users/..%2f..%2fadmin",
        "/v/my-api/v1/users/%2e%2e/admin",
        "/v/my-api/v1/users/%252e%252e/admin",
        "/v/my-api/v1/users/a%5cb",
        "/v/my-api/v1/users/a%00b",
    ],
)
def test_traversal_is_refused_and_nothing_is_sent(
    runtime: Runtime, upstream: RecordingUpstream, path: str
) -> None:
    response = get(runtime, path, headers=AUTH)
    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"error", "message"}
    assert upstream.seen == []


@pytest.mark.parametrize("name", ["Cookie", "X-Api-Key", "Proxy-Authorization", "X-Aivault-Token"])
def test_caller_auth_class_headers_are_refused(
    runtime: Runtime, upstream: RecordingUpstream, name: str
) -> None:
    response = get(runtime, "/v/my-api/v1/users", headers={**AUTH, name: "caller-value"})
    assert 400 <= response.status_code < 500
    assert upstream.seen == []


def test_envelope_may_not_carry_an_authorization_header(
    runtime: Runtime, upstream: RecordingUpstream
) -> None:
    request = {"method": "GET", "path": "/v1/users", "headers": {"Authorization": "Bearer x"}}
    response = envelope(runtime, request)
    assert 400 <= response.status_code < 500
    assert upstream.seen == []


def test_request_body_over_the_limit_is_refused_before_sending(
    runtime: Runtime, upstream: RecordingUpstream
) -> None:
    response = get(runtime, "/v/my-api/v1/users", method="POST", headers=AUTH, content=b"x" * 65)
    refused(response, 413, "E-BODY-TOO-LARGE")
    assert upstream.seen == []


def test_malformed_envelope_is_a_400(runtime: Runtime, upstream: RecordingUpstream) -> None:
    response = clean(httpx.post(runtime.url + "/aivault/proxy", content=b"{not json", headers=AUTH))
    assert response.status_code == 400
    assert upstream.seen == []


def test_upstream_timeout_is_a_504(runtime: Runtime, upstream: RecordingUpstream) -> None:
    refused(get(runtime, "/v/my-api/v1/users/slow", headers=AUTH), 504, "E-UPSTREAM-TIMEOUT")


def test_upstream_reset_is_a_502(runtime: Runtime) -> None:
    refused(get(runtime, "/v/my-api/v1/users/reset", headers=AUTH), 502, "E-UPSTREAM-RESET")


def test_response_over_the_limit_is_cut(runtime: Runtime, upstream: RecordingUpstream) -> None:
    request = {"method": "POST", "path": "/v1/users/echo", "body": "y" * 60}
    response = envelope(runtime, {**request, "headers": {"x-pad": "z" * 4096}})
    refused(response, 502, "E-RESPONSE-TOO-LARGE")


def test_redirect_is_passed_back_not_followed(
    runtime: Runtime, upstream: RecordingUpstream
) -> None:
    response = get(runtime, "/v/my-api/v1/users/redirect", headers=AUTH, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "https://elsewhere.example.org/steal"
    assert len(upstream.seen) == 1


def test_set_cookie_is_stripped(runtime: Runtime) -> None:
    response = get(runtime, "/v/my-api/v1/users/cookie", headers=AUTH)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


def test_sse_first_event_arrives_before_the_upstream_finishes(
    runtime: Runtime, upstream: RecordingUpstream
) -> None:
    with httpx.stream("GET", runtime.url + "/v/my-api/v1/users/sse", headers=AUTH) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = response.iter_raw()
        first = next(chunks)
        assert first == b"data: first\n\n"
        assert not upstream.sse_release.is_set()
        upstream.sse_release.set()
        rest = b"".join(chunks)
    assert rest == b"data: second\n\n"


def test_admin_routes(runtime: Runtime) -> None:
    assert get(runtime, "/healthz").json() == {"ok": True}
    status = get(runtime, "/status").json()
    assert (status["state"], status["serial"], status["revision"]) == ("ready", 1, "rev-1")
    assert status["counts"] == {"providers": 1, "credentials": 1, "capabilities": 1, "consumers": 2}
    refused(get(runtime, "/nope"), 404, "E-NOT-FOUND")
    refused(get(runtime, "/aivault/proxy"), 405, "E-METHOD-NOT-ALLOWED")
    refused(get(runtime, "/status", method="POST"), 405, "E-METHOD-NOT-ALLOWED")


def test_metrics_count_decisions(runtime: Runtime) -> None:
    get(runtime, "/v/my-api/v1/users", headers=AUTH)
    get(runtime, "/v/my-api/v1/users", headers={})
    for made_up in ("acme/x1", "acme/x2", "x\ny"):
        envelope(runtime, {"method": "GET", "path": "/v1/users"}, capability=made_up)
    text = get(runtime, "/metrics").text
    assert 'aivault_requests_total{capability="my-api/users",decision="allow"} 1' in text
    assert 'aivault_requests_total{capability="(none)",decision="deny"} 1' in text
    assert 'aivault_requests_total{capability="(unknown)",decision="deny"} 3' in text
    assert "acme/x1" not in text
    assert 'aivault_reloads_total{result="ok"} 1' in text
    assert "aivault_bundle_serial 1" in text
    assert 'aivault_upstream_latency_seconds_bucket{le="+Inf"} 1' in text


def test_concurrent_invokes_are_audited_once_each_in_one_chain(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Many requests in flight take the batched audit path; none is lost or doubled."""
    paths = [f"/v1/users/{index}" for index in range(24)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=runtime.url, headers=AUTH) as client:
            return await asyncio.gather(*(client.get("/v/my-api" + path) for path in paths))

    assert [clean(response).status_code for response in asyncio.run(burst())] == [200] * 24
    lines = [
        json.loads(line)
        for path in sorted((tmp_path / "state" / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert sorted(line["path"] for line in lines) == sorted(paths)
    assert verify_chain(tmp_path / "state").ok


def test_every_decision_is_audited_without_secrets(runtime: Runtime, tmp_path: Path) -> None:
    get(runtime, "/v/my-api/v1/users/echo?key=value", headers=AUTH)
    get(runtime, "/v/my-api/v1/users", headers={"Authorization": "Bearer wrong"})
    envelope(runtime, {"method": "DELETE", "path": "/v1/users"})
    lines = [
        json.loads(line)
        for path in sorted((tmp_path / "state" / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    summary = [(e["decision"], e["error"], e["status"], e["path"]) for e in lines]
    assert summary == [
        ("allow", None, 200, "/v1/users/echo"),
        ("deny", "E-UNAUTHENTICATED", 401, "/v1/users"),
        ("deny", "E-METHOD-NOT-ALLOWED", 405, "/v1/users"),
    ]
    assert lines[0]["consumer"] == "agent" and lines[0]["serial"] == 1
    assert verify_chain(tmp_path / "state").ok
    text = "".join(p.read_text() for p in (tmp_path / "state" / "audit").glob("*.jsonl"))
    assert CANARY not in text and TOKEN not in text


def test_without_a_bundle_invokes_get_503(
    start_runtime: StartRuntime, upstream: RecordingUpstream
) -> None:
    runtime = start_runtime()
    assert runtime.status()["state"] == "not_ready"
    refused(get(runtime, "/v/my-api/v1/users", headers=AUTH), 503, "E-NO-POLICY")
    refused(envelope(runtime, {"method": "GET", "path": "/v1/users"}), 503, "E-NO-POLICY")
    assert upstream.seen == []


def test_an_expired_bundle_fails_closed(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    # The expiring bundle arrives by hot reload once the runtime is up, so a slow
    # start on a loaded machine cannot use up its lifetime before it is loaded.
    factory.publish(bundle_dir, 1)
    runtime = start_runtime()
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    factory.publish(bundle_dir, 2, expires_at=expires)
    wait_until(lambda: runtime.status()["serial"] == 2, timeout=20, what="reload")
    assert runtime.status()["expiresAt"] == expires.isoformat().replace("+00:00", ".000Z")
    wait_until(lambda: runtime.status()["state"] == "degraded", timeout=40, what="expiry")
    refused(get(runtime, "/v/my-api/v1/users", headers=AUTH), 503, "E-POLICY-EXPIRED")
    assert upstream.seen == []


def test_tls_error_without_the_dev_ca(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    factory.publish(bundle_dir, 1)
    runtime = start_runtime("--dev-resolve", upstream.dev_resolve(), dev=False)
    refused(get(runtime, "/v/my-api/v1/users", headers=AUTH), 502, "E-UPSTREAM-TLS")
    assert upstream.seen == []


def test_refused_connection_is_a_502(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    factory.publish(bundle_dir, 1)
    runtime = start_runtime("--dev-resolve", f"{HOST}=127.0.0.1:{free_port()}", dev=False)
    refused(get(runtime, "/v/my-api/v1/users", headers=AUTH), 502, "E-UPSTREAM-UNREACHABLE")


def test_policy_host_resolving_to_loopback_is_refused_without_dev_resolve(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    factory.publish(bundle_dir, 1, host="localhost")
    runtime = start_runtime(dev=True)
    refused(get(runtime, "/v/my-api/v1/users", headers=AUTH), 403, "E-UPSTREAM-FORBIDDEN")
    assert upstream.seen == []


def test_unix_socket(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    factory.publish(bundle_dir, 1)
    sock = tmp_path / "rt.sock"
    start_runtime("--socket", str(sock))
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    transport = httpx.HTTPTransport(uds=str(sock))
    with httpx.Client(transport=transport, base_url="http://runtime") as client:
        response = client.get("/v/my-api/v1/users", headers=AUTH)
    assert response.status_code == 200


def test_a_caller_that_hangs_up_mid_stream_is_audited_as_such(
    runtime: Runtime, upstream: RecordingUpstream, tmp_path: Path
) -> None:
    with httpx.stream("GET", runtime.url + "/v/my-api/v1/users/sse", headers=AUTH) as response:
        assert next(response.iter_raw()) == b"data: first\n\n"
    upstream.sse_release.set()

    def audited() -> list[dict[str, Any]]:
        files = sorted((tmp_path / "state" / "audit").glob("*.jsonl"))
        return [json.loads(line) for p in files for line in p.read_text().splitlines()]

    wait_until(lambda: len(audited()) == 1, what="audit line")
    [line] = audited()
    assert (line["decision"], line["error"], line["status"]) == ("error", "E-CLIENT-CLOSED", 200)


def test_rate_limit_across_connections_answers_429_with_retry_after(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    factory.publish(bundle_dir, 1, limits={"rateLimitPerMinute": 2})
    runtime = start_runtime()
    codes = [get(runtime, "/v/my-api/v1/users", headers=AUTH).status_code for _ in range(2)]
    assert codes == [200, 200]
    response = get(runtime, "/v/my-api/v1/users", headers=AUTH)
    data = refused(response, 429, "E-RATE-LIMITED")
    assert data["message"] == "capability 'my-api/users' allows 2 requests per minute; retry later"
    assert 1 <= int(response.headers["retry-after"]) <= 30
    refused(envelope(runtime, {"method": "GET", "path": "/v1/users"}), 429, "E-RATE-LIMITED")
    assert len(upstream.seen) == 2


def test_an_internal_error_is_a_bare_500_and_is_audited(
    factory: BundleFactory, bundle_dir: Path, tmp_path: Path, upstream: RecordingUpstream
) -> None:
    """A runtime whose upstream client was never started (serve_forever not run) fails inside."""
    import io

    from aiohttp.web_server import Server

    from aivault_ops.runtime.observe.log import StderrLog
    from aivault_ops.runtime.options import RuntimeOptions
    from aivault_ops.runtime.wiring import build_process

    factory.publish(bundle_dir, 1)
    options = {"bundle_dir": bundle_dir, "state_dir": tmp_path / "state", "poll_interval": 1.0}
    options |= {"identity": factory.identity, "trust": [factory.trust], "dev_ca_cert": None}
    options |= {"max_connections": None, "header_timeout": 1.0, "keepalive_timeout": 1.0}
    options |= {"body_timeout": 1.0, "shutdown_grace": 1.0, "upstream_body_timeout": 5.0}
    options |= {"bundle_source": None, "rate_limit_store": None}
    stream = io.StringIO()
    process = build_process(RuntimeOptions(**options), StderrLog(stream=stream), {})

    async def go() -> httpx.Response:
        server = Server(process.runtime.handle, access_log=None)
        listening = await asyncio.get_running_loop().create_server(server, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient() as client:
                return await client.get(f"http://127.0.0.1:{port}/v/my-api/v1/users", headers=AUTH)
        finally:
            listening.close()
            await server.shutdown(timeout=1)

    response = asyncio.run(go())
    assert response.status_code == 500
    assert response.json() == {"error": "E-INTERNAL", "message": "internal error"}
    assert '"event": "internal_error", "error": "RuntimeError"' in stream.getvalue()
    [audit] = (tmp_path / "state" / "audit").glob("*.jsonl")
    line = json.loads(audit.read_text())
    assert (line["decision"], line["error"], line["status"]) == ("error", "E-INTERNAL", 500)
    assert upstream.seen == []


@pytest.mark.parametrize(
    "headers",
    [{"x-note": "a\r\nInjected: 1"}, {"x-note\r\nInjected": "1"}, {"x-note": "a\nb"}],
)
def test_crlf_in_envelope_headers_is_refused(
    runtime: Runtime, upstream: RecordingUpstream, headers: dict[str, str]
) -> None:
    response = envelope(runtime, {"method": "GET", "path": "/v1/users", "headers": headers})
    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"error", "message"}
    assert upstream.seen == []


def test_hop_by_hop_headers_are_dropped_and_the_host_comes_from_policy(
    runtime: Runtime, upstream: RecordingUpstream
) -> None:
    headers = {
        **AUTH,
        "Connection": "keep-alive, X-Drop-Me",
        "X-Drop-Me": "1",
        "Keep-Alive": "timeout=5",
        "Host": "elsewhere.example.org",
        "X-Kept": "yes",
    }
    response = get(runtime, "/v/my-api/v1/users", headers=headers)
    assert response.status_code == 200
    [seen] = upstream.seen
    assert seen.header("host") == HOST
    assert (seen.header("x-drop-me"), seen.header("keep-alive")) == (None, None)
    assert seen.header("x-kept") == "yes"


@pytest.mark.parametrize(
    "path",
    [
        "//elsewhere.example.org/v1/users",
        "/v1/users//elsewhere.example.org",
        "https://x.org/v1/users",
    ],
)
def test_an_envelope_path_cannot_name_another_host(
    runtime: Runtime, upstream: RecordingUpstream, path: str
) -> None:
    response = envelope(runtime, {"method": "GET", "path": path})
    assert response.status_code == 400
    assert upstream.seen == []


def test_query_auth_is_injected_redacted_and_cannot_be_supplied_by_the_caller(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    factory.publish(bundle_dir, 1, auth={"query": {"param_name": "key"}})
    runtime = start_runtime()
    response = get(runtime, "/v/my-api/v1/users/echo?page=1", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["query"] == {"page": "1", "key": "[REDACTED]"}
    assert upstream.seen[0].query == (("page", "1"), ("key", CANARY))
    upstream.clear()
    response = get(runtime, "/v/my-api/v1/users?KEY=mine", headers=AUTH)
    assert 400 <= response.status_code < 500
    assert upstream.seen == []


def test_an_unsupported_auth_strategy_is_reported_and_refused(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    factory.publish(bundle_dir, 1, auth={"kerberos": {"realm": "EXAMPLE.COM"}})
    runtime = start_runtime()
    status = runtime.status()
    assert status["state"] == "ready"
    [problem] = status["problems"]
    assert problem.startswith("credential 'my-api': E-AUTH-UNSUPPORTED: ")
    response = get(runtime, "/v/my-api/v1/users", headers=AUTH)
    assert response.status_code == 501
    assert response.json()["error"] == "E-AUTH-UNSUPPORTED"
    assert upstream.seen == []
