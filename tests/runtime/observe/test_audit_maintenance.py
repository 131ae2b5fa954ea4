"""Compression and retention of closed audit files; `verify` across gzip'd files and from
the anchor that pruning leaves; what it reports when files or the anchor are tampered."""

from __future__ import annotations

import errno
import gzip
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aivault_ops.runtime.observe import audit_maintenance
from aivault_ops.runtime.observe.audit import AuditLog
from aivault_ops.runtime.observe.audit_anchor import ANCHOR_NAME, read_anchor
from aivault_ops.runtime.observe.audit_maintenance import expired_prefix, over_budget_prefix
from aivault_ops.runtime.observe.audit_segments import ACTIVE_NAME, list_segments
from aivault_ops.runtime.observe.audit_settings import AuditSettings
from aivault_ops.runtime.observe.audit_verify import line_hash, verify_chain

START = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
SMALL = {"max_file_bytes": 1024, "rotate": "size"}


def record(log: AuditLog, status: int = 200) -> None:
    log.record(
        consumer="agent", capability="my-api/users", credential="my-api", method="GET",
        path="/v1/users", decision="allow", error=None, status=status, bytes_out=1,
        duration_ms=1.0, serial=1,
    )  # fmt: skip


def filled(state: Path, count: int = 30, background: bool = False, **settings: Any) -> AuditLog:
    """A log of `count` lines over many small files; maintenance left to the test
    unless `background`."""
    log = AuditLog(state, clock=lambda: START, settings=AuditSettings(**{**SMALL, **settings}))
    if not background:
        log.maintenance.schedule = lambda: None  # type: ignore[method-assign]
    for status in range(200, 200 + count):
        record(log, status)
    return log


def statuses(state: Path) -> list[int]:
    found = []
    for segment in list_segments(state / "audit"):
        data = segment.path.read_bytes()
        if segment.compressed:
            data = gzip.decompress(data)
        found += [json.loads(line)["status"] for line in data.splitlines()]
    return found


def test_prefix_rules_keep_one_unbroken_tail() -> None:
    assert expired_prefix([1.0, 5.0, 2.0, 9.0], cutoff=3.0) == 3  # up to the newest expired
    assert expired_prefix([5.0, 9.0], cutoff=3.0) == 0
    assert over_budget_prefix([10, 10, 10], active=5, budget=25) == 1
    assert over_budget_prefix([10, 10, 10], active=5, budget=24) == 2
    assert over_budget_prefix([10, 10], active=50, budget=25) == 2  # the active file stays
    assert over_budget_prefix([10, 10], active=0, budget=20) == 0


def test_closed_files_but_the_newest_are_gzipped_and_verify_reads_them(tmp_path: Path) -> None:
    log = filled(tmp_path)
    before = {s.name: s.path.read_bytes() for s in list_segments(tmp_path / "audit")}
    mtimes = {s.name: s.path.stat().st_mtime_ns for s in list_segments(tmp_path / "audit")}
    report = log.maintenance.run()
    segments = list_segments(tmp_path / "audit")
    assert [s.compressed for s in segments] == [True] * (len(segments) - 2) + [False, False]
    assert report.compressed == len(segments) - 2 and report.pruned == 0
    for segment in segments:
        data = segment.path.read_bytes()
        assert (gzip.decompress(data) if segment.compressed else data) == before[segment.name]
        assert segment.path.stat().st_mtime_ns == mtimes[segment.name]  # age kept for retention
    assert statuses(tmp_path) == list(range(200, 230))
    chain = verify_chain(tmp_path)
    assert (chain.ok, chain.lines, chain.files, chain.anchor) == (True, 30, len(segments), None)
    assert not [p for p in (tmp_path / "audit").iterdir() if p.name.endswith(".tmp")]


def test_without_gzip_nothing_is_compressed(tmp_path: Path) -> None:
    log = filled(tmp_path, gzip=False)
    assert log.maintenance.run().compressed == 0
    assert not any(s.compressed for s in list_segments(tmp_path / "audit"))


def test_retention_by_bytes_prunes_the_oldest_and_records_the_anchor(tmp_path: Path) -> None:
    log = filled(tmp_path, retain_bytes=3000)
    closed = list_segments(tmp_path / "audit")[:-1]
    tails = {s.name: s.path.read_bytes().splitlines()[-1] for s in closed}
    log.maintenance.run()
    kept = list_segments(tmp_path / "audit")
    assert sum(s.path.stat().st_size for s in kept) <= 3000
    assert kept[-1].path.name == ACTIVE_NAME and len(kept) < len(closed)
    anchor = read_anchor(tmp_path / "audit")
    assert anchor is not None
    pruned = closed[: anchor.files]
    assert anchor.through == pruned[-1].name
    assert anchor.prev == line_hash(tails[pruned[-1].name])
    assert anchor.last_ts == "2026-11-27T12:00:00.000Z"
    retained = statuses(tmp_path)
    assert retained == list(range(230 - len(retained), 230))
    chain = verify_chain(tmp_path)
    assert (chain.ok, chain.lines, chain.anchor) == (True, len(retained), anchor)


