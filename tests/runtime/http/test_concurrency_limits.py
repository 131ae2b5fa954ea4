"""`maxConcurrent` and the upstream bulkhead through a real runtime.

A streamed answer (`/sse`) is held open by the upstream until the test
releases it, so a capability's place (and its upstream connection) stays
taken while the test checks what other requests get: behaviour, not timing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from support.bundles import TOKEN, BundleFactory
from support.runtime_proc import RuntimeProcess, StartRuntime, wait_until
from support.upstream import RecordingUpstream

AUTH = {"Authorization": f"Bearer {TOKEN}"}
USERS = "/v/my-api/v1/users"


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
