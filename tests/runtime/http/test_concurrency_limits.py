"""`maxConcurrent` and the upstream bulkhead through a real runtime.

A streamed answer (`/sse`) is held open by the upstream until the test
releases it, so a capability's place (and its upstream connection) stays
taken while the test checks what other requests get: behaviour, not timing.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.bundles import SECRET_PATH, TOKEN, BundleFactory, policy
from support.runtime_proc import RuntimeProcess, StartRuntime, wait_until
from support.upstream import HOST, RecordingUpstream, recording_upstream

from aivault_ops.bundle import build_bundle, publish_bundle
from aivault_ops.canonical_json import canonical_json

AUTH = {"Authorization": f"Bearer {TOKEN}"}
USERS = "/v/my-api/v1/users"
SLOW_HOST = "slow.example.com"


def audited(tmp_path: Path) -> list[dict[str, Any]]:
    files = sorted((tmp_path / "state" / "audit").glob("*.jsonl"))
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


@contextmanager
def held_stream(runtime: RuntimeProcess, upstream: RecordingUpstream) -> Iterator[None]:
    """A passthrough stream the upstream holds open (its first event arrived) until the
    block ends; then it is released and read to its end."""
    with httpx.stream("GET", runtime.url + USERS + "/sse", headers=AUTH) as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"data: first\n\n"
        yield
        upstream.sse_release.set()
        assert b"".join(chunks) == b"data: second\n\n"


def test_a_full_capability_is_refused_at_once_and_frees_its_place_after(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
    tmp_path: Path,
) -> None:
    factory.publish(bundle_dir, 1, limits={"maxConcurrent": 1})
    runtime = start_runtime()
    with held_stream(runtime, upstream):
        refused = httpx.get(runtime.url + USERS, headers=AUTH)
        assert refused.status_code == 503, refused.text
        assert refused.json() == {
            "error": "E-CONCURRENCY-LIMIT",
            "message": "capability 'my-api/users' allows 1 requests in flight at once; retry later",
        }
        assert refused.headers["retry-after"] == "1"
        assert len(upstream.seen) == 1  # the refused one was never sent
    assert httpx.get(runtime.url + USERS, headers=AUTH).status_code == 200
    assert len(upstream.seen) == 2
    wait_until(lambda: len(audited(tmp_path)) == 3, what="three audit lines")
    decisions = [(line["decision"], line["error"], line["status"]) for line in audited(tmp_path)]
    assert sorted(decisions, key=str) == sorted(
        [("deny", "E-CONCURRENCY-LIMIT", 503), ("allow", None, 200), ("allow", None, 200)],
        key=str,
    )


def test_failed_and_refused_requests_keep_no_place(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    """Requests that end in an error (an upstream reset, the limit itself) keep no
    place: after many of them the one place is still free."""
    factory.publish(bundle_dir, 1, limits={"maxConcurrent": 1})
    runtime = start_runtime()
    for _ in range(5):
        reset = httpx.get(runtime.url + USERS + "/reset", headers=AUTH)
        assert reset.json()["error"] == "E-UPSTREAM-RESET"
    with held_stream(runtime, upstream):
        for _ in range(5):
            assert httpx.get(runtime.url + USERS, headers=AUTH).status_code == 503
    assert httpx.get(runtime.url + USERS, headers=AUTH).status_code == 200


def test_a_full_upstream_bulkhead_is_refused_busy_and_audited_as_an_error(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
    tmp_path: Path,
) -> None:
    factory.publish(bundle_dir, 1)
    runtime = start_runtime("--upstream-max-per-host", "1", "--upstream-queue-timeout", "0.05")
    with held_stream(runtime, upstream):
        busy = httpx.get(runtime.url + USERS, headers=AUTH)
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"] == "E-UPSTREAM-BUSY"
        assert busy.headers["retry-after"] == "1"
        assert len(upstream.seen) == 1
    assert httpx.get(runtime.url + USERS, headers=AUTH).status_code == 200
    wait_until(lambda: len(audited(tmp_path)) == 3, what="three audit lines")
    busy_line = next(line for line in audited(tmp_path) if line["error"] == "E-UPSTREAM-BUSY")
    assert (busy_line["decision"], busy_line["status"]) == ("error", 503)


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[RecordingUpstream]:
    """One TLS upstream answering for HOST and SLOW_HOST (its `/sse` held until released)."""
    with recording_upstream(tmp_path, hosts=(HOST, SLOW_HOST)) as upstream:
        yield upstream


def publish_two_capabilities(factory: BundleFactory, bundle_dir: Path) -> None:
    """`my-api/users` on HOST and `slow-api/users` on SLOW_HOST, both granted to `agent`."""
    document = policy(secret_file=factory.secret_file)
    document["providers"]["slow-api"] = {"source": "custom", "hosts": [SLOW_HOST]}
    credential = copy.deepcopy(document["credentials"]["my-api"])
    document["credentials"]["slow-api"] = credential | {
        "provider": "slow-api",
        "hosts": [SLOW_HOST],
    }
    capability = copy.deepcopy(document["capabilities"]["my-api/users"])
    document["capabilities"]["slow-api/users"] = capability | {
        "credential": "slow-api", "provider": "slow-api", "hosts": [SLOW_HOST],
    }  # fmt: skip
    document["consumers"]["agent"]["capabilities"] = ["my-api/*", "slow-api/*"]
    bundle = build_bundle(
        policy_json=canonical_json(document), secret_files={SECRET_PATH: factory.secret_file},
        serial=1, revision="rev-1", environment="test", expires_at=None,
        signing_key=factory.signing_key,
    )  # fmt: skip
    publish_bundle(bundle_dir, bundle, 1)


def test_a_slow_host_held_past_its_bulkhead_never_starves_a_fast_capability(
    two_hosts: RecordingUpstream,  # first: torn down after the runtime has stopped
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
) -> None:
    """Six streams held open on the slow host (two sent, four queued behind its bulkhead
    of two) while forty calls of the fast capability on the other host all complete."""
    publish_two_capabilities(factory, bundle_dir)
    runtime = start_runtime(
        "--dev-resolve", two_hosts.dev_resolve(HOST), "--dev-resolve",
        two_hosts.dev_resolve(SLOW_HOST), "--dev-ca-cert", str(two_hosts.ca_file),
        "--upstream-max-per-host", "2", "--upstream-max-connections", "4",
        "--upstream-queue-timeout", "60", dev=False,
    )  # fmt: skip

    def sent_to(host: str) -> int:
        return sum(1 for seen in two_hosts.seen if seen.header("host") == host)

    async def scenario() -> list[int]:
        async with httpx.AsyncClient(base_url=runtime.url, headers=AUTH, timeout=60) as client:

            async def slow() -> bytes:
                async with client.stream("GET", "/v/slow-api/v1/users/sse") as response:
                    return b"".join([chunk async for chunk in response.aiter_raw()])

            held = [asyncio.ensure_future(slow()) for _ in range(6)]
            while sent_to(SLOW_HOST) < 2:
                await asyncio.sleep(0.01)
            fast = [(await client.get(USERS)).status_code for _ in range(40)]
            assert sent_to(SLOW_HOST) == 2  # the other four wait in the slow host's queue
            assert not any(task.done() for task in held)
            two_hosts.sse_release.set()
            bodies = await asyncio.gather(*held)
            assert bodies == [b"data: first\n\ndata: second\n\n"] * 6
            return fast

    assert asyncio.run(scenario()) == [200] * 40
    assert sent_to(SLOW_HOST) == 6 and sent_to(HOST) == 40
