"""The audit log: one JSON line per decision, hash-chained, tamper evident.

Lines go to `<state-dir>/audit/YYYY-MM-DD.jsonl` (UTC date of the
decision). Each line is canonical JSON with the fields ts, consumer,
capability, credential, method, path, decision, error, status, bytes,
duration_ms, serial and `prev`: the sha256 hex of the previous line's bytes
(without its newline). The first line of a day links to the last line of
the newest earlier file, the very first line to 64 zeros. Editing, removing
or reordering any line (or a whole earlier file) breaks the chain at the
next line; `verify_chain` reports the first break. Only the newest line has
no successor: anchor `ChainReport.head` elsewhere to protect it too.

Several worker processes may share a state dir: each append holds an
exclusive `fcntl.flock` on `audit/.lock` across "read the previous line,
append ours", and a thread lock within the process, so the chain stays
linear. The lock and log descriptors stay open (reopened after a fork, on a
new day, or when the file was replaced or removed), so an append costs
flock, stat, write and unlock. Lines are written with one `write` on an
O_APPEND descriptor and not fsynced (a crash may lose the newest lines,
which the chain shows as a torn last line, never as a silent gap in the
middle).

`path` must be the caller's path (never the upstream path, which may carry
an injected secret); query values are dropped, names kept. No token or
secret value is ever part of a record.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, NamedTuple

GENESIS = "0" * 64
FILE_NAME = re.compile(r"\d{4}-\d{2}-\d{2}\.jsonl")
_MAX_PATH = 2048
_MAX_METHOD = 32
_TAIL_BLOCK = 4096


def _utcnow() -> datetime:
    return datetime.now(UTC)


def strip_query_values(path: str) -> str:
    """`/x?a=1&b=2` → `/x?a&b`: parameter names stay, values (possibly sensitive) go."""
    base, sep, query = path.partition("?")
    if not sep:
        return path[:_MAX_PATH]
    names = "&".join(item.partition("=")[0] for item in query.split("&"))
    return f"{base}?{names}"[:_MAX_PATH]


def line_hash(line: bytes) -> str:
    """The chain link: sha256 hex of one line's bytes without its newline."""
    return hashlib.sha256(line).hexdigest()


def last_line(path: Path) -> bytes | None:
    """The last line of a file (without newline), or None when it is empty."""
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        position, data = end, b""
        while position > 0:
            position = max(0, position - _TAIL_BLOCK)
            handle.seek(position)
            data = handle.read(end - position)
            if b"\n" in data.removesuffix(b"\n"):
                break
    if not data:
        return None
    return data.removesuffix(b"\n").rsplit(b"\n", 1)[-1]


_LINE = (
    '{"bytes":%s,"capability":%s,"consumer":%s,"credential":%s,"decision":%s,'
    '"duration_ms":%s,"error":%s,"method":%s,"path":%s,"prev":%s,"serial":%s,'
    '"status":%s,"ts":%s}'
)
_KEYS = ("bytes", "capability", "consumer", "credential", "decision", "duration_ms", "error",
         "method", "path", "prev", "serial", "status", "ts")  # fmt: skip


