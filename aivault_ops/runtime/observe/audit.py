"""The audit log: one JSON line per decision, hash-chained, tamper evident.

Lines are appended to `<state-dir>/audit/audit.jsonl`. Each line is
canonical JSON with the fields ts, consumer, capability, credential,
method, path, decision, error, status, bytes, duration_ms, serial and
`prev`: the sha256 hex of the previous line's bytes (without its newline).
The very first line links to 64 zeros. The active file is renamed away
(rotated) daily and at `max_file_bytes` (`audit_rotation`); the chain runs
on across files, and closed files are compressed and pruned in the
background (`audit_maintenance`), pruning recording where the retained
chain starts (`audit_anchor`). Editing, removing or reordering any line (or
a whole file in the middle) breaks the chain at the next line;
`verify_chain` reports the first break. Only the newest line has no
successor: anchor `ChainReport.head` elsewhere to protect it too.

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
report, with the disk the log takes and the space left (below
`warn_free_bytes` a warning, before the refusal at `min_free_bytes`).
Nothing stays broken: every failure closes the descriptors and the next
request opens them again.

`path` must be the caller's path (never the upstream path, which may carry
an injected secret); query values are dropped, names kept. No token or
secret value is ever part of a record.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, Final, NamedTuple

from aivault_ops.runtime.observe.audit_files import AuditFiles, FileOps
from aivault_ops.runtime.observe.audit_maintenance import Maintenance
from aivault_ops.runtime.observe.audit_rotation import ActiveFile, Chunk, Line, plan_chunks
from aivault_ops.runtime.observe.audit_segments import disk_bytes
from aivault_ops.runtime.observe.audit_settings import ROTATE_PERIODS, AuditSettings
from aivault_ops.runtime.observe.audit_verify import line_hash

MAX_HELD_LINES: Final = 10_000
SPACE_CHECK_INTERVAL_S: Final = 1.0
USAGE_REFRESH_S: Final = 5.0  # how long /status and /metrics reuse the audit disk use
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
    """One record and its rotation period (the UTC day or hour of its `ts`)."""

    period: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class AuditHealth:
    """What `/status` and `/metrics` show of the audit log."""

    error: str | None
    held_lines: int
    failures: int
    dropped_lines: int
    disk_bytes: int | None = None  # the log files together (None: not known)
    free_bytes: int | None = None  # free on their filesystem (None: not known)
    warning: str | None = None  # space below the warning floor, or maintenance failing

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
        settings: AuditSettings | None = None,
    ) -> None:
        self.directory = state_dir / "audit"
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.settings = settings = settings or AuditSettings()
        self._period_chars = ROTATE_PERIODS[settings.rotate]
        self._clock = clock
        self._thread_lock = threading.Lock()
        self._files = AuditFiles(self.directory, ops)
        self._active = ActiveFile(self._files, self._period_of, clock)
        self.maintenance = Maintenance(self.directory, settings, clock)
        self._free: tuple[float, int | None] = (-SPACE_CHECK_INTERVAL_S, None)
        self._usage: tuple[float, int | None] = (-USAGE_REFRESH_S, None)
        self._pending: list[AuditEntry] = []
        self._batch: asyncio.Future[None] | None = None
        self._held: list[AuditEntry] = []
        self._error: str | None = None
        self._failures = 0
        self._dropped = 0
        self._next_space_check = 0.0

    def _period_of(self, stamp: str) -> str:
        return stamp[: self._period_chars]

    def start_maintenance(self) -> None:
        """Compress and prune closed files in the background now (at start; later runs
        follow each rotation)."""
        self.maintenance.schedule()

    def health(self) -> AuditHealth:
        """The last failure (None once the log works again), the lines held, the disk
        the log takes, the space left and a warning when it runs low."""
        free, disk = self._free_bytes(), self._disk_bytes()
        warning = self.maintenance.error
        if free is not None and free < self.settings.warn_free_bytes:
            warning = (
                f"{free} bytes free on the audit filesystem, below the warning floor of"
                f" {self.settings.warn_free_bytes}"
            )
        return AuditHealth(
            self._error, len(self._held), self._failures, self._dropped, disk, free, warning
        )

    def _free_bytes(self) -> int | None:
        """Free space as last checked (at most a second old; checked now if older)."""
        now = time.monotonic()
        if now - self._free[0] > SPACE_CHECK_INTERVAL_S:
            try:
                status = os.statvfs(self.directory)
                self._free = (now, int(status.f_bavail) * int(status.f_frsize))
            except OSError:
                self._free = (now, None)
        return self._free[1]

    def _disk_bytes(self) -> int | None:
        now = time.monotonic()
        if now - self._usage[0] > USAGE_REFRESH_S:
            try:
                self._usage = (now, disk_bytes(self.directory))
            except OSError:
                self._usage = (now, None)
        return self._usage[1]

    def ensure_ready(self) -> None:
        """Raise `AuditUnavailable` unless a line written now would reach the log.

        Prevents sending a request upstream that could not be audited: lines
        held from an earlier failure are written first, the descriptors are
        (re)opened and the filesystem must have `min_free_bytes` free.
        """
        if self._held:
            self._write([])
        with self._thread_lock:
            try:
                self._files.prepare()
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
        self._free = (now, free)
        if free < self.settings.min_free_bytes:
            raise OSError(
                f"{free} bytes free on the audit filesystem, below the floor of"
                f" {self.settings.min_free_bytes}"
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
        return AuditEntry(stamp[: self._period_chars], fields)

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
        to the one before, rotating where due; what could not be written is held
        (AuditUnavailable). Compression and pruning start after the locks are released."""
        with self._thread_lock:
            queue = self._held + entries if self._held else entries
            written = 0
            try:
                self._files.lock()
                try:
                    for chunk in self._chunks(queue):
                        self._active.write(chunk)
                        written += len(chunk.lines)
                finally:
                    self._files.unlock()
            except OSError as error:
                self._files.discard()
                self._hold(queue[written:])
                raise self._failed(error) from None
            self._held = []
            rotated, self._active.rotated = self._active.rotated, False
        if rotated:
            self.maintenance.schedule()

    def _chunks(self, queue: list[AuditEntry]) -> list[Chunk]:
        """Chain `queue` on from the active file's last line; split where it rotates."""
        active = self._active
        active.refresh()
        prev, lines = active.prev, []
        for period, fields in queue:
            fields["prev"] = prev
            data = format_line(fields)
            prev = line_hash(data)
            lines.append(Line(period, fields["ts"], data, prev))
        return plan_chunks(lines, active.size, active.period, self.settings.max_file_bytes)

    def _hold(self, entries: list[AuditEntry]) -> None:
        """Keep the oldest lines (those of requests that may have gone upstream); past
        `MAX_HELD_LINES` newer ones are counted as dropped."""
        self._held = entries[:MAX_HELD_LINES]
        self._dropped += len(entries) - len(self._held)

    def _failed(self, error: OSError) -> AuditUnavailable:
        self._failures += 1
        self._error = f"audit log unavailable: {error.strerror or error}"
        return AuditUnavailable(self._error)

    def close(self) -> None:
        """Release the open descriptors (a later record reopens them)."""
        with self._thread_lock:
            self._files.discard()
