"""The registry source and the Redis store wired into a runtime in this process.

The subprocess fleet tests (`test_oci_fleet.py`, `test_rate_limit_fleet.py`)
show the behaviour across processes; these run the same wiring in-process,
against the same real engines, so its branches are measured too: a runtime
built with `bundle_source` pulls, verifies and serves a bundle pushed to a
real registry and picks up the next one; one built with `rate_limit_store`
counts in a real Redis, and answers 503 E-RATE-LIMIT-UNAVAILABLE once that
Redis is gone.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support.bundles import TOKEN, BundleFactory
from support.engines import Redis, Registry
from support.inprocess import InProcessRuntime
from support.runtime_proc import wait_until
from support.upstream import RecordingUpstream

from aivault_ops.errors import UsageError
from aivault_ops.oci.client import RegistryClient
from aivault_ops.oci.reference import parse_reference
from aivault_ops.oci.repository import OciRepository

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _dev(factory: BundleFactory, upstream: RecordingUpstream) -> dict[str, object]:
    return {
        "identity": factory.identity,
        "trust": [factory.trust],
        "dev_resolve": [upstream.dev_resolve()],
        "dev_ca_cert": upstream.ca_file,
    }


def test_a_runtime_follows_a_registry_tag(
    tmp_path: Path, registry: Registry, factory: BundleFactory, upstream: RecordingUpstream
) -> None:
    reference = parse_reference(registry.url("inprocess/policy"))
    repository = OciRepository(RegistryClient(reference, plain_http=True))
    try:
        repository.publish(factory.build(1), serial=1, revision="r1", environment="test")
        options = {
            **_dev(factory, upstream),
            "bundle_dir": None,
            "bundle_source": f"{reference}:latest",
            "plain_http": True,
        }
        runtime = InProcessRuntime(tmp_path / "unused", tmp_path / "state", options).start()
        try:
            runtime.wait_serial(1)
            source = runtime.status()["bundleSource"]
            assert source["digest"].startswith("sha256:") and source["error"] is None
            response = httpx.get(runtime.url + "/v/my-api/v1/users", headers=AUTH, timeout=10)
            assert response.status_code == 200
            repository.publish(factory.build(2), serial=2, revision="r2", environment="test")
            runtime.wait_serial(2)
        finally:
            assert runtime.stop() == 0
        cached = sorted(p.name for p in (tmp_path / "state" / "oci-cache").iterdir())
        assert "bundle.tar.gz" in cached
    finally:
        repository.client.close()


def test_a_bundle_dir_and_a_bundle_source_are_one_or_the_other(
    tmp_path: Path, factory: BundleFactory, upstream: RecordingUpstream
) -> None:
    (tmp_path / "bundles").mkdir()
    options = {**_dev(factory, upstream), "bundle_source": "oci://127.0.0.1:1/x:latest"}
    with pytest.raises(UsageError, match="one of them"):
        InProcessRuntime(tmp_path / "bundles", tmp_path / "state", options).start()


def test_a_runtime_counts_in_redis_and_fails_closed_without_it(
    tmp_path: Path,
    own_redis: Redis,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    factory.publish(bundle_dir, 1, limits={"rateLimitPerMinute": 100})
    options = {**_dev(factory, upstream), "rate_limit_store": own_redis.url}
    runtime = InProcessRuntime(bundle_dir, tmp_path / "state", options).start()
    try:
        url = runtime.url + "/v/my-api/v1/users"
        assert httpx.get(url, headers=AUTH, timeout=10).status_code == 200
        assert runtime.status()["rateLimitStore"]["error"] is None
        own_redis.stop()
        response = httpx.get(url, headers=AUTH, timeout=10)
        assert (response.status_code, response.json()["error"]) == (
            503,
            "E-RATE-LIMIT-UNAVAILABLE",
        )
        wait_until(lambda: runtime.status()["state"] == "degraded", what="degraded")
    finally:
        assert runtime.stop() == 0
