"""The audit log under OS faults: EMFILE, ENOSPC and EIO on open, flock, write and
statvfs, once and repeatedly. It must refuse (AuditUnavailable), hold the line,
never leave a torn line, and recover by itself once the fault is gone."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aivault_ops.runtime.observe.audit import MAX_HELD_LINES, AuditLog, AuditUnavailable
from aivault_ops.runtime.observe.audit_files import FileOps
from aivault_ops.runtime.observe.audit_settings import AuditSettings
from aivault_ops.runtime.observe.audit_verify import verify_chain

START = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
FAULTS = {"EMFILE": errno.EMFILE, "ENOSPC": errno.ENOSPC, "EIO": errno.EIO}


class Faults:
    """Makes one system call fail with `code` for the next `times` calls (-1: until
    `heal`)."""

    def __init__(self) -> None:
        self.failing: dict[str, tuple[int, int]] = {}

    def fail(self, call: str, code: int, times: int = -1) -> None:
        self.failing[call] = (code, times)

    def heal(self) -> None:
        self.failing.clear()

    def wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if name in self.failing:
                code, times = self.failing[name]
                if times != 0:
                    self.failing[name] = (code, times - 1)
                    raise OSError(code, os.strerror(code))
            return real(*args)

        return call

    def ops(self) -> FileOps:
        real = FileOps()
        calls = ("open", "write", "flock", "fstatvfs", "stat", "fstat")
        return replace(real, **{name: self.wrap(name, getattr(real, name)) for name in calls})


def record(log: AuditLog, status: int = 200) -> None:
    log.record(
        consumer="agent",
        capability="my-api/users",
        credential="my-api",
        method="GET",
        path="/v1/users",
        decision="allow",
        error=None,
        status=status,
        bytes_out=1,
        duration_ms=1.0,
        serial=1,
    )


def statuses(state: Path) -> list[int]:
    path = state / "audit" / "audit.jsonl"
    return [json.loads(line)["status"] for line in path.read_bytes().splitlines()]


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def log(tmp_path: Path, faults: Faults) -> AuditLog:
    return AuditLog(tmp_path, clock=lambda: START, ops=faults.ops())


@pytest.mark.parametrize("call", ["open", "flock", "write", "stat"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_failed_write_is_held_and_written_first_once_the_fault_is_gone(
    log: AuditLog, faults: Faults, tmp_path: Path, call: str, fault: str
) -> None:
    record(log, 200)
    log.close()  # so that the next write opens its descriptors again
    faults.fail(call, FAULTS[fault])
    with pytest.raises(
        AuditUnavailable, match=f"^audit log unavailable: {os.strerror(FAULTS[fault])}$"
    ):
        record(log, 201)
    with pytest.raises(AuditUnavailable):
        log.ensure_ready()
    health = log.health()
    assert (health.ok, health.held_lines, health.failures) == (False, 1, 2)
    faults.heal()
    log.ensure_ready()
    record(log, 202)
    assert statuses(tmp_path) == [200, 201, 202]
    assert verify_chain(tmp_path).ok
    assert log.health().ok


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_the_lock_descriptor_failing_to_open_is_retried_not_kept_broken(
    tmp_path: Path, faults: Faults, fault: str
) -> None:
    """The reported bug: a lock that failed to open stayed -1 and every later flock raised."""
    log = AuditLog(tmp_path, clock=lambda: START, ops=faults.ops())
    faults.fail("open", FAULTS[fault], times=1)
    with pytest.raises(AuditUnavailable):
        log.ensure_ready()
    log.ensure_ready()
    record(log)
    assert statuses(tmp_path) == [200]


def test_repeated_faults_keep_refusing_until_healed(log: AuditLog, faults: Faults) -> None:
    faults.fail("open", errno.EMFILE)
    for _ in range(5):
        with pytest.raises(AuditUnavailable):
            log.ensure_ready()
    assert log.health().failures == 5
    faults.heal()
    log.ensure_ready()
    assert log.health().ok


def test_a_short_write_is_cut_back_so_no_torn_line_stays(
    log: AuditLog, faults: Faults, tmp_path: Path
) -> None:
    record(log, 200)
    real_write = os.write

    def half(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2])

    log._files._ops = replace(log._files._ops, write=half)
    with pytest.raises(AuditUnavailable, match="short write"):
        record(log, 201)
    log._files._ops = faults.ops()
    record(log, 202)
    assert statuses(tmp_path) == [200, 201, 202]
    assert verify_chain(tmp_path).ok


def test_a_write_failing_after_the_bytes_landed_is_cut_back(log: AuditLog, tmp_path: Path) -> None:
    """EIO reported after a partial write: the bytes are removed, the line held."""
    record(log, 200)
    real_write = os.write

    def partial_then_eio(fd: int, data: bytes) -> int:
        real_write(fd, data[:10])
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    real_ops = log._files._ops
    log._files._ops = replace(real_ops, write=partial_then_eio)
    with pytest.raises(AuditUnavailable):
        record(log, 201)
    log._files._ops = real_ops
    record(log, 202)
    assert statuses(tmp_path) == [200, 201, 202]
    assert verify_chain(tmp_path).ok


def test_too_little_free_space_refuses_before_sending(tmp_path: Path) -> None:
    settings = AuditSettings(min_free_bytes=2**62, warn_free_bytes=2**62)
    log = AuditLog(tmp_path, clock=lambda: START, settings=settings)
    with pytest.raises(
        AuditUnavailable, match="bytes free on the audit filesystem, below the floor"
    ):
        log.ensure_ready()
    assert not log.health().ok


def test_held_lines_are_bounded_and_the_overflow_counted(
    log: AuditLog, faults: Faults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aivault_ops.runtime.observe import audit

    monkeypatch.setattr(audit, "MAX_HELD_LINES", 3)
    faults.fail("flock", errno.EIO)
    for status in range(200, 205):
        with pytest.raises(AuditUnavailable):
            record(log, status)
    health = log.health()
    assert (health.held_lines, health.dropped_lines) == (3, 2)
    faults.heal()
    log.ensure_ready()
    assert statuses(tmp_path) == [200, 201, 202]
    assert MAX_HELD_LINES == 10_000


def test_held_lines_from_an_earlier_day_stay_first_in_the_chain(
    tmp_path: Path, faults: Faults
) -> None:
    days = iter([START, START.replace(day=7)])
    log = AuditLog(tmp_path, clock=lambda: next(days), ops=faults.ops())
    faults.fail("write", errno.ENOSPC)
    with pytest.raises(AuditUnavailable):
        record(log, 200)  # dated the 6th
    faults.heal()
    record(log, 201)  # the 7th: the held line goes first, then the day turns over
    closed = tmp_path / "audit" / "audit-00000001-20261206T120000Z.jsonl"
    assert [json.loads(line)["status"] for line in closed.read_bytes().splitlines()] == [200]
    assert statuses(tmp_path) == [201]
    assert verify_chain(tmp_path).ok and verify_chain(tmp_path).lines == 2


def test_a_removed_audit_directory_is_made_again(log: AuditLog, tmp_path: Path) -> None:
    import shutil

    record(log, 200)
    log.close()
    shutil.rmtree(tmp_path / "audit")
    log.ensure_ready()
    record(log, 201)
    assert statuses(tmp_path) == [201]
    assert (tmp_path / "audit").stat().st_mode & 0o777 == 0o700
