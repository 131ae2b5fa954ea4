"""Hostile callers against a real runtime: requests it must refuse before anything is sent.

Each case goes through the runtime over HTTP (the envelope route and, where
the case can be spelled there, the passthrough route) in front of a
recording TLS upstream; every refusal asserts the status, the code and that
the upstream received nothing. One runtime injects a header (`X-Acme-Key`),
the other a query parameter (`api_key`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.bundles import CANARY, TOKEN, BundleFactory
from support.fixtures import _session_upstream, factory, upstream
from support.inprocess import InProcessRuntime
from support.runtime_proc import RuntimeProcess, scan_tree
from support.upstream import RecordingUpstream

from aivault_ops.runtime.policy.checks.limits import (
    MAX_HEADER_COUNT,
    MAX_HEADER_VALUE_LENGTH,
    MAX_PATH_LENGTH,
    MAX_QUERY_COUNT,
)

__all__ = ["_session_upstream", "factory", "upstream"]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HEADER_AUTH = {"header": {"header_name": "X-Acme-Key", "value_template": "{{secret}}"}}
QUERY_AUTH = {"query": {"param_name": "api_key"}}
Runtime = RuntimeProcess | InProcessRuntime


def _start(kind: str, root: Path, factory: BundleFactory, upstream: RecordingUpstream) -> Runtime:
    if kind == "subprocess":
        args = ["--identity", str(factory.identity), "--trust", factory.trust]
        args += ["--dev-resolve", upstream.dev_resolve(), "--dev-ca-cert", str(upstream.ca_file)]
        return RuntimeProcess(root / "bundles", root / "state", root / "runtime.log", args).start()
    options = {
        "identity": factory.identity,
        "trust": [factory.trust],
        "dev_resolve": [upstream.dev_resolve()],
        "dev_ca_cert": upstream.ca_file,
    }
    return InProcessRuntime(root / "bundles", root / "state", options).start()


def _serve(
    kind: str, auth: dict[str, Any], tmp: pytest.TempPathFactory, factory: BundleFactory,
    upstream: RecordingUpstream,
) -> Iterator[Runtime]:  # fmt: skip
    root = tmp.mktemp(f"callers-{kind}")
    (root / "bundles").mkdir()
    factory.publish(root / "bundles", 1, auth=auth, methods=("GET", "POST"))
    runtime = _start(kind, root, factory, upstream)
    try:
        yield runtime
    finally:
        assert runtime.stop() == 0
        assert CANARY not in runtime.log()
        assert scan_tree(root / "state", CANARY) == []


@pytest.fixture(scope="module", params=["inprocess", "subprocess"])
def header_runtime(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    factory: BundleFactory,
    _session_upstream: RecordingUpstream,
) -> Iterator[Runtime]:
    """A runtime whose credential injects `X-Acme-Key` (in process and as `serve`)."""
    yield from _serve(request.param, HEADER_AUTH, tmp_path_factory, factory, _session_upstream)


@pytest.fixture(scope="module")
def query_runtime(
    tmp_path_factory: pytest.TempPathFactory,
    factory: BundleFactory,
    _session_upstream: RecordingUpstream,
) -> Iterator[Runtime]:
    """A runtime whose credential injects the query parameter `api_key`."""
    yield from _serve("inprocess", QUERY_AUTH, tmp_path_factory, factory, _session_upstream)


def post_envelope(runtime: Runtime, raw: bytes) -> httpx.Response:
    return httpx.post(runtime.url + "/aivault/proxy", content=raw, headers=AUTH, timeout=30)


def envelope(runtime: Runtime, **request: Any) -> httpx.Response:
    request.setdefault("path", "/v1/users")
    body = {"capability": "my-api/users", "request": request}
    return post_envelope(runtime, json.dumps(body).encode())


def passthrough(runtime: Runtime, target: str, headers: Any = ()) -> httpx.Response:
    """GET `/v/my-api<target>`; `target` is sent as is (already percent-encoded)."""
    url = httpx.URL(runtime.url + "/v/my-api/v1/users")
    raw = url.copy_with(raw_path=("/v/my-api" + target).encode())
    return httpx.get(raw, headers=[*AUTH.items(), *headers], timeout=30)


def refused(response: httpx.Response, upstream: RecordingUpstream, status: int, code: str) -> str:
    """Assert a JSON refusal with `status` and `code`, and an upstream that got nothing."""
    assert (response.status_code, response.json().get("error")) == (status, code), response.text
    assert set(response.json()) == {"error", "message"}
    assert upstream.seen == []
    message: str = response.json()["message"]
    return message


# -- the reproductions of the issue ------------------------------------------------


def test_envelope_headers_nested_100000_deep_are_a_400(
    header_runtime: Runtime, upstream: RecordingUpstream
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    raw = b'{"capability": "my-api/users", "request": {"path": "/v1/users", "headers": '
    response = post_envelope(header_runtime, raw + deep + b"}}")
    refused(response, upstream, 400, "E-ENVELOPE-INVALID")


@pytest.mark.parametrize("field", ["headers", "query", "x"])
def test_envelope_nesting_past_the_limit_anywhere_is_a_400(
    header_runtime: Runtime, upstream: RecordingUpstream, field: str
) -> None:
    deep = b'{"a": ' * 20 + b'"v"' + b"}" * 20
    raw = b'{"capability": "my-api/users", "request": {"path": "/v1/users", "%s": %s}}' % (
        field.encode(),
        deep,
    )
    message = refused(post_envelope(header_runtime, raw), upstream, 400, "E-ENVELOPE-INVALID")
    assert message == "the envelope is nested deeper than 16 levels"


def test_a_lone_surrogate_in_an_envelope_header_is_a_400(
    header_runtime: Runtime, upstream: RecordingUpstream
) -> None:
    raw = (
        b'{"capability": "my-api/users", "request": {"path": "/v1/users",'
        b' "headers": {"X-Test": "\\ud800"}}}'
    )
    refused(post_envelope(header_runtime, raw), upstream, 400, "E-HEADER-INVALID")


@pytest.mark.parametrize(
    ("field", "code"),
    [
        (b'"path": "/v1/users/\\ud800"', "E-PATH-INVALID"),
        (b'"path": "/v1/users", "query": {"q": "\\udfff"}', "E-QUERY-INVALID"),
        (b'"path": "/v1/users", "query": {"\\ud800": "x"}', "E-QUERY-INVALID"),
        (b'"path": "/v1/users", "headers": {"X-\\ud800": "x"}', "E-HEADER-INVALID"),
        (b'"path": "/v1/users", "headers": {"X-Test": "a\\udc80"}', "E-HEADER-INVALID"),
        (b'"method": "POST", "path": "/v1/users", "body": "\\ud800"', "E-ENVELOPE-INVALID"),
    ],
)
def test_envelope_strings_that_cannot_be_encoded_are_400s(
    header_runtime: Runtime, upstream: RecordingUpstream, field: bytes, code: str
) -> None:
    raw = b'{"capability": "my-api/users", "request": {%s}}' % field
    refused(post_envelope(header_runtime, raw), upstream, 400, code)


def test_passthrough_header_bytes_that_are_not_utf8_are_a_400(
    header_runtime: Runtime, upstream: RecordingUpstream
) -> None:
    response = passthrough(header_runtime, "/v1/users", [("X-Test", b"\xed\xa0\x80")])
    refused(response, upstream, 400, "E-HEADER-INVALID")


ROUTING = ["X-HTTP-Method-Override", "X-Original-URL", "X-Forwarded-Host", "Forwarded"]


@pytest.mark.parametrize("name", [*ROUTING, "X-Rewrite-URL", "X-HTTP-Method", "X-Real-IP"])
def test_method_override_and_routing_headers_are_refused_on_both_routes(
    header_runtime: Runtime, upstream: RecordingUpstream, name: str
) -> None:
    value = "/admin" if "URL" in name else "DELETE"
    refused(envelope(header_runtime, headers={name: value}), upstream, 403, "E-HEADER-FORBIDDEN")
    response = passthrough(header_runtime, "/v1/users", [(name, value)])
    refused(response, upstream, 403, "E-HEADER-FORBIDDEN")


@pytest.mark.parametrize("name", ["X_Acme_Key", "x.acme.key", "XAcmeKey", "X-Acme%2DKey"])
def test_header_near_variants_of_the_injected_name_are_refused(
    header_runtime: Runtime, upstream: RecordingUpstream, name: str
) -> None:
    refused(envelope(header_runtime, headers={name: "x"}), upstream, 403, "E-HEADER-FORBIDDEN")
    response = passthrough(header_runtime, "/v1/users", [(name, "x")])
    message = refused(response, upstream, 403, "E-HEADER-FORBIDDEN")
    assert message == (
        f"header {name!r} reads as 'x-acme-key', an auth-class header the runtime sets itself"
    )


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("api_key[]", "api_key%5B%5D"),
        ("api_key%00", "api_key%2500"),
        ("api_key ", "api_key%20"),
        ("api.key", "api.key"),
        ("api_key\x00", "api_key%00"),
        ("Api-Key", "Api-Key"),
        ("api_key[x]", "api_key[x]"),
    ],
)
def test_query_near_variants_of_the_injected_name_are_refused(
    query_runtime: Runtime, upstream: RecordingUpstream, name: str, encoded: str
) -> None:
    response = envelope(query_runtime, query={name: "attacker"})
    refused(response, upstream, 403, "E-QUERY-FORBIDDEN")
    response = passthrough(query_runtime, f"/v1/users?{encoded}=attacker")
    refused(response, upstream, 403, "E-QUERY-FORBIDDEN")


# -- the next ones in the class ------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/v1/users/7;api_key=attacker", "/v1/users/7%3Fapi_key=attacker", "/v1/users/7;Api.Key"],
)
def test_the_injected_name_as_a_path_parameter_is_refused(
    query_runtime: Runtime, upstream: RecordingUpstream, path: str
) -> None:
    refused(envelope(query_runtime, path=path), upstream, 403, "E-QUERY-FORBIDDEN")
    refused(passthrough(query_runtime, path), upstream, 403, "E-QUERY-FORBIDDEN")


@pytest.mark.parametrize("query", ["_method=DELETE", "X-HTTP-Method-Override=DELETE"])
def test_query_method_overrides_are_refused(
    header_runtime: Runtime, upstream: RecordingUpstream, query: str
) -> None:
    name, value = query.split("=")
    refused(envelope(header_runtime, query={name: value}), upstream, 403, "E-QUERY-FORBIDDEN")
    response = passthrough(header_runtime, f"/v1/users?{query}")
    refused(response, upstream, 403, "E-QUERY-FORBIDDEN")


@pytest.mark.parametrize("name", ["Content_Length", "Transfer_Encoding", "Proxy_Authorization"])
def test_other_spellings_of_framing_and_auth_headers_are_refused(
    header_runtime: Runtime, upstream: RecordingUpstream, name: str
) -> None:
    refused(envelope(header_runtime, headers={name: "5"}), upstream, 403, "E-HEADER-FORBIDDEN")
    response = passthrough(header_runtime, "/v1/users", [(name, "5")])
    refused(response, upstream, 403, "E-HEADER-FORBIDDEN")


def test_framing_headers_in_an_envelope_are_dropped_not_forwarded(
    header_runtime: Runtime, upstream: RecordingUpstream
) -> None:
    headers = {"Transfer-Encoding": "chunked", "Content-Length": "999", "Host": "evil.example"}
    response = envelope(header_runtime, method="POST", headers=headers, body="hello")
    assert response.status_code == 200, response.text
    [seen] = upstream.seen
    assert (seen.body, seen.header("content-length"), seen.header("transfer-encoding")) == (
        b"hello",
        "5",
        None,
    )
    assert seen.header("host") == "api.example.com"


# -- limits --------------------------------------------------------------------------


def test_too_many_headers_are_refused_on_both_routes(
    header_runtime: Runtime, upstream: RecordingUpstream
) -> None:
    many = {f"X-H{i}": "1" for i in range(MAX_HEADER_COUNT + 1)}
    refused(envelope(header_runtime, headers=many), upstream, 400, "E-HEADER-INVALID")
    response = passthrough(header_runtime, "/v1/users", list(many.items()))
    refused(response, upstream, 400, "E-HEADER-INVALID")


def test_too_many_query_parameters_are_refused_on_both_routes(
    header_runtime: Runtime, upstream: RecordingUpstream
) -> None:
    names = [f"p{i}" for i in range(MAX_QUERY_COUNT + 1)]
    response = envelope(header_runtime, query=dict.fromkeys(names, "1"))
    refused(response, upstream, 400, "E-QUERY-INVALID")
    response = passthrough(header_runtime, "/v1/users?" + "&".join(f"{n}=1" for n in names))
    refused(response, upstream, 400, "E-QUERY-INVALID")


def test_long_envelope_paths_and_header_values_are_refused(
    header_runtime: Runtime, upstream: RecordingUpstream
) -> None:
    path = "/v1/users/" + "a" * MAX_PATH_LENGTH
    message = refused(envelope(header_runtime, path=path), upstream, 400, "E-PATH-INVALID")
    assert message == f"the path exceeds the runtime's limit of {MAX_PATH_LENGTH} characters"
    value = "v" * (MAX_HEADER_VALUE_LENGTH + 1)
    response = envelope(header_runtime, headers={"X-Big": value})
    refused(response, upstream, 400, "E-HEADER-INVALID")


def test_ordinary_requests_still_pass(header_runtime: Runtime, upstream: RecordingUpstream) -> None:
    headers = {"X-Title": "Café ☕", "X-Request-Id": "r-1", "Accept": "application/json"}
    query = {"method": "flickr.photos.search", "page_token": "a"}
    response = envelope(header_runtime, path="/v1/users/7;v=2", headers=headers, query=query)
    assert response.status_code == 200, response.text
    [seen] = upstream.seen
    assert seen.header("x-title") == "Café ☕"
    assert seen.header("x-acme-key") == CANARY
    assert dict(seen.query) == query


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "amount=5&_method=DELETE"),
        ("application/json", '{"_method": "DELETE"}'),
    ],
)
def test_method_overrides_in_the_body_are_refused_on_both_routes(
    header_runtime: Runtime, upstream: RecordingUpstream, content_type: str, body: str
) -> None:
    headers = {"Content-Type": content_type}
    response = envelope(header_runtime, method="POST", headers=headers, body=body)
    refused(response, upstream, 403, "E-BODY-FORBIDDEN")
    response = httpx.post(
        header_runtime.url + "/v/my-api/v1/users",
        content=body.encode(),
        headers={**AUTH, **headers},
        timeout=30,
    )
    refused(response, upstream, 403, "E-BODY-FORBIDDEN")


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b'{"capability": "my-api/\\ud800", "request": {"path": "/v1/users"}}', 404,
         "E-CAPABILITY-UNKNOWN"),
        (b'{"capability": "my-api/users", "request": {"method": "G\\udc80T", "path": "/v1/users"}}',
         405, "E-METHOD-NOT-ALLOWED"),
    ],
)  # fmt: skip
def test_lone_surrogates_in_the_capability_or_method_are_refused_and_audited(
    header_runtime: Runtime, upstream: RecordingUpstream, raw: bytes, status: int, code: str
) -> None:
    refused(post_envelope(header_runtime, raw), upstream, status, code)
    after = envelope(header_runtime)
    assert after.status_code == 200, after.text


def test_hop_by_hop_headers_in_an_envelope_cannot_strip_the_credential(
    header_runtime: Runtime, upstream: RecordingUpstream
) -> None:
    headers = {"Connection": "X-Acme-Key, Upgrade", "Upgrade": "websocket", "TE": "trailers"}
    response = envelope(header_runtime, headers=headers)
    assert response.status_code == 200, response.text
    [seen] = upstream.seen
    assert seen.header("x-acme-key") == CANARY
    assert (seen.header("upgrade"), seen.header("te")) == (None, None)
    assert seen.header("connection") != "X-Acme-Key, Upgrade"
