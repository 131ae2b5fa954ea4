"""Reloads keep nothing: a retired policy is freed even after serving requests, and a few
hundred reloads leave the Python-level allocations of the runtime's code where they were.

Measured as Python-level allocations, not RSS, so the test depends neither on the
allocator nor on timing (every reload is a synchronous `Reloader.scan` after the bundle
is written): the interpreter's allocated blocks over 300 reloads, and tracemalloc (bytes
the runtime's own code allocated and still holds, by line) over 30. A warm-up fills the bounded
caches first (name keys, compiled patterns); after it, growth per reload must stay far
below what keeping a retired policy costs (KiB) or a record per bundle (hundreds of bytes).
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from support.bundles import TOKEN, BundleFactory
from support.inprocess import InProcessRuntime
from support.upstream import RecordingUpstream

from aivault_ops.runtime.bundles.loader import BundleDirectory, Loader
from aivault_ops.runtime.bundles.reload import Reloader
from aivault_ops.runtime.bundles.state import RuntimeState, SerialFloor
from aivault_ops.runtime.observe.metrics import Metrics
from aivault_ops.sops import load_identities

WARM_UP = 150
COUNTED = 300
TRACED = 30
# What a reload may still add after the warm-up. Without a leak: no block (counted over
# 300 reloads), 150-250 traced bytes (over 30; the json module's decoder objects, which
# do not grow with more reloads). A set of every bundle tried added about 4 blocks and
# 250 bytes per reload; a list of retired policies hundreds of blocks and 20 KiB.
BLOCKS_PER_RELOAD = 1
BYTES_PER_RELOAD = 512
OWN_CODE = [tracemalloc.Filter(True, "*/aivault_ops/*", all_frames=True)]


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Durability is not under test; on a shared disk each fsync can take tens of ms."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def publish(factory: BundleFactory, bundle_dir: Path, serial: int) -> Path:
    """Bundle `serial`, which also allows `/v1/gen-<serial>`."""
    return factory.publish(bundle_dir, serial, prefixes=("/v1/users", f"/v1/gen-{serial}"))


def test_a_retired_policy_that_served_requests_is_freed(
    tmp_path: Path, factory: BundleFactory, upstream: RecordingUpstream, bundle_dir: Path
) -> None:
    factory.publish(bundle_dir, 1)
    options = {
        "identity": factory.identity,
        "trust": [factory.trust],
        "dev_resolve": [upstream.dev_resolve()],
        "dev_ca_cert": upstream.ca_file,
        "poll_interval": 3600.0,
    }
    runtime = InProcessRuntime(bundle_dir, tmp_path / "state", options).start()
    reloader: Reloader = runtime.process.reload_thread._reloader  # type: ignore[attr-defined]
    retired = []
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
            for serial in range(2, 6):
                publish(factory, bundle_dir, serial)
                reloader.scan()
                policy = reloader.state.record.policy
                assert policy is not None and policy.serial == serial
                retired.append(weakref.ref(policy))
                del policy
                answer = client.get(f"{runtime.url}/v/my-api/v1/gen-{serial}")
                assert answer.status_code == 200, answer.text
    finally:
        assert runtime.stop() == 0
    gc.collect()
    assert [ref() is None for ref in retired] == [True, True, True, False]


def _reloader(factory: BundleFactory, bundle_dir: Path, state_dir: Path) -> Reloader:
    state_dir.mkdir()
    loader = Loader(
        [factory.signing_key.public_key],
        load_identities(factory.identity, {}),
        lambda: datetime.now(UTC),
    )
    return Reloader(
        BundleDirectory(bundle_dir),
        loader,
        RuntimeState(),
        SerialFloor(state_dir),
        Metrics(),
        lambda event, **fields: None,
        lambda: datetime.now(UTC),
    )


def _reload(reloader: Reloader, factory: BundleFactory, serials: range) -> None:
    for serial in serials:
        path = publish(factory, reloader.directory.directory, serial)
        reloader.scan()
        policy = reloader.state.record.policy
        assert policy is not None and policy.serial == serial
        path.unlink()  # as a publisher that keeps only the newest few would


def _own_allocations() -> tracemalloc.Snapshot:
    """What the runtime's code allocated (anywhere in the call stack) and still holds."""
    gc.collect()
    return tracemalloc.take_snapshot().filter_traces(OWN_CODE)


def _blocks() -> int:
    gc.collect()
    return sys.getallocatedblocks()


@pytest.fixture
def reloader(factory: BundleFactory, bundle_dir: Path, tmp_path: Path) -> Iterator[Reloader]:
    """As `serve` does, the objects alive before the first load are frozen: the full
    collection after each load then walks what the reloads made, not the test session's
    objects (about 75 ms a reload otherwise)."""
    factory.publish(bundle_dir, 1)
    gc.collect()
    gc.freeze()
    try:
        reloader = _reloader(factory, bundle_dir, tmp_path / "state")
        reloader.scan()
        yield reloader
    finally:
        gc.unfreeze()


@pytest.mark.timeout(300)
def test_hundreds_of_reloads_keep_no_python_objects(
    reloader: Reloader, factory: BundleFactory
) -> None:
    """Counted in the interpreter's own allocator: cheap enough for hundreds of reloads."""
    _reload(reloader, factory, range(2, 2 + WARM_UP))
    before = _blocks()
    _reload(reloader, factory, range(2 + WARM_UP, 2 + WARM_UP + COUNTED))
    growth = _blocks() - before
    assert growth <= BLOCKS_PER_RELOAD * COUNTED, f"{growth / COUNTED:.1f} blocks per reload"


@pytest.mark.timeout(300)
def test_reloads_keep_no_bytes_the_runtime_allocated(
    reloader: Reloader, factory: BundleFactory
) -> None:
    """Traced by tracemalloc, which slows a load down about 50 times (the generated schema
    validator): fewer reloads, each byte attributed to the line that allocated it."""
    _reload(reloader, factory, range(2, 2 + WARM_UP))
    tracemalloc.start(8)
    try:
        # Reload once traced first, so both snapshots hold an active policy.
        _reload(reloader, factory, range(2 + WARM_UP, 3 + WARM_UP))
        before = _own_allocations()
        _reload(reloader, factory, range(3 + WARM_UP, 3 + WARM_UP + TRACED))
        stats = _own_allocations().compare_to(before, "lineno")
    finally:
        tracemalloc.stop()
    growth = sum(stat.size_diff for stat in stats)
    top = ", ".join(f"{stat.traceback[0]}: {stat.size_diff:+} B" for stat in stats[:3])
    assert growth <= BYTES_PER_RELOAD * TRACED, f"{growth / TRACED:.0f} B per reload; {top}"
