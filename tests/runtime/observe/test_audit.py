"""Audit log: fields, hash chain across days, tamper detection, concurrent writers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aivault_ops.runtime.observe import audit_files
from aivault_ops.runtime.observe.audit import (
    AuditEntry,
    AuditLog,
    AuditUnavailable,
    format_line,
    strip_query_values,
)
from aivault_ops.runtime.observe.audit_verify import GENESIS, verify_chain

CANARY = "canary-SECRET-7f3a9c2e41d8"
START = datetime(2026, 11, 27, 23, 59, 58, 123456, tzinfo=UTC)


def ticking(
    start: datetime = START, step: timedelta = timedelta(seconds=1)
) -> Callable[[], datetime]:
    times = [start - step]

    def clock() -> datetime:
        times[0] += step
        return times[0]

    return clock


def record(log: AuditLog, **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "consumer": "agent",
        "capability": "openai/chat",
        "credential": "openai",
        "method": "POST",
        "path": "/v1/chat/completions",
        "decision": "allow",
        "error": None,
        "status": 200,
        "bytes_out": 512,
        "duration_ms": 12.34567,
        "serial": 7,
    }
    log.record(**{**fields, **overrides})


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_record_writes_one_canonical_json_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=ticking())
    record(log, path="/v1/x?api_key=" + CANARY + "&page=2")
    [line] = lines(tmp_path / "audit" / "audit.jsonl")
    assert json.loads(line) == {
        "ts": "2026-11-27T23:59:58.123Z",
        "consumer": "agent",
        "capability": "openai/chat",
        "credential": "openai",
        "method": "POST",
        "path": "/v1/x?api_key&page",
        "decision": "allow",
        "error": None,
        "status": 200,
        "bytes": 512,
        "duration_ms": 12.346,
        "serial": 7,
        "prev": GENESIS,
    }
    assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")).encode()
    assert CANARY.encode() not in (tmp_path / "audit" / "audit.jsonl").read_bytes()


def test_chain_links_lines_and_crosses_days(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=ticking())
    for _ in range(4):
        record(log)
    first = tmp_path / "audit" / "audit-00000001-20261127T235958Z.jsonl"
    second = tmp_path / "audit" / "audit.jsonl"
    day1, day2 = lines(first), lines(second)
    assert len(day1) == 2 and len(day2) == 2
    assert json.loads(day1[1])["prev"] == hashlib.sha256(day1[0]).hexdigest()
    assert json.loads(day2[0])["prev"] == hashlib.sha256(day1[1]).hexdigest()
    report = verify_chain(tmp_path)
    assert (report.ok, report.files, report.lines) == (True, 2, 4)
    assert report.head == hashlib.sha256(day2[1]).hexdigest()


def test_a_new_writer_continues_the_chain(tmp_path: Path) -> None:
    record(AuditLog(tmp_path, clock=ticking(step=timedelta(0))))
    record(AuditLog(tmp_path, clock=ticking(step=timedelta(0))))
    assert verify_chain(tmp_path).lines == 2
    assert verify_chain(tmp_path).ok


def _tamper_edit(path: Path) -> None:
    data = path.read_bytes().replace(b'"status":200', b'"status":201', 1)
    path.write_bytes(data)


def _tamper_delete(path: Path) -> None:
    kept = lines(path)
    path.write_bytes(b"\n".join([kept[0], *kept[2:]]) + b"\n")


def _tamper_swap(path: Path) -> None:
    kept = lines(path)
    path.write_bytes(b"\n".join([kept[1], kept[0], *kept[2:]]) + b"\n")


def _tamper_insert(path: Path) -> None:
    kept = lines(path)
    path.write_bytes(b"\n".join([kept[0], kept[0], *kept[1:]]) + b"\n")


@pytest.mark.parametrize(
    ("tamper", "line", "reason"),
    [
        (_tamper_edit, 2, "'prev' is not the sha256 of the previous line"),
        (_tamper_delete, 2, "'prev' is not the sha256 of the previous line"),
        (_tamper_swap, 1, "'prev' is not the sha256 of the previous line"),
        (_tamper_insert, 2, "'prev' is not the sha256 of the previous line"),
    ],
)
def test_tampering_is_reported_at_the_first_broken_line(
    tmp_path: Path, tamper: Callable[[Path], None], line: int, reason: str
) -> None:
    log = AuditLog(tmp_path, clock=ticking(step=timedelta(0)))
    for status in (200, 403, 200):
        record(log, status=status)
    path = tmp_path / "audit" / "audit.jsonl"
    tamper(path)
    report = verify_chain(tmp_path)
    assert not report.ok and report.broken is not None
    assert (report.broken.file, report.broken.line) == (path, line)
    assert report.broken.reason.startswith(reason)
    assert str(report.broken) == f"{path}:{line}: chain broken: {report.broken.reason}"


def test_removing_a_whole_day_is_detected(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=ticking(step=timedelta(days=1)))
    for _ in range(3):
        record(log)
    (tmp_path / "audit" / "audit-00000002-20261128T235958Z.jsonl").unlink()
    report = verify_chain(tmp_path)
    assert report.broken is not None
    assert (report.broken.file.name, report.broken.line) == ("audit.jsonl", 1)


def test_garbage_line_is_reported(tmp_path: Path) -> None:
    record(AuditLog(tmp_path, clock=ticking()))
    path = tmp_path / "audit" / "audit.jsonl"
    with path.open("ab") as handle:
        handle.write(b"not json\n")
    report = verify_chain(tmp_path)
    assert report.broken is not None
    assert (report.broken.line, report.broken.reason) == (2, "line is not JSON (edited or torn)")


def test_a_torn_last_line_is_kept_visible_not_glued(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=ticking(step=timedelta(0)))
    record(log)
    path = tmp_path / "audit" / "audit.jsonl"
    with path.open("ab") as handle:
        handle.write(b'{"ts":"torn')
    record(AuditLog(tmp_path, clock=ticking(step=timedelta(0))))
    kept = lines(path)
    assert kept[1] == b'{"ts":"torn'
    assert json.loads(kept[2])["prev"] == hashlib.sha256(kept[1]).hexdigest()
    report = verify_chain(tmp_path)
    assert report.broken is not None and report.broken.line == 2


def test_query_values_are_dropped() -> None:
    assert strip_query_values("/v1/x") == "/v1/x"
    assert strip_query_values("/v1/x?key=abc&b&c=1=2") == "/v1/x?key&b&c"
    assert strip_query_values("/v1/x?") == "/v1/x?"


def _writer(state_dir: str, count: int) -> None:
    log = AuditLog(Path(state_dir), clock=lambda: START)
    for index in range(count):
        record(log, status=200 + index)


def test_concurrent_processes_keep_one_linear_chain(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), 50)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    report = verify_chain(tmp_path)
    assert (report.ok, report.lines) == (True, 200)


def test_no_audit_dir_is_an_empty_chain(tmp_path: Path) -> None:
    report = verify_chain(tmp_path)
    assert (report.ok, report.files, report.lines, report.head) == (True, 0, 0, GENESIS)


@given(
    text=st.text(),
    number=st.integers(min_value=-(2**63), max_value=2**63),
    duration=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    maybe=st.none() | st.integers(min_value=0),
)
def test_format_line_is_the_canonical_json_dumps(
    text: str, number: int, duration: float, maybe: int | None
) -> None:
    entry: dict[str, Any] = {
        "ts": text, "consumer": text, "capability": None, "credential": text[:3],
        "method": "GET", "path": text, "decision": "allow", "error": None,
        "status": number, "bytes": 0, "duration_ms": round(duration, 3), "serial": maybe,
        "prev": GENESIS,
    }  # fmt: skip
    assert format_line(entry) == json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


def test_a_removed_or_replaced_file_is_reopened_not_written_blind(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=ticking(step=timedelta(0)))
    path = tmp_path / "audit" / "audit.jsonl"
    record(log)
    path.unlink()
    record(log, status=201)
    assert [json.loads(line)["status"] for line in lines(path)] == [201]
    path.rename(tmp_path / "moved.jsonl")
    path.write_bytes(b"")
    record(log, status=202)
    assert [json.loads(line)["status"] for line in lines(path)] == [202]


def test_a_forked_writer_takes_its_own_lock(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=lambda: START)
    record(log)  # descriptors now open in the parent
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_keep_writing, args=(log, 150)) for _ in range(3)]
    for worker in workers:
        worker.start()
    _keep_writing(log, 150)
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    report = verify_chain(tmp_path)
    assert (report.ok, report.lines) == (True, 601)


def _keep_writing(log: AuditLog, count: int) -> None:
    for index in range(count):
        record(log, status=200 + index)
    log.close()


def _entries(log: AuditLog, count: int) -> list[AuditEntry]:
    fields = {
        "consumer": "agent", "capability": "c", "credential": "x", "method": "GET",
        "path": "/v1", "decision": "allow", "error": None, "bytes_out": 1,
        "duration_ms": 1.0, "serial": 1,
    }  # fmt: skip
    return [log.entry(status=200 + index, **fields) for index in range(count)]  # type: ignore[arg-type]


def test_one_loop_turn_of_records_is_one_write_and_each_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(tmp_path, clock=ticking(step=timedelta(0)))
    path = tmp_path / "audit" / "audit.jsonl"
    writes: list[bytes] = []
    original = audit_files.AuditFiles.write

    def counting(self: Any, data: bytes, size: int) -> None:
        writes.append(data)
        original(self, data, size)

    monkeypatch.setattr(audit_files.AuditFiles, "write", counting)

    async def writer(entry: AuditEntry) -> int:
        await log.write_soon(entry)
        return len(lines(path))  # the line is on disk when write_soon returns

    async def main() -> list[int]:
        return await asyncio.gather(*(writer(entry) for entry in _entries(log, 5)))

    assert asyncio.run(main()) == [5] * 5
    assert len(writes) == 1
    assert [json.loads(line)["status"] for line in lines(path)] == [200, 201, 202, 203, 204]
    assert verify_chain(tmp_path).ok and verify_chain(tmp_path).lines == 5


def test_a_cancelled_waiter_neither_loses_its_line_nor_breaks_the_batch(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, clock=ticking(step=timedelta(0)))
    first, second = _entries(log, 2)

    async def main() -> None:
        cancelled = asyncio.ensure_future(log.write_soon(first))
        kept = asyncio.ensure_future(log.write_soon(second))
        await asyncio.sleep(0)
        cancelled.cancel()
        await kept

    asyncio.run(main())
    report = verify_chain(tmp_path)
    assert (report.ok, report.lines) == (True, 2)


def test_a_failed_batch_write_reaches_every_waiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(tmp_path, clock=ticking(step=timedelta(0)))

    def failing(self: Any, data: bytes, size: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_files.AuditFiles, "write", failing)

    async def main() -> list[object]:
        waits = [log.write_soon(entry) for entry in _entries(log, 3)]
        return await asyncio.gather(*waits, return_exceptions=True)

    assert [type(result) for result in asyncio.run(main())] == [AuditUnavailable] * 3
