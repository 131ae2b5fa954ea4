"""Bundles in a real distribution registry: publish, list, pull, the publish lock."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.engines import Registry

from aivault_ops.bundle.errors import BundleExists
from aivault_ops.oci.artifact import (
    ARTIFACT_TYPE,
    EMPTY_BLOB,
    MAX_MANIFEST_BYTES,
    bundle_manifest,
    lock_manifest,
)
from aivault_ops.oci.client import RegistryClient
from aivault_ops.oci.errors import (
    OciArtifactError,
    OciBlobUnknown,
    OciLockBusy,
    OciNotFound,
    OciUnavailable,
)
from aivault_ops.oci.reference import parse_reference
from aivault_ops.oci.repository import LOCK_PREFIX, LOCK_TTL_S, OciRepository


@pytest.fixture
def repository(registry: Registry, request: pytest.FixtureRequest) -> Iterator[OciRepository]:
    name = "repo/" + request.node.name.lower().replace("[", "-").replace("]", "")
    client = RegistryClient(parse_reference(registry.url(name)), plain_http=True)
    yield OciRepository(client)
    client.close()


def publish(repository: OciRepository, serial: int, data: bytes | None = None) -> str:
    body = data or f"bundle {serial}".encode()
    return repository.publish(body, serial=serial, revision=f"r{serial}", environment="test")


def test_published_bundles_are_listed_by_serial_and_pulled_whole(
    repository: OciRepository,
) -> None:
    assert repository.list() == []
    for serial in (1, 2, 10):
        publish(repository, serial)
    assert [ref.serial for ref in repository.list()] == [1, 2, 10]
    latest = repository.pull("latest")
    assert latest.data == b"bundle 10"
    assert (latest.artifact.serial, latest.artifact.revision) == (10, "r10")
    assert json.loads(latest.manifest.raw)["artifactType"] == ARTIFACT_TYPE
    assert repository.pull(latest.manifest.digest).data == b"bundle 10"
    assert repository.read(repository.list()[0]) == b"bundle 1"


def test_a_serial_is_never_published_twice(repository: OciRepository) -> None:
    publish(repository, 1)
    with pytest.raises(BundleExists, match="serial-1 already exists"):
        publish(repository, 1, b"another bundle")
    assert repository.pull("serial-1").data == b"bundle 1"


def test_the_moving_tag_answers_conditional_requests(repository: OciRepository) -> None:
    publish(repository, 1)
    first = repository.client.get_manifest("latest")
    assert first is not None
    assert repository.client.get_manifest("latest", etag=first.etag) is None
    publish(repository, 2)
    second = repository.client.get_manifest("latest", etag=first.etag)
    assert second is not None and second.digest != first.digest


def test_a_missing_tag_and_a_stopped_registry_are_told_apart(own_registry: Registry) -> None:
    client = RegistryClient(parse_reference(own_registry.url("a/b")), plain_http=True)
    try:
        with pytest.raises(OciNotFound):
            client.get_manifest("latest")
        own_registry.stop()
        started = time.monotonic()
        with pytest.raises(OciUnavailable, match="unreachable"):
            client.get_manifest("latest")
        assert time.monotonic() - started < 5  # no retry loop with sleeps
    finally:
        client.close()


def test_an_oversized_manifest_is_refused(repository: OciRepository) -> None:
    raw = json.loads(bundle_manifest(b"x", serial=1, revision="r", environment=None))
    raw["annotations"]["padding"] = "x" * MAX_MANIFEST_BYTES
    repository.client.push_blob(b"{}")
    repository.client.push_blob(b"x")
    repository.client.put_manifest("big", json.dumps(raw).encode())
    with pytest.raises(OciArtifactError, match="larger than"):
        repository.pull("big")


def test_the_lock_lets_one_holder_in_at_a_time(repository: OciRepository) -> None:
    inside, overlaps, errors = [0], [0], []

    def hold() -> None:
        own = OciRepository(RegistryClient(repository.client.reference, plain_http=True))
        try:
            with own.lock(wait_s=60):
                inside[0] += 1
                overlaps[0] = max(overlaps[0], inside[0])
                time.sleep(0.05)
                inside[0] -= 1
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            own.client.close()

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert overlaps[0] == 1
    # Every lock was released: the next apply gets in at once, and no lock tag is left
    # (the next holder removes any a release lost to a race inside the registry).
    started = time.monotonic()
    with repository.lock(wait_s=0.5):
        assert time.monotonic() - started < 10
    assert lock_tags(repository) == []


def lock_tags(repository: OciRepository) -> list[str]:
    return [tag for tag in repository.client.tags() if tag.startswith(LOCK_PREFIX)]


class FlakyDeleteClient(RegistryClient):
    """The registry answers its first `failures` deletes with an error (as distribution
    does when another client writes a tag while it looks up the deleted manifest's)."""

    failures = 2

    def delete_manifest(self, digest: str) -> bool:
        if self.failures:
            self.failures -= 1
            raise OciUnavailable("HTTP 500 (UNKNOWN)")
        return super().delete_manifest(digest)


def test_a_release_the_registry_fails_is_tried_again(repository: OciRepository) -> None:
    client = FlakyDeleteClient(repository.client.reference, plain_http=True)
    flaky = OciRepository(client, sleep=lambda _: None)
    with flaky.lock(wait_s=5):
        assert len(lock_tags(repository)) == 1
    assert client.failures == 0
    assert lock_tags(repository) == []
    client.close()


def test_the_next_holder_removes_lock_tags_nobody_holds(
    repository: OciRepository, registry: Registry
) -> None:
    client = repository.client
    # A crashed apply's lock, older than the lock's time to live.
    crashed = OciRepository(client, clock=lambda: time.time() - LOCK_TTL_S - 60)
    tag, nonce = crashed._lock_name()
    crashed._put_manifest(tag, lock_manifest(nonce), blobs=(EMPTY_BLOB,))
    # A released lock whose delete never happened (a registry refusing deletes).
    tag, nonce = repository._lock_name()
    client.put_manifest(tag, lock_manifest(f"{nonce}-released"))
    # A tag whose manifest is gone: what a delete that lost the registry's race leaves.
    tag, nonce = repository._lock_name()
    digest = client.put_manifest(tag, lock_manifest(f"{nonce}-released-too"))
    revisions = registry.workdir / "data/docker/registry/v2/repositories"
    link = (
        revisions / client.reference.repository / "_manifests/revisions" / digest.replace(":", "/")
    )
    shutil.rmtree(link)
    with pytest.raises(OciNotFound):
        client.get_manifest(tag)
    assert len(lock_tags(repository)) == 3

    with repository.lock(wait_s=5):
        assert len(lock_tags(repository)) == 1  # ours
    assert lock_tags(repository) == []


class NoDeleteClient(RegistryClient):
    """A registry that refuses deletes (as GHCR's OCI API does); counts manifest puts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.puts: list[str] = []

    def put_manifest(self, ref: str, raw: bytes) -> str:
        self.puts.append(ref)
        return super().put_manifest(ref, raw)

    def delete_manifest(self, digest: str) -> bool:
        return False


def test_where_tags_cannot_be_deleted_the_sweep_stops_at_the_first(
    repository: OciRepository,
) -> None:
    for _ in range(3):
        tag, nonce = repository._lock_name()
        repository._put_manifest(tag, lock_manifest(f"{nonce}-released"), blobs=(EMPTY_BLOB,))
    client = NoDeleteClient(repository.client.reference, plain_http=True)
    with OciRepository(client).lock(wait_s=5):
        pass
    ours = client.puts[0]
    assert len([ref for ref in client.puts if ref != ours]) == 1
    assert len(lock_tags(repository)) == 4  # released, blocking nobody
    client.close()


def test_a_held_lock_makes_the_next_apply_wait_then_give_up(repository: OciRepository) -> None:
    with repository.lock():
        started = time.monotonic()
        busy = pytest.raises(OciLockBusy, match="another apply holds the publish lock")
        with busy, repository.lock(wait_s=0.5):
            pass
        assert time.monotonic() - started < 10


def test_a_manifest_naming_a_missing_blob_gets_the_registry_s_code(
    repository: OciRepository,
) -> None:
    raw = bundle_manifest(b"never pushed", serial=1, revision="r1", environment=None)
    with pytest.raises(OciBlobUnknown, match=r"HTTP 400 \(.*MANIFEST_BLOB_UNKNOWN.*\)"):
        repository.client.put_manifest("serial-1", raw)


class BlobLosingClient(RegistryClient):
    """Deletes the manifest's blobs just before its first two puts: what another
    client's concurrent upload of the same blob looks like to the registry."""

    losses = 2

    def put_manifest(self, ref: str, raw: bytes) -> str:
        if self.losses:
            self.losses -= 1
            document = json.loads(raw)
            digests = {d["digest"] for d in [document["config"], *document["layers"]]}
            for digest in digests:
                with self._open("DELETE", f"blobs/{digest}") as response:
                    assert response.status_code == 202
        return super().put_manifest(ref, raw)


def test_publish_and_lock_push_again_while_a_blob_is_reported_unknown(
    repository: OciRepository,
) -> None:
    client = BlobLosingClient(repository.client.reference, plain_http=True)
    losing = OciRepository(client)
    with losing.lock(wait_s=5):
        assert client.losses == 0
        client.losses = 2
        publish(losing, 1)
    assert client.losses == 0
    assert repository.pull("serial-1").data == b"bundle 1"
    client.close()
