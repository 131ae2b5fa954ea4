"""`check` and a live `serve` agree: same verdict, same code, nothing upstream on a deny.

Hypothesis generates policies (capabilities of one credential with random
methods, prefixes and auth; consumers with random grants) and requests
(envelope or passthrough, a consumer, a method, a path with a query, a
header). Each policy is signed and published to ONE running runtime, which
hot-reloads it; every request is then asked of `aivault-ops check` (in
process, on the same bundle) and sent to the runtime, which forwards
allowed requests to a local TLS upstream.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.bundles import (
    BEARER,
    HOST,
    OTHER_TOKEN,
    SECRET_PATH,
    TOKEN,
    BundleFactory,
    sha256_hex,
)
from support.runtime_proc import StartRuntime
from support.upstream import RecordingUpstream

from aivault_ops.bundle import build_bundle, publish_bundle
from aivault_ops.canonical_json import canonical_json
from aivault_ops.commands.check import run_check

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
PREFIXES = ("/v1/users", "/v1/users/admin", "/v1/items", "/v2/")
PATHS = (
    "/v1/users",
    "/v1/users/7",
    "/v1/users/admin/x",
    "/v1/usersX",
    "/v1/items?q=1",
    "/v1/items?key=stolen",
    "/v2/a/b",
    "/v3",
    "/v1/users/%2e%2e/items",
)
HEADERS = (
    None,
    ("X-Trace", "1"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Api-Key", "mine"),
    ("X-HTTP-Method-Override", "DELETE"),
)
AUTHS = (
    {"header": BEARER},
    {"query": {"param_name": "key", "value_template": "{{secret}}"}},
    {"header": {"header_name": "X-Api-Key", "value_template": "{{secret}}"}},
)
CONSUMERS = {"agent": TOKEN, "bystander": OTHER_TOKEN}
PER_POLICY = 6


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 3))
    capabilities = {
        f"my-api/c{i}": {
            "credential": "my-api",
            "provider": "my-api",
            "source": "manifest",
            "methods": sorted(draw(st.sets(st.sampled_from(METHODS), min_size=1, max_size=3))),
            "pathPrefixes": sorted(draw(st.sets(st.sampled_from(PREFIXES), min_size=1))),
            "hosts": [HOST],
            "policy": {},
        }
        for i in range(count)
    }
    names = sorted(capabilities)
    grants = st.one_of(
        st.just(["my-api/*"]),
        st.just(["my-api/*"]),
        st.sets(st.sampled_from(names), min_size=1).map(sorted),
        st.just(["other/*"]),
    )
    return {
        "format": "aivault-ops/policy@1",
        "project": "test",
        "environment": "test",
        "providers": {"my-api": {"source": "custom", "hosts": [HOST]}},
        "credentials": {
            "my-api": {
                "provider": "my-api",
                "hosts": [HOST],
                "auth": draw(st.sampled_from(AUTHS)),
                "secrets": {"secret": {"file": SECRET_PATH, "name": "MY_KEY"}},
                "upstreamPathPrefix": "",
            }
        },
        "capabilities": capabilities,
        "consumers": {
            name: {"tokenSha256": sha256_hex(token), "capabilities": draw(grants)}
            for name, token in CONSUMERS.items()
        },
    }


def requests(document: dict[str, Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    """Requests about this policy: mostly its own capabilities, methods and prefixes (so
    many are allowed and the later rules get their say), and some about nothing in it."""
    capabilities = document["capabilities"]
    own_paths = sorted(
        {p.rstrip("/") + tail for c in capabilities.values() for p in c["pathPrefixes"]
         for tail in ("", "/7")}
    )  # fmt: skip
    own_methods = sorted({m for c in capabilities.values() for m in c["methods"]})
    return st.tuples(
        st.sampled_from(("agent", "agent", "agent", "bystander")),
        st.sampled_from(("envelope", "passthrough")),
        st.sampled_from((*sorted(capabilities), "my-api/c9")),
        st.one_of(st.sampled_from(own_methods), st.sampled_from(METHODS)),
        st.one_of(st.sampled_from(own_paths), st.sampled_from(PATHS)),
        st.sampled_from((None, *HEADERS)),
    )


def _runtime_answer(url: str, request: tuple[Any, ...]) -> tuple[str, str | None]:
    consumer, mode, capability, method, path, header = request
    headers = {"X-Aivault-Token": CONSUMERS[consumer]}
    extra = dict([header]) if header else {}
    if mode == "passthrough":
        answer = httpx.request(
            method, f"{url}/v/my-api{path}", headers={**headers, **extra}, timeout=10
        )
    else:
        raw, _, query = path.partition("?")
        request_json: dict[str, Any] = {"method": method, "path": raw, "headers": extra}
        if query:
            name, _, value = query.partition("=")
            request_json["query"] = {name: value}
        body = {"capability": capability, "request": request_json}
        answer = httpx.post(f"{url}/aivault/proxy", json=body, headers=headers, timeout=10)
    if answer.status_code == 200:
        return "allow", None
    return "deny", answer.json()["error"]


def _check_answer(
    bundle: Path, trust: str, request: tuple[Any, ...], capsys: pytest.CaptureFixture[str]
) -> tuple[str, str | None]:
    consumer, mode, capability, method, path, header = request
    code = run_check(
        repo=None,
        bundle=bundle,
        trust=[trust],
        environment=None,
        consumer=None,
        token_sha256=hashlib.sha256(CONSUMERS[consumer].encode()).hexdigest(),
        capability=capability if mode == "envelope" else None,
        credential="my-api" if mode == "passthrough" else None,
        method=method,
        path=path,
        headers=[f"{header[0]}={header[1]}"] if header else [],
        as_json=True,
    )
    decision = json.loads(capsys.readouterr().out)
    assert code == (0 if decision["decision"] == "allow" else 1)
    return decision["decision"], decision.get("error")


@pytest.mark.timeout(120)
def test_check_and_a_live_runtime_agree(
    factory: BundleFactory,
    upstream: RecordingUpstream,
    start_runtime: StartRuntime,
    bundle_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runtime = start_runtime(wait=True)
    serials = iter(range(1, 10_000))
    compared = {"allow": 0, "deny": 0}
    seen: set[tuple[str, str | None]] = set()

    @settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(policies(), st.data())
    def agree(document: dict[str, Any], data: st.DataObject) -> None:
        asked = data.draw(st.lists(requests(document), min_size=PER_POLICY, max_size=PER_POLICY))
        serial = next(serials)
        document["secretFiles"] = {
            SECRET_PATH: {
                "sha256": hashlib.sha256(factory.secret_file).hexdigest(),
                "format": "yaml",
                "names": ["MY_KEY"],
            }
        }
        signed = build_bundle(
            policy_json=canonical_json(document),
            secret_files={SECRET_PATH: factory.secret_file},
            serial=serial,
            revision=f"rev-{serial}",
            environment="test",
            expires_at=None,
            signing_key=factory.signing_key,
        )
        bundle = publish_bundle(bundle_dir, signed, serial)
        runtime.wait_serial(serial)
        for request in asked:
            before = len(upstream.seen)
            expected = _check_answer(bundle, factory.trust, request, capsys)
            answered = _runtime_answer(runtime.url, request)
            assert expected == answered, (request, document)
            sent = len(upstream.seen) - before
            assert sent == (1 if answered[0] == "allow" else 0), request
            compared[answered[0]] += 1
            seen.add((request[1], answered[1]))

    agree()
    assert compared["allow"] >= 40 and compared["deny"] >= 40, compared
    assert {
        ("envelope", None),
        ("passthrough", None),
        ("envelope", "E-HEADER-FORBIDDEN"),
        ("passthrough", "E-HEADER-FORBIDDEN"),
        ("envelope", "E-METHOD-NOT-ALLOWED"),
        ("passthrough", "E-METHOD-NOT-ALLOWED"),
        ("envelope", "E-PATH-NOT-ALLOWED"),
        ("envelope", "E-CAPABILITY-UNKNOWN"),
        ("envelope", "E-FORBIDDEN"),
        ("passthrough", "E-FORBIDDEN"),
        ("passthrough", "E-NO-CAPABILITY"),
        ("passthrough", "E-PATH-TRAVERSAL"),
    } <= seen, sorted(seen, key=str)
