"""Hot reload against a real runtime: new bundles apply, bad ones never disturb it."""

from __future__ import annotations

import errno
import io
import os
import tarfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.bundles import TOKEN, BundleFactory
from support.runtime_proc import RuntimeProcess, StartRuntime, wait_until
from support.upstream import RecordingUpstream

from aivault_ops.bundle import SigningKey
from aivault_ops.bundle.archive import pack_entries
from aivault_ops.runtime.bundles import reload as reload_module
from aivault_ops.runtime.bundles import state as state_module
from aivault_ops.runtime.bundles.loader import BundleDirectory, Loader
from aivault_ops.runtime.bundles.reload import Reloader, ReloadThread
from aivault_ops.runtime.bundles.state import RuntimeState, SerialFloor
from aivault_ops.runtime.observe.audit import HEALTHY
from aivault_ops.runtime.observe.metrics import Metrics
from aivault_ops.sops import load_identities

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def call(runtime: RuntimeProcess, method: str = "GET") -> int:
    return httpx.request(method, runtime.url + "/v/my-api/v1/users", headers=AUTH).status_code


def drop(bundle_dir: Path, name: str, data: bytes) -> None:
    """Write `data` as `name` atomically (temp file, then rename)."""
    temp = bundle_dir / f".incoming-{name}"
    temp.write_bytes(data)
    temp.rename(bundle_dir / name)


