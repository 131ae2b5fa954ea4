"""The registry poller in process: one pull per new digest, refusals, the cache, back-off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.bundles import BundleFactory
from support.engines import Registry

from aivault_ops.oci.artifact import bundle_manifest
from aivault_ops.oci.client import RegistryClient
from aivault_ops.oci.reference import parse_reference
from aivault_ops.oci.repository import OciRepository, PulledBundle
from aivault_ops.runtime.bundles.loader import Loader
from aivault_ops.runtime.bundles.oci_cache import BundleCache
from aivault_ops.runtime.bundles.oci_source import OciPoller, OciPollThread
from aivault_ops.runtime.bundles.state import RuntimeState, SerialFloor
from aivault_ops.runtime.observe.metrics import Metrics
from aivault_ops.sops import load_identities

NOW = datetime.now(UTC)


@pytest.fixture
def repository(registry: Registry, request: pytest.FixtureRequest) -> Iterator[OciRepository]:
    reference = parse_reference(registry.url(f"poller/{request.node.name.lower()}:latest"))
    client = RegistryClient(reference, plain_http=True)
    yield OciRepository(client)
    client.close()


class Pulls:
    """Counts layer downloads."""

    def __init__(self, repository: OciRepository) -> None:
        self.count = 0
        self._pull = repository.pull_manifest
        repository.pull_manifest = self  # type: ignore[method-assign]

    def __call__(self, fetched: object) -> PulledBundle:
        self.count += 1
        return self._pull(fetched)  # type: ignore[arg-type]


def poller(
    repository: OciRepository, factory: BundleFactory, state_dir: Path, now: datetime = NOW
) -> OciPoller:
    state_dir.mkdir(exist_ok=True)
    loader = Loader(
        [factory.signing_key.public_key], load_identities(factory.identity), lambda: now
    )
    return OciPoller(
        repository=repository,
        reference=repository.client.reference,
        loader=loader,
        state=RuntimeState(),
        floor=SerialFloor(state_dir),
        cache=BundleCache(state_dir),
        metrics=Metrics(),
        log=lambda *args, **kwargs: None,
        clock=lambda: now,
    )


def publish(repository: OciRepository, serial: int, data: bytes) -> None:
    repository.publish(data, serial=serial, revision=f"rev-{serial}", environment="test")


def test_a_new_digest_is_pulled_once_and_an_unchanged_tag_not_at_all(
    repository: OciRepository, factory: BundleFactory, tmp_path: Path
) -> None:
    pulls = Pulls(repository)
    source = poller(repository, factory, tmp_path / "state")
    publish(repository, 1, factory.build(1))
    assert source.poll() is True
    assert source.state.record.policy is not None and source.state.record.policy.serial == 1
    for _ in range(3):
        assert source.poll() is True
    assert pulls.count == 1
    health = source.health()
    assert not health.degraded
    assert health.detail["digest"] == repository.client.get_manifest("latest").digest  # type: ignore[union-attr]
    publish(repository, 2, factory.build(2))
    source.poll()
    assert (pulls.count, source.state.record.policy.serial) == (2, 2)  # type: ignore[union-attr]


def test_an_artifact_without_a_serial_annotation_is_refused(
    repository: OciRepository, factory: BundleFactory, tmp_path: Path
) -> None:
    data = factory.build(1)
    raw = json.loads(bundle_manifest(data, serial=1, revision="r", environment=None))
    del raw["annotations"]["dev.aivault-ops.bundle.serial"]
    repository.client.push_blob(b"{}")
    repository.client.push_blob(data)
    repository.client.put_manifest("latest", json.dumps(raw).encode())
    source = poller(repository, factory, tmp_path / "state")
    assert source.poll() is True  # the registry answered; the bundle was refused
    record = source.state.record
    assert record.policy is None
    assert "E-OCI-ARTIFACT: the manifest has no serial annotation" in str(record.last_error)


def test_the_cache_serves_after_a_restart_but_never_past_expiry(
    repository: OciRepository, factory: BundleFactory, tmp_path: Path
) -> None:
    publish(repository, 1, factory.build(1, expires_at=NOW + timedelta(hours=1)))
    first = poller(repository, factory, tmp_path / "state")
    first.poll()
    assert first.state.record.policy is not None

    restarted = poller(repository, factory, tmp_path / "state")
    restarted.start_from_cache()
    assert restarted.state.record.policy is not None
    assert restarted.health().detail["digest"] == first.health().detail["digest"]

    later = poller(repository, factory, tmp_path / "state", now=NOW + timedelta(hours=2))
    later.start_from_cache()
    assert later.state.record.policy is None
    assert "E-BUNDLE-EXPIRED" in str(later.state.record.last_error)


def test_another_sources_cache_is_not_used(
    repository: OciRepository, factory: BundleFactory, tmp_path: Path
) -> None:
    publish(repository, 1, factory.build(1))
    poller(repository, factory, tmp_path / "state").poll()
    other = OciRepository(RegistryClient(parse_reference("oci://127.0.0.1:1/other:latest")))
    elsewhere = poller(other, factory, tmp_path / "state")
    elsewhere.start_from_cache()
    assert elsewhere.state.record.policy is None


def test_polls_back_off_exponentially_with_jitter_while_the_registry_fails(
    factory: BundleFactory, tmp_path: Path
) -> None:
    down = OciRepository(
        RegistryClient(parse_reference("oci://127.0.0.1:1/down:latest"), plain_http=True)
    )
    source = poller(down, factory, tmp_path / "state")
    thread = OciPollThread(source, interval=1.0)
    assert 0.75 <= thread.next_wait() <= 1.0
    waits = []
    for _ in range(6):
        assert source.poll() is False
        waits.append(thread.next_wait())
    assert [round(w / 2**n, 2) >= 0.75 for n, w in enumerate(waits[:4], start=1)] == [True] * 4
    assert max(waits) <= 16.0
    health = source.health()
    assert health.degraded and health.detail["consecutiveFailures"] == 6
    assert "E-OCI-UNAVAILABLE" in health.detail["error"]
    down.client.close()
