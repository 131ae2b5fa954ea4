"""The audit filesystem running out: a warning (`degraded`) below the warning floor, a
clean refusal below the hard floor or on a real ENOSPC, and recovery once space
returns. A real small filesystem (tmpfs, when this user may mount one), a real TLS
upstream and the runtime served in this process."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.bundles import TOKEN, BundleFactory
from support.inprocess import InProcessRuntime
from support.runtime_proc import wait_until
from support.upstream import RecordingUpstream

from aivault_ops.runtime.observe.audit import AuditLog
from aivault_ops.runtime.observe.audit_settings import AuditSettings
from aivault_ops.runtime.observe.audit_verify import verify_chain

AUTH = {"Authorization": f"Bearer {TOKEN}"}
MIB = 1024 * 1024
UNAVAILABLE = "E-AUDIT-UNAVAILABLE"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs: its free space is the test's to spend."""
    mount = tmp_path / "small"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mount)]
    if os.geteuid() != 0 or subprocess.run(command, capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def free_bytes(path: Path) -> int:
    status = os.statvfs(path)
    return status.f_bavail * status.f_frsize


class Ballast:
    """Fills the filesystem down to a given free space, and frees it again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    def leave(self, free: int) -> None:
        """Add files until about `free` bytes are left (0: until the disk is full)."""
        path = self.directory / f"ballast-{self.count}"
        self.count += 1
        with path.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
            while free_bytes(self.directory) > free:
                handle.write(b"\0" * min(MIB, max(4096, free_bytes(self.directory) - free)))

    def remove(self) -> None:
        for path in self.directory.glob("ballast-*"):
            path.unlink()


def runtime_on(
    state: Path, factory: BundleFactory, bundle_dir: Path, upstream: RecordingUpstream, **audit: Any
) -> InProcessRuntime:
    factory.publish(bundle_dir, 1)
    options = {
        "identity": factory.identity,
        "trust": [factory.trust],
        "dev_resolve": [upstream.dev_resolve()],
        "dev_ca_cert": upstream.ca_file,
        **{f"audit_{name}": value for name, value in audit.items()},
    }
    return InProcessRuntime(bundle_dir, state, options).start()


def invoke(runtime: InProcessRuntime) -> httpx.Response:
    return httpx.get(runtime.url + "/v/my-api/v1/users", headers=AUTH, timeout=10)


def test_low_space_warns_then_refuses_then_recovers(
    small_fs: Path, factory: BundleFactory, bundle_dir: Path, upstream: RecordingUpstream
) -> None:
    runtime = runtime_on(
        small_fs / "state", factory, bundle_dir, upstream,
        min_free_bytes=4 * MIB, warn_free_bytes=10 * MIB,
    )  # fmt: skip
    ballast = Ballast(small_fs)
    try:
        assert invoke(runtime).status_code == 200
        status = runtime.status()
        assert status["state"] == "ready" and status["audit"]["freeBytes"] > 10 * MIB
        ballast.leave(7 * MIB)
        degraded = runtime.wait_error("below the warning floor of 10485760")
        assert degraded["state"] == "degraded" and degraded["audit"]["ok"] is True
        assert invoke(runtime).status_code == 200  # a warning, not a refusal
        metrics = httpx.get(runtime.url + "/metrics").text
        assert "aivault_audit_warning 1" in metrics and "aivault_audit_free_bytes " in metrics
        ballast.leave(2 * MIB)
        wait_until(lambda: invoke(runtime).status_code == 503, what="the refusal")
        sent = len(upstream.seen)
        refused = invoke(runtime)
        assert refused.json()["error"] == UNAVAILABLE and len(upstream.seen) == sent
        assert "below the floor of 4194304" in runtime.status()["lastError"]
        ballast.remove()
        wait_until(lambda: invoke(runtime).status_code == 200, what="recovery")
        assert runtime.status()["state"] == "ready"
    finally:
        ballast.remove()
        assert runtime.stop() == 0
    report = verify_chain(small_fs / "state")
    assert report.ok and report.lines >= 6


def test_a_full_disk_refuses_cleanly_holds_the_line_and_recovers(
    small_fs: Path, factory: BundleFactory, bundle_dir: Path, upstream: RecordingUpstream
) -> None:
    """No free-space floor at all: the write itself meets ENOSPC. The request that went
    out gets a 503 and its line is held; nothing more is sent until space returns."""
    runtime = runtime_on(
        small_fs / "state", factory, bundle_dir, upstream, min_free_bytes=0, warn_free_bytes=0
    )
    ballast = Ballast(small_fs)
    try:
        assert invoke(runtime).status_code == 200
        ballast.leave(0)
        codes = []
        for _ in range(40):  # a line fits in the file's last page until one does not
            codes.append(invoke(runtime).status_code)
            if codes[-1] != 200:
                break
        assert codes[-1] == 503 and set(codes[:-1]) <= {200}
        sent = len(upstream.seen)
        assert invoke(runtime).json()["error"] == UNAVAILABLE  # the held line comes first
        assert len(upstream.seen) == sent
        status = runtime.status()
        assert status["audit"]["heldLines"] >= 1
        full = f"({os.strerror(errno.ENOSPC)}|short write: \\d+ of \\d+ bytes)"  # cut back
        assert re.fullmatch(f"audit log unavailable: {full}", status["lastError"])
        ballast.remove()
        assert invoke(runtime).status_code == 200
        assert runtime.status()["audit"]["heldLines"] == 0
    finally:
        ballast.remove()
        assert runtime.stop() == 0
    report = verify_chain(small_fs / "state")
    assert (report.ok, report.lines) == (True, len(codes) + 3)


def test_the_warning_floor_degrades_status_but_serves(
    factory: BundleFactory, bundle_dir: Path, upstream: RecordingUpstream, tmp_path: Path
) -> None:
    """Any filesystem: a warning floor above the space there is."""
    runtime = runtime_on(tmp_path / "state", factory, bundle_dir, upstream)
    settings = AuditSettings(warn_free_bytes=2**62)
    runtime.process.runtime.audit = AuditLog(tmp_path / "state", settings=settings)
    try:
        assert invoke(runtime).status_code == 200
        status = runtime.status()
        assert status["state"] == "degraded"
        assert status["lastError"] == status["audit"]["warning"]
        assert status["audit"]["warning"].endswith(f"below the warning floor of {2**62}")
        assert status["audit"]["diskBytes"] > 0
    finally:
        assert runtime.stop() == 0