def test_retention_by_age_uses_the_time_a_file_was_last_written(tmp_path: Path) -> None:
    log = filled(tmp_path, retain_days=2)
    closed = list_segments(tmp_path / "audit")[:-1]
    now = START.timestamp()
    for index, segment in enumerate(closed):
        age = timedelta(days=3) if index < 4 else timedelta(days=1)
        os.utime(segment.path, (now - age.total_seconds(),) * 2)
    assert log.maintenance.run().pruned == 4
    anchor = read_anchor(tmp_path / "audit")
    assert anchor is not None and (anchor.files, anchor.through) == (4, closed[3].name)
    assert verify_chain(tmp_path).ok


def test_pruning_twice_adds_up_and_a_writer_after_everything_went_chains_from_the_anchor(
    tmp_path: Path,
) -> None:
    log = filled(tmp_path, count=10, retain_bytes=1)
    log.maintenance.run()
    first = read_anchor(tmp_path / "audit")
    for status in range(210, 220):
        record(log, status)
    log.maintenance.run()
    second = read_anchor(tmp_path / "audit")
    assert first is not None and second is not None and second.files > first.files
    assert second.bytes > first.bytes
    (tmp_path / "audit" / ACTIVE_NAME).unlink()  # as if it had been rotated away and pruned
    record(AuditLog(tmp_path, clock=lambda: START), 299)
    [line] = (tmp_path / "audit" / ACTIVE_NAME).read_bytes().splitlines()
    assert json.loads(line)["prev"] == second.prev
    assert verify_chain(tmp_path).ok


def test_numbers_are_never_reused_after_everything_closed_was_pruned(tmp_path: Path) -> None:
    log = filled(tmp_path, count=10, retain_bytes=1)
    before = list_segments(tmp_path / "audit")[-2].key[2]
    log.maintenance.run()
    assert [s.path.name for s in list_segments(tmp_path / "audit")] == [ACTIVE_NAME]
    for status in range(210, 215):
        record(log, status)
    assert list_segments(tmp_path / "audit")[0].key[2] == before + 1


def test_leftovers_of_an_interrupted_compression_are_cleaned_up(tmp_path: Path) -> None:
    log = filled(tmp_path, gzip=False)
    audit = tmp_path / "audit"
    second = list_segments(audit)[1]
    (audit / f".{second.path.name}.gz.tmp").write_bytes(b"half a gzip")
    (audit / (second.path.name + ".gz")).write_bytes(gzip.compress(second.path.read_bytes()))
    assert list_segments(audit)[1] == second  # the plain copy counts while both exist
    log.maintenance.run()
    names = {p.name for p in audit.iterdir()}
    assert not any(name.endswith(".tmp") for name in names)
    assert second.path.name not in names and second.path.name + ".gz" in names
    assert verify_chain(tmp_path).ok and statuses(tmp_path) == list(range(200, 230))


def test_files_pruned_but_not_yet_removed_are_skipped_then_removed(tmp_path: Path) -> None:
    """A crash after the anchor was written, before the pruned files were removed."""
    log = filled(tmp_path, retain_bytes=3000)
    log.maintenance.run()
    anchor = read_anchor(tmp_path / "audit")
    assert anchor is not None
    leftover = tmp_path / "audit" / anchor.through
    leftover.write_bytes(b'{"prev":"stale"}\n')
    assert verify_chain(tmp_path).ok
    log.maintenance.run()
    assert not leftover.exists()


def test_the_active_file_is_never_touched(tmp_path: Path) -> None:
    log = filled(tmp_path, retain_bytes=1, retain_days=0.0001)
    active = tmp_path / "audit" / ACTIVE_NAME
    data = active.read_bytes()
    os.utime(active, (0, 0))
    log.maintenance.run()
    assert active.read_bytes() == data
    assert [s.path.name for s in list_segments(tmp_path / "audit")] == [ACTIVE_NAME]