def _json_value(value: object) -> str:
    """One value exactly as `json.dumps(..., ensure_ascii=True)` writes it."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return json.dumps(value)


def format_line(entry: dict[str, Any]) -> bytes:
    """The canonical line: `json.dumps(entry, sort_keys=True, separators=(",", ":"))`
    for the fixed audit keys, written from a template (no generic encoder)."""
    return (_LINE % tuple(_json_value(entry[key]) for key in _KEYS)).encode("ascii")


class _Appender:
    """The open lock and log descriptors of one process (reopened after a fork or
    when the day's file changes), so an append is flock, stat, write, unlock."""

    __slots__ = ("_inode", "_lock_fd", "_log_fd", "_pid", "_target", "directory")

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pid = -1
        self._lock_fd = -1
        self._log_fd = -1
        self._target: Path | None = None
        self._inode = -1

    def lock(self) -> None:
        """Take the exclusive cross-process lock on `audit/.lock`."""
        if self._pid != os.getpid():
            self._reset()
            self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def unlock(self) -> None:
        """Release the lock taken by `lock`."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _reset(self) -> None:
        """Forget descriptors inherited from a parent process (its lock is not ours)."""
        self._pid, self._lock_fd, self._log_fd, self._target = os.getpid(), -1, -1, None

    def size(self, target: Path) -> int:
        """Current size of `target` (0 when missing); a replaced or removed file is
        reopened on the next write. Call under `lock`."""
        try:
            status = target.stat()
        except FileNotFoundError:
            self._close_log()
            return 0
        if target is not self._target or status.st_ino != self._inode:
            self._close_log()
        return status.st_size

    def write(self, target: Path, data: bytes) -> None:
        """Append `data` with one write on an O_APPEND descriptor; call under `lock`."""
        if self._log_fd < 0 or target is not self._target:
            self._close_log()
            self._log_fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._target, self._inode = target, os.fstat(self._log_fd).st_ino
        os.write(self._log_fd, data)

    def _close_log(self) -> None:
        if self._log_fd >= 0:
            os.close(self._log_fd)
        self._log_fd, self._target = -1, None

    def close(self) -> None:
        """Close both descriptors (this process's only)."""
        if self._pid == os.getpid():
            self._close_log()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
        self._reset()


class AuditEntry(NamedTuple):
    """One record and the day file it goes to."""

    target: Path
    fields: dict[str, Any]


class AuditLog:
    """Appends hash-chained decision records; safe across threads and processes.

    `log.record(...)` appends at once; `await log.write_soon(...)`
    appends with the other records of the same event-loop turn and returns
    when the line is written (the server answers after that, so no answer
    leaves before its audit line).
    """

    def __init__(self, state_dir: Path, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.directory = state_dir / "audit"
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._clock = clock
        self._thread_lock = threading.Lock()
        self._appender = _Appender(self.directory)
        self._cache: tuple[Path, int, str] | None = None
        self._day: tuple[str, Path] = ("", self.directory)
        self._pending: list[AuditEntry] = []
        self._batch: asyncio.Future[None] | None = None

    def record(self, **fields: Any) -> None:
        """Build one decision with `entry(**fields)` and append it at once."""
        self.write(self.entry(**fields))

    def entry(
        self,
        *,
        consumer: str | None,
        capability: str | None,
        credential: str | None,
        method: str,
        path: str,
        decision: str,
        error: str | None,
        status: int,
        bytes_out: int,
        duration_ms: float,
        serial: int | None,
    ) -> AuditEntry:
        """One decision (`allow`, `deny`, `error` …), dated now, ready for `write`."""
        now = self._clock().astimezone(UTC)
        stamp = now.isoformat(timespec="milliseconds")
        fields: dict[str, Any] = {
            "ts": stamp.replace("+00:00", "Z"),
            "consumer": consumer,
            "capability": capability,
            "credential": credential,
            "method": method[:_MAX_METHOD],
            "path": strip_query_values(path),
            "decision": decision,
            "error": error,
            "status": status,
            "bytes": bytes_out,
            "duration_ms": round(duration_ms, 3),
            "serial": serial,
        }
        return AuditEntry(self._file_for(stamp[:10]), fields)

    def _file_for(self, day: str) -> Path:
        """Today's file, the same object all day (compared by identity when appending)."""
        if self._day[0] != day:
            self._day = (day, self.directory / f"{day}.jsonl")
        return self._day[1]

    def write(self, entry: AuditEntry) -> None:
        """Append `entry` now."""
        self._write([entry])

    async def write_soon(self, entry: AuditEntry) -> None:
        """Append `entry` together with the others of this event-loop turn (one lock,
        one stat, one write for all of them); returns once it is written."""
        self._pending.append(entry)
        if self._batch is None:
            loop = asyncio.get_running_loop()
            self._batch = loop.create_future()
            loop.call_soon(self._write_pending)
        await asyncio.shield(self._batch)

    def _write_pending(self) -> None:
        entries, self._pending = self._pending, []
        batch, self._batch = self._batch, None
        assert batch is not None
        try:
            self._write(entries)
        except Exception as error:
            batch.set_exception(error)
        else:
            batch.set_result(None)

    def _write(self, entries: list[AuditEntry]) -> None:
        """Append `entries` in order under the locks, chaining each to the one before."""
        with self._thread_lock:
            self._appender.lock()
            try:
                for target, group in groupby(entries, key=lambda entry: entry.target):
                    self._append(target, [entry.fields for entry in group])
            finally:
                self._appender.unlock()

    def _append(self, target: Path, entries: list[dict[str, Any]]) -> None:
        size, prev, torn = self._previous(target)
        lines = []
        for entry in entries:
            entry["prev"] = prev
            lines.append(format_line(entry))
            prev = line_hash(lines[-1])
        data = (b"\n" if torn else b"") + b"\n".join(lines) + b"\n"
        self._appender.write(target, data)
        self._cache = (target, size + len(data), prev)

    def close(self) -> None:
        """Release the open descriptors (a later record reopens them)."""
        with self._thread_lock:
            self._appender.close()

    def _previous(self, target: Path) -> tuple[int, str, bool]:
        """(current size of target, hash of the chain's last line, whether it is torn)."""
        size = self._appender.size(target)
        if self._cache is not None and self._cache[0] is target and self._cache[1] == size:
            return size, self._cache[2], False
        if size:
            prev, torn = self._tail_hash(target)
            return size, prev, torn
        earlier = sorted(
            p for p in self.directory.iterdir() if FILE_NAME.fullmatch(p.name) and p < target
        )
        if earlier:
            return 0, self._tail_hash(earlier[-1])[0], False
        return 0, GENESIS, False

    @staticmethod
    def _tail_hash(path: Path) -> tuple[str, bool]:
        line = last_line(path)
        if line is None:
            return GENESIS, False
        with path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            torn = handle.read(1) != b"\n"
        return line_hash(line), torn


@dataclass(frozen=True)
class ChainBreak:
    """The first line whose `prev` does not link to its predecessor."""

    file: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: chain broken: {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    """Result of `verify_chain`: counts, the head hash, and the first break if any."""

    files: int
    lines: int
    head: str
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        """Whether every line links to its predecessor."""
        return self.broken is None


def _check_line(line: bytes, expected: str) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return "line is not JSON (edited or torn)"
    if not isinstance(record, dict) or not isinstance(record.get("prev"), str):
        return "line has no 'prev' link"
    if record["prev"] != expected:
        return (
            "'prev' is not the sha256 of the previous line"
            " (a line was changed, removed or inserted)"
        )
    return None


def verify_chain(state_dir: Path) -> ChainReport:
    """Walk every audit file in date order and report the first broken link."""
    directory = state_dir / "audit"
    if not directory.is_dir():
        return ChainReport(0, 0, GENESIS, None)
    files = sorted(p for p in directory.iterdir() if FILE_NAME.fullmatch(p.name))
    expected, lines = GENESIS, 0
    for path in files:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.removesuffix(b"\n")
                reason = _check_line(line, expected)
                if reason is not None:
                    return ChainReport(
                        len(files), lines, expected, ChainBreak(path, number, reason)
                    )
                expected, lines = line_hash(line), lines + 1
    return ChainReport(len(files), lines, expected, None)
