"""A fleet on real engines: a registry, several runtimes polling one tag.

The registry is Debian's `docker-registry` (the CNCF distribution registry)
on loopback; each runtime is a real `serve` subprocess with its own state
dir, as on separate machines.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.bundles import CANARY, TOKEN, BundleFactory
from support.engines import Registry
from support.fleet import Fleet, dev_args
from support.runtime_proc import RuntimeProcess, wait_until
from support.upstream import RecordingUpstream

from aivault_ops.bundle.archive import pack_entries
from aivault_ops.oci.client import RegistryClient
from aivault_ops.oci.reference import parse_reference
from aivault_ops.oci.repository import OciRepository


def tampered(data: bytes) -> bytes:
    """The same bundle with policy.json changed after signing (push rights, no signing key)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        entries = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]
    entries["policy.json"] = entries["policy.json"].replace(b'"GET"', b'"DELETE","GET"')
    return pack_entries(entries)


@pytest.fixture
def oci_fleet(
    tmp_path: Path, own_registry: Registry, factory: BundleFactory, upstream: RecordingUpstream
) -> Iterator[tuple[Fleet, OciRepository]]:
    reference = parse_reference(own_registry.url("fleet/policy"))
    repository = OciRepository(RegistryClient(reference, plain_http=True))
    fleet = Fleet(
        tmp_path,
        f"{reference}:latest",
        ["--identity", str(factory.identity), "--trust", factory.trust, *dev_args(upstream)],
    )
    yield fleet, repository
    fleet.stop()
    repository.client.close()
    for runtime in fleet.started:
        assert CANARY not in runtime.log()


def push(repository: OciRepository, serial: int, data: bytes) -> None:
    repository.publish(data, serial=serial, revision=f"rev-{serial}", environment="test")


def call(runtime: RuntimeProcess, method: str = "GET") -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.request(method, runtime.url + "/v/my-api/v1/users", headers=headers).status_code


def test_tampering_rollback_and_a_registry_outage_never_stop_serving(
    oci_fleet: tuple[Fleet, OciRepository], own_registry: Registry, factory: BundleFactory
) -> None:
    fleet, repository = oci_fleet
    push(repository, 1, factory.build(1))
    push(repository, 2, factory.build(2))
    runtimes = [fleet.start("a"), fleet.start("b")]
    for runtime in runtimes:
        runtime.wait_serial(2)

    push(repository, 3, tampered(factory.build(3)))
    for runtime in runtimes:
        status = runtime.wait_error("E-BUNDLE-DIGEST")
        assert (status["serial"], status["state"]) == (2, "ready")
        assert call(runtime, "DELETE") == 405 and call(runtime) == 200

    old = repository.client.get_manifest("serial-1")
    assert old is not None
    repository.client.put_manifest("latest", old.raw)  # an old, validly signed bundle
    for runtime in runtimes:
        status = runtime.wait_error("E-BUNDLE-ROLLBACK")
        assert (status["serial"], status["state"]) == (2, "ready")
        assert call(runtime) == 200

    own_registry.stop()
    for runtime in runtimes:
        wait_until(lambda r=runtime: r.status()["state"] == "degraded", what="degraded")
        source = runtime.status()["bundleSource"]
        assert "E-OCI-UNAVAILABLE" in source["error"] and source["errorSince"]
        assert call(runtime) == 200
    runtimes[0].stop()
    restarted = fleet.start("a")  # same state dir: the cached bundle, registry still down
    assert (restarted.status()["serial"], call(restarted)) == (2, 200)
    assert restarted.status()["bundleSource"]["error"] is not None

    own_registry.start()
    push(repository, 4, factory.build(4, methods=("GET", "DELETE")))
    for runtime in (restarted, runtimes[1]):
        runtime.wait_serial(4)
        wait_until(lambda r=runtime: r.status()["state"] == "ready", what="ready again")
        assert runtime.status()["bundleSource"]["error"] is None
        assert call(runtime, "DELETE") == 200