def test_removing_a_retained_file_or_forging_the_anchor_is_reported(tmp_path: Path) -> None:
    log = filled(tmp_path, retain_bytes=3000)
    log.maintenance.run()
    audit = tmp_path / "audit"
    anchor_text = (audit / ANCHOR_NAME).read_text()
    document = json.loads(anchor_text)
    first = list_segments(audit)[0]
    (audit / ANCHOR_NAME).write_text(json.dumps({**document, "prev": "xyz"}))
    bad = verify_chain(tmp_path).broken
    assert bad is not None and bad.reason == "anchor.json: 'prev' is not a sha256 hex digest"
    (audit / ANCHOR_NAME).write_text(json.dumps({**document, "prev": "f" * 64}))
    forged = verify_chain(tmp_path)
    assert forged.broken is not None and (forged.broken.file, forged.broken.line) == (first.path, 1)
    (audit / ANCHOR_NAME).write_text(anchor_text)
    assert verify_chain(tmp_path).ok
    list_segments(audit)[1].path.unlink()
    gap = verify_chain(tmp_path)
    assert gap.broken is not None and gap.broken.file == list_segments(audit)[1].path


def test_an_unreadable_anchor_is_reported_at_the_anchor(tmp_path: Path) -> None:
    filled(tmp_path, count=3)
    (tmp_path / "audit" / ANCHOR_NAME).write_text("{not json")
    report = verify_chain(tmp_path)
    assert report.broken is not None
    where = tmp_path / "audit" / ANCHOR_NAME
    assert str(report.broken) == f"{where}:1: chain broken: anchor.json is not JSON"


def test_maintenance_runs_in_the_background_after_a_rotation(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=lambda: START, settings=AuditSettings(**SMALL))
    for status in range(200, 230):
        record(log, status)
    assert log.maintenance.wait_idle(timeout=30)
    assert sum(s.compressed for s in list_segments(tmp_path / "audit")) > 3
    assert verify_chain(tmp_path).ok and log.health().warning is None


def test_runs_after_many_rotations_share_one_thread_that_ends_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(tmp_path, clock=lambda: START, settings=AuditSettings(**SMALL))
    threads: list[threading.Thread] = []
    run = log.maintenance.run

    def counted() -> audit_maintenance.MaintenanceReport:
        threads.append(threading.current_thread())
        return run()

    log.maintenance.run = counted  # type: ignore[method-assign]
    for status in range(200, 260):  # a rotation every few lines
        record(log, status)
        assert log.maintenance.wait_idle(timeout=30)
    assert len(threads) > 10
    assert all(thread is threads[0] for thread in threads)
    assert sum(s.compressed for s in list_segments(tmp_path / "audit")) > 3

    monkeypatch.setattr(audit_maintenance, "_IDLE_EXIT_S", 0.0)
    log.maintenance.schedule()  # its wait after this run ends at once
    threads[-1].join(timeout=30)
    assert not threads[-1].is_alive()
    log.maintenance.schedule()  # a new thread takes over
    assert log.maintenance.wait_idle(timeout=30)
    assert threads[-1] is not threads[0] and len(set(threads)) == 2


def test_no_thread_to_be_had_is_a_warning_and_the_next_rotation_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    log = filled(tmp_path, background=True)
    assert log.maintenance.wait_idle(timeout=0)  # nothing runs, nothing waits
    assert log.health().warning == "audit maintenance failed: can't start new thread"
    assert not any(s.compressed for s in list_segments(tmp_path / "audit"))
    monkeypatch.undo()
    log.maintenance.schedule()
    assert log.maintenance.wait_idle(timeout=30) and log.health().warning is None
    assert sum(s.compressed for s in list_segments(tmp_path / "audit")) > 3


def test_a_failing_compression_is_a_warning_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(audit_maintenance.shutil, "copyfileobj", full)
    log = filled(tmp_path, background=True)
    assert log.maintenance.wait_idle(timeout=30)
    health = log.health()
    assert health.ok and health.warning == "audit maintenance failed: No space left on device"
    assert not [p for p in (tmp_path / "audit").iterdir() if p.name.endswith(".tmp")]
    assert verify_chain(tmp_path).ok
    monkeypatch.undo()
    log.maintenance.schedule()
    assert log.maintenance.wait_idle(timeout=30) and log.health().warning is None
    assert sum(s.compressed for s in list_segments(tmp_path / "audit")) > 3


def test_verify_beside_a_live_writer_that_rotates_and_compresses(tmp_path: Path) -> None:
    """Rotation, compression and pruning while verify walks: never a false break."""

    settings = AuditSettings(max_file_bytes=1024, rotate="size", retain_bytes=8000)
    log = AuditLog(tmp_path, clock=lambda: START, settings=settings)
    stop = threading.Event()

    def keep_writing() -> None:
        status = 0
        while not stop.is_set():
            record(log, status)
            status += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        deadline = time.monotonic() + 5
        walks = 0
        while time.monotonic() < deadline or walks < 20:
            report = verify_chain(tmp_path)
            assert report.ok, report.broken
            walks += 1
    finally:
        stop.set()
        writer.join()
    assert log.maintenance.wait_idle(timeout=30)
    assert read_anchor(tmp_path / "audit") is not None and verify_chain(tmp_path).ok
