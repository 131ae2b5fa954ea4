"""The passthrough route stops reading a caller's body at the capability's limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
from support.bundles import CANARY, SECRET_PATH, TOKEN, BundleFactory, policy
from support.runtime_proc import StartRuntime
from support.upstream import RecordingUpstream

from aivault_ops.policy_document import PolicyDocument
from aivault_ops.runtime.policy.active import ActivePolicy
from aivault_ops.secret import Secret

AUTH = {"Authorization": f"Bearer {TOKEN}"}
MESSAGE = "request body exceeds the limit of 1024 bytes"


def build(limits: dict[str, int]) -> ActivePolicy:
    return ActivePolicy.build(
        manifest={"serial": 1},
        policy=PolicyDocument.from_json(policy(limits=limits)),
        keyid="k",
        secrets={(SECRET_PATH, "MY_KEY"): Secret(CANARY)},
    )


def limit(policy: ActivePolicy) -> int | None:
    """The limit the passthrough route reads the body to: the authorized capability's."""
    authorized = policy.authorize_passthrough("agent", "my-api", "POST", "/v1/users")
    assert authorized.capability.name == "my-api/users"
    return authorized.capability.max_request_body_bytes


def test_max_request_body_bytes_per_capability() -> None:
    assert limit(build({"maxRequestBodyBytes": 1024})) == 1024
    assert limit(build({})) is None


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        sent += 65536
        yield b"x" * 65536


def test_passthrough_refuses_at_the_capability_limit(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    factory.publish(bundle_dir, 1, limits={"maxRequestBodyBytes": 1024})
    runtime = start_runtime()
    url = runtime.url + "/v/my-api/v1/users"
    declared = httpx.post(url, headers=AUTH, content=b"y" * 2000, timeout=10)
    streamed = httpx.post(url, headers=AUTH, content=_chunks(4 * 1024 * 1024), timeout=10)
    exact = httpx.post(url, headers=AUTH, content=b"z" * 1024, timeout=10)
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json() == {"error": "E-BODY-TOO-LARGE", "message": MESSAGE}
    assert exact.status_code == 200
    assert [seen.body for seen in upstream.seen] == [b"z" * 1024]
