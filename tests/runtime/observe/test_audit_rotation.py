"""Rotation of the active audit file: by size and by UTC day or hour, under the append
lock, with several writers; the chain runs on across every file."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aivault_ops.runtime.observe.audit import AuditLog, AuditUnavailable
from aivault_ops.runtime.observe.audit_files import FileOps
from aivault_ops.runtime.observe.audit_rotation import Chunk, Line, plan_chunks
from aivault_ops.runtime.observe.audit_segments import ACTIVE_NAME, list_segments
from aivault_ops.runtime.observe.audit_settings import AuditSettings, parse_size
from aivault_ops.runtime.observe.audit_verify import GENESIS, line_hash, verify_chain

START = datetime(2026, 11, 27, 23, 59, 58, 123000, tzinfo=UTC)
SIZE_ONLY = AuditSettings(max_file_bytes=1024, rotate="size", gzip=False)


def record(log: AuditLog, status: int = 200) -> None:
    log.record(
        consumer="agent", capability="my-api/users", credential="my-api", method="GET",
        path="/v1/users", decision="allow", error=None, status=status, bytes_out=1,
        duration_ms=1.0, serial=1,
    )  # fmt: skip


def ticking(step: timedelta, start: datetime = START) -> Callable[[], datetime]:
    times = [start - step]

    def clock() -> datetime:
        times[0] += step
        return times[0]

    return clock


def all_lines(state: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for segment in list_segments(state / "audit")
        for line in segment.path.read_bytes().splitlines()
    ]


def names(state: Path) -> list[str]:
    return [segment.path.name for segment in list_segments(state / "audit")]


def line(period: str, size: int = 99) -> Line:
    return Line(period, period, b"x" * size, "h")


def test_plan_chunks_splits_where_the_size_or_the_period_says() -> None:
    lines = [line("d1"), line("d1"), line("d1"), line("d2"), line("d1")]
    chunks = plan_chunks(lines, 0, None, 250)
    assert [(c.rotate_first, [x.period for x in c.lines]) for c in chunks] == [
        (False, ["d1", "d1"]),  # 2 x 100 bytes; a third would pass 250
        (True, ["d1"]),
        (True, ["d2", "d1"]),  # a later day rotates; an earlier (held) line never does
    ]


def test_plan_chunks_never_leaves_a_file_empty() -> None:
    big = line("d1", 5000)
    assert plan_chunks([big, big], 0, None, 1024) == [Chunk(False, [big]), Chunk(True, [big])]
    assert plan_chunks([big], 10, "d1", 1024) == [Chunk(True, [big])]
    assert plan_chunks([line("d2")], 10, "d1", 1024) == [Chunk(True, [line("d2")])]
    assert plan_chunks([line("d1")], 10, "d1", 1024) == [Chunk(False, [line("d1")])]


@pytest.mark.parametrize(
    ("text", "size"),
    [("1024", 1024), ("64M", 64 << 20), ("64MiB", 64 << 20), ("2g", 2 << 30), ("8 k", 8192)],
)
def test_sizes_take_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "1.5G", "12Q", "M"])
def test_a_bad_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_settings_refuse_a_warning_floor_below_the_refusal_floor() -> None:
    with pytest.raises(ValueError, match="--audit-warn-free-bytes must be at least"):
        AuditSettings(min_free_bytes=100, warn_free_bytes=99)
    with pytest.raises(ValueError, match="--audit-max-file-bytes must be at least 1024"):
        AuditSettings(max_file_bytes=1000)


def test_size_rotation_renames_the_active_file_and_the_chain_runs_on(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=lambda: START, settings=SIZE_ONLY)
    for status in range(200, 220):
        record(log, status)
    segments = list_segments(tmp_path / "audit")
    assert len(segments) > 4 and segments[-1].path.name == ACTIVE_NAME
    numbers = [segment.key[2] for segment in segments[:-1]]
    assert numbers == list(range(1, len(numbers) + 1))
    assert {segment.name[15:] for segment in segments[:-1]} == {"20261127T235958Z.jsonl"}
    assert all(0 < segment.path.stat().st_size <= 1024 for segment in segments)
    assert [x["status"] for x in all_lines(tmp_path)] == list(range(200, 220))
    report = verify_chain(tmp_path)
    assert (report.ok, report.files, report.lines) == (True, len(segments), 20)


@pytest.mark.parametrize(
    ("rotate", "step", "files"),
    [
        ("daily", timedelta(hours=7), 3),
        ("hourly", timedelta(minutes=25), 4),
        ("size", timedelta(hours=7), 1),
    ],
)
def test_time_rotation_starts_a_file_per_period(
    tmp_path: Path, rotate: str, step: timedelta, files: int
) -> None:
    settings = AuditSettings(rotate=rotate)
    log = AuditLog(
        tmp_path, clock=ticking(step, START.replace(hour=0, minute=0)), settings=settings
    )
    for _ in range(10):
        record(log)
    assert len(names(tmp_path)) == files
    assert verify_chain(tmp_path).ok and verify_chain(tmp_path).lines == 10


def test_each_closed_file_is_named_by_its_first_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=ticking(timedelta(days=1)))
    for _ in range(3):
        record(log)
    segments = list_segments(tmp_path / "audit")
    assert [segment.name for segment in segments] == [  # the oldest may be gzip'd by now
        "audit-00000001-20261127T235958Z.jsonl",
        "audit-00000002-20261128T235958Z.jsonl",
        ACTIVE_NAME,
    ]


def test_writers_in_one_directory_notice_each_others_rotation(tmp_path: Path) -> None:
    """Two logs (as two worker processes) append in turn; each rotation by one is seen
    by the other through the changed inode, and no line is lost or doubled."""
    first = AuditLog(tmp_path, clock=lambda: START, settings=SIZE_ONLY)
    second = AuditLog(tmp_path, clock=lambda: START, settings=SIZE_ONLY)
    for status in range(200, 240):
        record(first if status % 3 else second, status)
    assert [x["status"] for x in all_lines(tmp_path)] == list(range(200, 240))
    assert verify_chain(tmp_path).ok and len(names(tmp_path)) > 8


def test_a_torn_last_line_ends_with_its_file_and_stays_visible(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=lambda: START, settings=SIZE_ONLY)
    record(log)
    with (tmp_path / "audit" / ACTIVE_NAME).open("ab") as handle:
        handle.write(b'{"ts":"torn' + b"x" * 900)
    record(AuditLog(tmp_path, clock=lambda: START, settings=SIZE_ONLY), 201)
    closed, active = list_segments(tmp_path / "audit")
    torn = closed.path.read_bytes().splitlines()[-1]
    assert closed.path.read_bytes().endswith(b"x\n")
    assert json.loads(active.path.read_bytes())["prev"] == line_hash(torn)
    report = verify_chain(tmp_path)
    assert report.broken is not None and (report.broken.file, report.broken.line) == (
        closed.path,
        2,
    )


def test_a_failed_rename_is_held_and_retried(tmp_path: Path) -> None:
    failing = [True]

    def rename(source: Path, target: Path) -> None:
        if failing[0]:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.rename(source, target)

    log = AuditLog(tmp_path, clock=lambda: START, settings=SIZE_ONLY)
    log._files._ops = replace(FileOps(), rename=rename)
    attempted = []
    with pytest.raises(AuditUnavailable, match=r"^audit log unavailable: Input/output error$"):
        for status in range(200, 220):
            attempted.append(status)
            record(log, status)
    assert log.health().held_lines == 1 and names(tmp_path) == [ACTIVE_NAME]
    failing[0] = False
    log.ensure_ready()
    assert [x["status"] for x in all_lines(tmp_path)] == attempted
    assert len(names(tmp_path)) == 2 and verify_chain(tmp_path).ok


def test_day_files_of_earlier_versions_stay_in_the_chain(tmp_path: Path) -> None:
    """A state dir written before rotation existed (`YYYY-MM-DD.jsonl`): the new active
    file links to the newest day file and verify walks them all in order."""
    audit = tmp_path / "audit"
    audit.mkdir()
    prev = GENESIS
    for day in ("2026-11-25", "2026-11-26"):
        text = json.dumps({"prev": prev, "ts": f"{day}T10:00:00.000Z"}, sort_keys=True)
        (audit / f"{day}.jsonl").write_text(text + "\n")
        prev = line_hash(text.encode())
    record(AuditLog(tmp_path, clock=lambda: START))
    assert json.loads((audit / ACTIVE_NAME).read_bytes())["prev"] == prev
    report = verify_chain(tmp_path)
    assert (report.ok, report.files, report.lines) == (True, 3, 3)


def _writer(state_dir: str, count: int) -> None:
    log = AuditLog(Path(state_dir), clock=lambda: START, settings=SIZE_ONLY)
    for index in range(count):
        record(log, index)


def test_concurrent_processes_rotating_keep_one_linear_chain(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), 60)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    report = verify_chain(tmp_path)
    assert (report.ok, report.lines) == (True, 180)
    numbers = [segment.key[2] for segment in list_segments(tmp_path / "audit")[:-1]]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 20


def test_an_inode_number_given_to_a_new_file_is_not_taken_for_the_old_one(
    tmp_path: Path,
) -> None:
    """A writer whose descriptor was closed meets a new active file with its old inode
    number and its old size (a filesystem may reuse the number of a removed file): it
    must read the file again, not trust what it knew."""
    first = AuditLog(tmp_path, clock=lambda: START)
    record(first, 200)
    active = tmp_path / "audit" / ACTIVE_NAME
    old = active.stat()
    first.close()
    record(AuditLog(tmp_path, clock=lambda: START + timedelta(days=1)), 201)  # rotates
    assert active.stat().st_size == old.st_size and active.stat().st_ino != old.st_ino

    def same_number(status: os.stat_result) -> os.stat_result:
        fields = list(status[:10])
        fields[1] = old.st_ino
        return os.stat_result(fields)

    first._files._ops = replace(
        FileOps(),
        stat=lambda path: same_number(os.stat(path)),
        fstat=lambda fd: same_number(os.fstat(fd)),
    )
    record(first, 202)
    report = verify_chain(tmp_path)
    assert (report.ok, report.lines) == (True, 3)