def tampered(data: bytes) -> bytes:
    """The same bundle with policy.json changed after signing."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        entries = {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
        }
    entries["policy.json"] = entries["policy.json"].replace(b'"GET"', b'"DELETE","GET"')
    return pack_entries(entries)


def test_a_new_bundle_changes_behaviour_without_restart(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    factory.publish(bundle_dir, 1, methods=("GET",))
    runtime = start_runtime()
    assert call(runtime, "DELETE") == 405
    factory.publish(bundle_dir, 2, methods=("GET", "DELETE"))
    runtime.wait_serial(2)
    assert call(runtime, "DELETE") == 200
    status = runtime.status()
    assert (status["revision"], status["lastError"]) == ("rev-2", None)


def test_bad_bundles_are_ignored_while_requests_keep_succeeding(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    factory.publish(bundle_dir, 3)
    runtime = start_runtime()
    cases = [
        ("bundle-4.tar.gz", tampered(factory.build(4)), "E-BUNDLE-DIGEST"),
        ("bundle-5.tar.gz", factory.build(5, key=SigningKey.generate()), "E-BUNDLE-UNTRUSTED"),
        ("bundle-6.tar.gz", factory.build(6)[:300], "E-BUNDLE-ARCHIVE"),
        ("bundle-2.tar.gz", factory.build(2), "E-BUNDLE-ROLLBACK"),
        ("bundle-7.tar.gz", factory.build(1), "E-BUNDLE-SERIAL-NAME"),
    ]
    for name, data, code in cases:
        drop(bundle_dir, name, data)
        status = runtime.wait_error(f"{name}: {code}")
        assert (status["serial"], status["state"]) == (3, "ready")
        assert call(runtime) == 200
        (bundle_dir / name).unlink()
    metrics = httpx.get(runtime.url + "/metrics").text
    assert 'aivault_reloads_total{result="error"}' in metrics


def test_a_restart_keeps_the_serial_floor(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    factory.publish(bundle_dir, 1)
    factory.publish(bundle_dir, 2)
    first = start_runtime()
    assert first.status()["serial"] == 2
    assert first.stop() == 0
    again = start_runtime()
    assert again.status()["serial"] == 2, "the accepted bundle loads again after a restart"
    again.stop()
    (bundle_dir / "bundle-2.tar.gz").unlink()
    rolled_back = start_runtime()
    status = rolled_back.status()
    assert status["state"] == "not_ready"
    assert "bundle-1.tar.gz: E-BUNDLE-ROLLBACK" in status["lastError"]
    assert call(rolled_back) == 503


def test_same_serial_with_other_content_is_refused_after_restart(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    factory.publish(bundle_dir, 1)
    start_runtime().stop()
    drop(bundle_dir, "bundle-1.tar.gz", factory.build(1, methods=("GET", "DELETE")))
    runtime = start_runtime()
    assert runtime.status()["state"] == "not_ready"
    assert "differs from the bundle accepted" in runtime.status()["lastError"]


def test_an_atomic_rename_is_picked_up(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    runtime = start_runtime()
    assert runtime.status()["state"] == "not_ready"
    drop(bundle_dir, "bundle-1.tar.gz", factory.build(1))
    runtime.wait_serial(1)
    assert call(runtime) == 200


def test_a_kubernetes_style_symlink_swap_is_picked_up(
    start_runtime: StartRuntime, factory: BundleFactory, bundle_dir: Path
) -> None:
    def version(serial: int) -> None:
        real = bundle_dir / f"..2026_{serial}"
        real.mkdir()
        (real / f"bundle-{serial}.tar.gz").write_bytes(factory.build(serial))
        (bundle_dir / "..data_tmp").symlink_to(real.name)
        os.replace(bundle_dir / "..data_tmp", bundle_dir / "..data")
        link = bundle_dir / f"bundle-{serial}.tar.gz"
        link.symlink_to(f"..data/bundle-{serial}.tar.gz")
        old = bundle_dir / f"bundle-{serial - 1}.tar.gz"
        if old.is_symlink():
            old.unlink()

    version(1)
    runtime = start_runtime()
    assert runtime.status()["serial"] == 1
    version(2)
    runtime.wait_serial(2)
    assert call(runtime) == 200


def test_fifty_reloads_under_load_fail_no_request(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    factory.publish(bundle_dir, 1)
    runtime = start_runtime()
    bundles = {serial: factory.build(serial) for serial in range(2, 52)}
    done = threading.Event()
    results: list[int] = []

    def load() -> None:
        with httpx.Client(base_url=runtime.url, headers=AUTH) as client:
            while not done.is_set() and len(results) < 100_000:
                results.append(client.get("/v/my-api/v1/users").status_code)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        for serial, data in bundles.items():
            drop(bundle_dir, f"bundle-{serial}.tar.gz", data)
            runtime.wait_serial(serial)
    finally:
        done.set()
        worker.join(timeout=30)
    wait_until(lambda: not worker.is_alive(), what="request loop")
    assert len(results) > 50
    assert [code for code in results if code != 200] == []
    assert runtime.status()["lastError"] is None


# The same reload logic in this process: `Reloader.scan` and `ReloadThread` directly.


def reloads(reloader: Reloader) -> dict[str, int]:
    """The reload counts by result, as `/metrics` shows them."""
    text = reloader.metrics.render(None, HEALTHY)
    return {
        sample.labels["result"]: int(sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == "aivault_reloads"
        for sample in family.samples
    }


def reloader_for(factory: BundleFactory, bundle_dir: Path, state_dir: Path) -> Reloader:
    state_dir.mkdir(exist_ok=True)
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


def test_scan_falls_back_to_the_newest_valid_bundle(
    factory: BundleFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    factory.publish(bundle_dir, 1)
    drop(bundle_dir, "bundle-2.tar.gz", tampered(factory.build(2)))
    reloader = reloader_for(factory, bundle_dir, tmp_path / "state")
    reloader.scan()
    record = reloader.state.record
    assert record.policy is not None and record.policy.serial == 1
    assert str(record.last_error).startswith("bundle-2.tar.gz: E-BUNDLE-DIGEST: ")
    assert reloads(reloader) == {"ok": 1, "error": 1}


def test_a_refused_bundle_is_not_retried_until_its_bytes_change(
    factory: BundleFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    factory.publish(bundle_dir, 1)
    reloader = reloader_for(factory, bundle_dir, tmp_path / "state")
    reloader.scan()
    drop(bundle_dir, "bundle-2.tar.gz", factory.build(2, key=SigningKey.generate()))
    reloader.scan()
    (bundle_dir / "unrelated.txt").write_text("a change in the directory")
    reloader.scan()
    assert reloads(reloader) == {"ok": 1, "error": 1}
    drop(bundle_dir, "bundle-2.tar.gz", factory.build(2))
    reloader.scan()
    assert reloads(reloader) == {"ok": 2, "error": 1}
    assert reloader.state.record.last_error is None


def test_an_unlistable_directory_is_reported(
    factory: BundleFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    reloader = reloader_for(factory, bundle_dir, tmp_path / "state")
    bundle_dir.rmdir()
    reloader.scan()
    assert (
        reloader.state.record.last_error == f"{bundle_dir}: cannot list: No such file or directory"
    )
    assert reloads(reloader) == {"error": 1}


def test_a_floor_that_cannot_be_written_blocks_activation(
    factory: BundleFactory, bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(path: Path, data: bytes, **_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    factory.publish(bundle_dir, 1)
    reloader = reloader_for(factory, bundle_dir, tmp_path / "state")
    monkeypatch.setattr(state_module, "replace_file", disk_full)
    reloader.scan()
    assert reloader.state.record.policy is None
    assert reloader.state.record.last_error == (
        "bundle-1.tar.gz: cannot persist the serial floor: No space left on device"
    )


def test_reload_thread_picks_up_a_new_bundle_and_stops(
    factory: BundleFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    reloader = reloader_for(factory, bundle_dir, tmp_path / "state")
    thread = ReloadThread(reloader, poll_interval=30)
    thread.start()
    try:
        factory.publish(bundle_dir, 1)
        wait_until(lambda: reloader.state.record.policy is not None, what="watchdog reload")
    finally:
        thread.stop()
    record = reloader.state.record
    assert record.policy is not None and record.policy.serial == 1


def test_an_in_flight_request_finishes_on_the_policy_it_started_with(
    start_runtime: StartRuntime,
    factory: BundleFactory,
    bundle_dir: Path,
    upstream: RecordingUpstream,
) -> None:
    factory.publish(bundle_dir, 1)
    runtime = start_runtime()
    result: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: result.append(
            httpx.get(runtime.url + "/v/my-api/v1/users/slow", headers=AUTH, timeout=30)
        )
    )
    slow.start()
    wait_until(lambda: len(upstream.seen) == 1, what="the slow request upstream")
    factory.publish(bundle_dir, 2, methods=("POST",))
    runtime.wait_serial(2)
    assert call(runtime) == 405
    slow.join(timeout=30)
    [response] = result
    assert response.status_code == 200


def test_an_older_bundle_is_reported_once(
    factory: BundleFactory, bundle_dir: Path, tmp_path: Path
) -> None:
    factory.publish(bundle_dir, 3)
    reloader = reloader_for(factory, bundle_dir, tmp_path / "state")
    reloader.scan()
    factory.publish(bundle_dir, 2)
    reloader.scan()
    assert reloader.state.record.last_error == (
        "bundle-2.tar.gz: E-BUNDLE-ROLLBACK: serial 2 is not newer than the active 3"
    )
    (bundle_dir / "unrelated.txt").write_text("another change")
    reloader.scan()
    assert reloads(reloader) == {"ok": 1, "error": 1}
    record = reloader.state.record
    assert record.policy is not None and record.policy.serial == 3


def test_each_scan_that_looked_at_bundles_returns_freed_memory(
    factory: BundleFactory, bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def release() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(reload_module, "release_free_memory", release)
    factory.publish(bundle_dir, 1)
    reloader = reloader_for(factory, bundle_dir, tmp_path / "state")
    reloader.scan()
    reloader.scan()  # nothing changed: nothing loaded, nothing to return
    assert reloader.state.record.policy is not None
    assert calls == [1]
