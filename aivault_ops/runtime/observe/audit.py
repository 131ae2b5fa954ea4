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
linear (`audit_files` keeps the descriptors open). Lines are written with
one `write` on an O_APPEND descriptor and not fsynced (a crash may lose the
newest lines, which the chain shows as a torn last line, never as a silent
gap in the middle).

The log fails closed. `ensure_ready` is called before anything is sent
upstream: it writes any lines still held from an earlier failure, opens the
descriptors and checks the free space of the filesystem, and raises
`AuditUnavailable` when any of that fails, so the request is refused (503)
instead of going out unaudited. A line whose write fails is held in memory
(in order, chained when it is finally written) and retried before the next
request; the failure shows in `health()`, which `/status` and `/metrics`
report. Nothing stays broken: every failure closes the descriptors and the
next request opens them again.

`path` must be the caller's path (never the upstream path, which may carry
an injected secret); query values are dropped, names kept. No token or
secret value is ever part of a record.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, Final, NamedTuple

from aivault_ops.runtime.observe.audit_files import (
    FILE_NAME,
    AuditFiles,
    FileOps,
    ends_torn,
    last_line,
)
from aivault_ops.runtime.observe.audit_verify import GENESIS, line_hash

DEFAULT_MIN_FREE_BYTES: Final = 8 * 1024 * 1024
MAX_HELD_LINES: Final = 10_000
SPACE_CHECK_INTERVAL_S: Final = 1.0
_MAX_PATH = 2048
_MAX_METHOD = 32


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AuditUnavailable(OSError):
    """The audit log cannot be written now; nothing may be sent upstream."""


def strip_query_values(path: str) -> str:
    """`/x?a=1&b=2` → `/x?a&b`: parameter names stay, values (possibly sensitive) go."""
    base, sep, query = path.partition("?")
    if not sep:
        return path[:_MAX_PATH]
    names = "&".join(item.partition("=")[0] for item in query.split("&"))
    return f"{base}?{names}"[:_MAX_PATH]


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


class AuditEntry(NamedTuple):
    """One record and the day file it goes to."""

    target: Path
    fields: dict[str, Any]


@dataclass(frozen=True)
class AuditHealth:
    """What `/status` and `/metrics` show of the audit log."""

    error: str | None
    held_lines: int
    failures: int
    dropped_lines: int

    @property
    def ok(self) -> bool:
        """Whether the last attempt to use the log succeeded and no line is held."""
        return self.error is None and self.held_lines == 0


HEALTHY: Final = AuditHealth(None, 0, 0, 0)


class AuditLog:
    """Appends hash-chained decision records; safe across threads and processes.

    `log.record(...)` appends at once; `await log.write_soon(...)`
    appends with the other records of the same event-loop turn and returns
    when the line is written (the server answers after that, so no answer
    leaves before its audit line). Both raise `AuditUnavailable` when the
    line could not be written (it is then held and retried).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        clock: Callable[[], datetime] = _utcnow,
        ops: FileOps | None = None,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    ) -> None:
        self.directory = state_dir / "audit"
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.min_free_bytes = min_free_bytes
        self._clock = clock
        self._thread_lock = threading.Lock()
        self._files = AuditFiles(self.directory, ops)
        self._cache: tuple[Path, int, str] | None = None
        self._day: tuple[str, Path] = ("", self.directory)
        self._pending: list[AuditEntry] = []
        self._batch: asyncio.Future[None] | None = None
        self._held: list[AuditEntry] = []
        self._error: str | None = None
        self._failures = 0
        self._dropped = 0
        self._next_space_check = 0.0

    def health(self) -> AuditHealth:
        """The last failure (None once the log works again) and the lines held."""
        return AuditHealth(self._error, len(self._held), self._failures, self._dropped)

    def ensure_ready(self) -> None:
        """Raise `AuditUnavailable` unless a line written now would reach the log.

        Prevents sending a request upstream that could not be audited: lines
        held from an earlier failure are written first, the descriptors are
        (re)opened and the filesystem must have `min_free_bytes` free.
        """
        if self._held:
            self._write([])
        target = self._day[1] if self._day[0] else self._today()
        with self._thread_lock:
            try:
                self._files.prepare(target)
                self._check_space()
            except OSError as error:
                self._files.discard()
                raise self._failed(error) from None
            self._error = None

    def _check_space(self) -> None:
        """The free-space floor, checked at most once a second while it holds (one
        statvfs per request measured 2 % of the request path's CPU)."""
        now = time.monotonic()
        if now < self._next_space_check:
            return
        free = self._files.free_bytes()
        if free < self.min_free_bytes:
            raise OSError(
                f"{free} bytes free on the audit filesystem, below the floor of"
                f" {self.min_free_bytes}"
            )
        self._next_space_check = now + SPACE_CHECK_INTERVAL_S

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

    def _today(self) -> Path:
        return self._file_for(self._clock().astimezone(UTC).date().isoformat())

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
        """Append the held lines, then `entries`, in order under the locks, each chained
        to the one before; what could not be written is held (AuditUnavailable)."""
        with self._thread_lock:
            queue = self._with_held(entries)
            written = 0
            try:
                self._files.lock()
                try:
                    for target, group in groupby(queue, key=lambda entry: entry.target):
                        fields = [entry.fields for entry in group]
                        self._append(target, fields)
                        written += len(fields)
                finally:
                    self._files.unlock()
            except OSError as error:
                self._files.discard()
                self._hold(queue[written:])
                raise self._failed(error) from None
            self._held = []

    def _with_held(self, entries: list[AuditEntry]) -> list[AuditEntry]:
        """Held lines go first, moved to the current day's file (so the chain stays in
        file order when a failure outlived a day)."""
        if not self._held:
            return entries
        target = entries[0].target if entries else self._today()
        return [AuditEntry(target, held.fields) for held in self._held] + entries

    def _hold(self, entries: list[AuditEntry]) -> None:
        """Keep the oldest lines (those of requests that may have gone upstream); past
        `MAX_HELD_LINES` newer ones are counted as dropped."""
        self._held = entries[:MAX_HELD_LINES]
        self._dropped += len(entries) - len(self._held)

    def _failed(self, error: OSError) -> AuditUnavailable:
        self._failures += 1
        self._error = f"audit log unavailable: {error.strerror or error}"
        return AuditUnavailable(self._error)

    def _append(self, target: Path, entries: list[dict[str, Any]]) -> None:
        size, prev, torn = self._previous(target)
        lines = []
        for entry in entries:
            entry["prev"] = prev
            lines.append(format_line(entry))
            prev = line_hash(lines[-1])
        data = (b"\n" if torn else b"") + b"\n".join(lines) + b"\n"
        self._files.write(target, data, size)
        self._cache = (target, size + len(data), prev)

    def close(self) -> None:
        """Release the open descriptors (a later record reopens them)."""
        with self._thread_lock:
            self._files.discard()

    def _previous(self, target: Path) -> tuple[int, str, bool]:
        """(current size of target, hash of the chain's last line, whether it is torn)."""
        size = self._files.size(target)
        if self._cache is not None and self._cache[0] is target and self._cache[1] == size:
            return size, self._cache[2], False
        if size:
            return size, _tail_hash(target), ends_torn(target)
        earlier = sorted(
            p for p in self.directory.iterdir() if FILE_NAME.fullmatch(p.name) and p < target
        )
        if earlier:
            return 0, _tail_hash(earlier[-1]), False
        return 0, GENESIS, False


def _tail_hash(path: Path) -> str:
    line = last_line(path)
    return GENESIS if line is None else line_hash(line)
