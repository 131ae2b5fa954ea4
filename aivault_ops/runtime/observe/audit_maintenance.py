"""Compression and retention of the closed audit files, off the request path.

Runs in a background thread of the process that rotated (and once at
start), never under the append lock, and in one process at a time
(`audit/.maintenance.lock`). It only ever touches closed files: the active
file has its own name, so it is never compressed or removed.

1. Leftovers of an interrupted run go: temporary files, a plain file whose
   compressed copy is complete, files the anchor already counts as pruned.
2. Files last written more than `retain_days` ago are pruned.
3. Every closed file but the newest is gzip'd. The newest stays plain (as
   logrotate's `delaycompress`): a shipper still reading it finds it, and a
   writer finds the chain's last line without decompressing anything.
4. While all the files together take more than `retain_bytes`, the oldest
   are pruned.

Pruning removes a prefix of the chain only, and writes the anchor (the hash
the retained tail starts from) before it removes anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from aivault_ops.runtime.observe.audit_anchor import NO_ANCHOR, read_anchor, write_anchor
from aivault_ops.runtime.observe.audit_segments import (
    ACTIVE_NAME,
    GZ,
    Segment,
    closed_segments,
    last_line,
    segment_key,
)
from aivault_ops.runtime.observe.audit_settings import AuditSettings
from aivault_ops.runtime.observe.audit_verify import line_hash

LOCK_NAME: Final = ".maintenance.lock"
_TEMPORARY_SUFFIX: Final = ".gz.tmp"
# Measured on 64 MiB of audit lines: level 3 takes half the CPU of level 6 (0.45 s) for
# 90 % of its ratio (4.7 : 1); 256 KiB steps cut the worst append stall while a file is
# compressed from ~10 ms (1 MiB steps) to ~4 ms.
_CHUNK: Final = 256 * 1024
_COMPRESS_LEVEL: Final = 3
_DAY_S: Final = 86400.0
_IDLE_EXIT_S: Final = 300.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MaintenanceReport:
    """What one run did."""

    compressed: int
    pruned: int


def expired_prefix(mtimes: list[float], cutoff: float) -> int:
    """How many of the oldest files to prune so that none last written before `cutoff`
    stays (a prefix: the retained files must stay one unbroken chain)."""
    return max((index + 1 for index, mtime in enumerate(mtimes) if mtime < cutoff), default=0)


def over_budget_prefix(sizes: list[int], active: int, budget: int) -> int:
    """How many of the oldest closed files to prune to bring the total (the active
    file's `active` bytes included, which cannot be pruned) within `budget`."""
    total, count = sum(sizes) + active, 0
    while total > budget and count < len(sizes):
        total -= sizes[count]
        count += 1
    return count


class Maintenance:
    """Compresses and prunes closed files; `schedule` wakes its background thread.

    One daemon thread at a time, started by `schedule` and then waiting for
    the next one (a busy runtime rotates every few seconds: no thread is
    made and ended per run); it ends after `_IDLE_EXIT_S` without work.
    """

    def __init__(
        self, directory: Path, settings: AuditSettings, clock: Callable[[], datetime] = _now
    ) -> None:
        self.directory = directory
        self.settings = settings
        self._clock = clock
        self.error: str | None = None
        self._reset_threading()

    def _reset_threading(self) -> None:
        self._pid = os.getpid()
        self._wake = threading.Condition()
        self._running = self._again = False
        self._thread: threading.Thread | None = None

    def schedule(self) -> None:
        """Run soon in the background; a run already under way runs once more after."""
        if self._pid != os.getpid():  # forked: the parent's thread and lock are not ours
            self._reset_threading()
        with self._wake:
            if self._running:
                self._again = True
                return
            self._running = True
            self._wake.notify_all()
            if self._thread is not None:
                return
            try:
                thread = threading.Thread(target=self._loop, name="audit-maintenance", daemon=True)
                thread.start()
            except RuntimeError as error:  # no thread to be had: try again at the next rotation
                self.error = f"audit maintenance failed: {error}"
                self._running = False
                self._wake.notify_all()
                return
            self._thread = thread

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is under way or scheduled; False on timeout."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._running, timeout)

    def _loop(self) -> None:
        while True:
            try:
                self.run()
            except Exception as error:  # a thread has no caller: keep it for /status
                reason = error.strerror if isinstance(error, OSError) else None
                self.error = f"audit maintenance failed: {reason or error}"
            with self._wake:
                if self._again:
                    self._again = False
                    continue
                self._running = False
                self._wake.notify_all()
                if not self._wake.wait_for(lambda: self._running, _IDLE_EXIT_S):
                    self._thread = None
                    return

    def run(self) -> MaintenanceReport:
        """One pass, now, in this thread (holding the maintenance lock)."""
        with _exclusive(self.directory / LOCK_NAME):
            self._clean_leftovers()
            segments = closed_segments(self.directory)
            pruned = self._prune(segments[: self._expired(segments)])
            segments = segments[pruned:]
            compressed = 0
            if self.settings.gzip:
                compressed = sum(self._compress(segment) for segment in segments[:-1])
            segments = closed_segments(self.directory)
            pruned += self._prune(segments[: self._over_budget(segments)])
        self.error = None
        return MaintenanceReport(compressed, pruned)

    def _expired(self, segments: list[Segment]) -> int:
        if self.settings.retain_days is None:
            return 0
        cutoff = self._clock().timestamp() - self.settings.retain_days * _DAY_S
        return expired_prefix([s.mtime for s in segments], cutoff)

    def _over_budget(self, segments: list[Segment]) -> int:
        if self.settings.retain_bytes is None:
            return 0
        active = self.directory / ACTIVE_NAME
        active_bytes = active.stat().st_size if active.exists() else 0
        sizes = [s.size for s in segments]
        return over_budget_prefix(sizes, active_bytes, self.settings.retain_bytes)

    def _prune(self, victims: list[Segment]) -> int:
        """Record the anchor past `victims` (a prefix of the chain), then remove them."""
        if not victims:
            return 0
        base = read_anchor(self.directory) or NO_ANCHOR
        prev, last_ts = base.prev, base.last_ts
        for segment in reversed(victims):
            line = last_line(segment.path)
            if line is not None:
                prev, last_ts = line_hash(line), _stamp_of(line)
                break
        size = sum(segment.size for segment in victims)
        anchor = base.then_pruned(prev, victims[-1].name, len(victims), size, last_ts)
        write_anchor(self.directory, anchor)
        for segment in victims:
            _remove_both(segment.path)
        return len(victims)

    def _compress(self, segment: Segment) -> int:
        """Gzip one closed file beside itself, then remove the plain one (1 if done)."""
        if segment.compressed:
            return 0
        source = segment.path
        temporary = source.with_name(f".{source.name}{_TEMPORARY_SUFFIX}")
        status = source.stat()
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as raw, source.open("rb") as plain:
                with gzip.GzipFile(
                    source.name, "wb", _COMPRESS_LEVEL, raw, mtime=int(status.st_mtime)
                ) as packed:
                    shutil.copyfileobj(plain, packed, _CHUNK)
                raw.flush()
                os.fsync(raw.fileno())
            os.utime(temporary, ns=(status.st_atime_ns, status.st_mtime_ns))
            temporary.replace(source.with_name(source.name + GZ))
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        source.unlink()
        return 1

    def _clean_leftovers(self) -> None:
        """Temporary files of an interrupted run, plain files whose compressed copy is
        complete, and files up to the anchor (pruned, not yet removed) go."""
        anchor = read_anchor(self.directory)
        through = segment_key(anchor.through) if anchor is not None else None
        names = {path.name for path in self.directory.iterdir()}
        for name in names - {ACTIVE_NAME}:  # never the file being written
            key = segment_key(name)
            stale = name.startswith(".") and name.endswith(_TEMPORARY_SUFFIX)
            pruned = key is not None and through is not None and key <= through
            duplicate = key is not None and name + GZ in names
            if stale or pruned or duplicate:
                (self.directory / name).unlink(missing_ok=True)


def _remove_both(path: Path) -> None:
    plain = path.with_name(path.name.removesuffix(GZ))
    plain.unlink(missing_ok=True)
    plain.with_name(plain.name + GZ).unlink(missing_ok=True)


def _stamp_of(line: bytes) -> str | None:
    with contextlib.suppress(ValueError):
        record = json.loads(line)
        if isinstance(record, dict) and isinstance(record.get("ts"), str):
            return str(record["ts"])
    return None


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
