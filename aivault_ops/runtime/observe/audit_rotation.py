"""The active audit file's state and its rotation, both under the append lock.

A writer holding `audit/.lock` stats the active file anyway (to learn its
size); while the inode and size are the ones it left, what it knows still
holds: the hash of the chain's last line, whether that line is torn, and
the period (UTC day or hour) of the file's first line. Only when another
process wrote or rotated meanwhile are the file's two ends read again.

Before appending a line the writer rotates when the line would take the
file past `max_file_bytes`, or when its period is later than the first
line's. Rotating is a rename to `audit-<number>-<start>.jsonl` under the
lock, so no other process is writing then, and each notices the new inode
at its next append and reopens. The chain simply continues: the new file's
first line links to the renamed file's last line. Nothing here reads a
directory or a clock per request; that happens only when rotating or when
another process changed the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from aivault_ops.runtime.observe.audit_anchor import AnchorError, read_anchor
from aivault_ops.runtime.observe.audit_files import AuditFiles
from aivault_ops.runtime.observe.audit_segments import (
    closed_segments,
    head_and_tail,
    last_line,
    next_number,
    rotated_name,
)
from aivault_ops.runtime.observe.audit_verify import GENESIS, line_hash


class Line(NamedTuple):
    """One chained line ready to append: its rotation period, `ts`, bytes and hash."""

    period: str
    ts: str
    data: bytes
    digest: str


class Chunk(NamedTuple):
    """Consecutive lines for one file, and whether to rotate before writing them."""

    rotate_first: bool
    lines: list[Line]


def plan_chunks(lines: list[Line], size: int, period: str | None, max_bytes: int) -> list[Chunk]:
    """Split `lines` where the file must rotate. `size` and `period` describe the active
    file (period None: it is empty). A line later than the file's period, or one that
    would take it past `max_bytes`, starts a new file; a file is never left empty."""
    chunks: list[Chunk] = []
    current: list[Line] = []
    rotate = False
    for line in lines:
        need = len(line.data) + 1
        if size > 0 and (size + need > max_bytes or (period is not None and line.period > period)):
            if current:
                chunks.append(Chunk(rotate, current))
            rotate, current, size, period = True, [], 0, None
        current.append(line)
        size += need
        if period is None:
            period = line.period
    if current:
        chunks.append(Chunk(rotate, current))
    return chunks


class ActiveFile:
    """What this process knows of `audit/audit.jsonl`; every method runs under the lock."""

    def __init__(
        self, files: AuditFiles, period_of: Callable[[str], str], clock: Callable[[], datetime]
    ) -> None:
        self._files = files
        self._period_of = period_of
        self._clock = clock
        self.inode, self.size = -2, 0  # -2: never seen
        self._opens = -1  # `AuditFiles.opens` when inode and size were last known
        self.prev = GENESIS
        self.torn = False
        self.period: str | None = None
        self.start: str | None = None
        self.rotated = False  # set when this process rotated: maintenance is due

    def refresh(self) -> None:
        """Stat the active file; read its ends again only when it changed under us (its
        tail only when another writer appended: the first line stays as it was)."""
        size, inode = self._files.stat()
        if size and self._held_since(inode):
            if size != self.size:
                self.size = size
                self.prev, self.torn = self._read_tail()
            return
        self.inode, self.size = inode, size
        if size:
            head, tail, self.torn = head_and_tail(self._files.path)
            self.prev = GENESIS if tail is None else line_hash(tail)
            self.start = _stamp_of(head)
            self.period = "" if self.start is None else self._period_of(self.start)
        else:
            self.prev, self.torn, self.period, self.start = self._previous_hash(), False, None, None

    def _held_since(self, inode: int) -> bool:
        """Whether `inode` is the file we last wrote or read, its descriptor open ever
        since (so the inode number cannot have gone to a new file meanwhile)."""
        files = self._files
        return inode == self.inode == files.inode and files.opens == self._opens

    def _read_tail(self) -> tuple[str, bool]:
        _head, tail, torn = head_and_tail(self._files.path, head=False)
        return (GENESIS if tail is None else line_hash(tail)), torn

    def _previous_hash(self) -> str:
        """The chain's last line when the active file is empty: the newest non-empty closed
        file's last line, else the anchor's hash (everything was pruned), else genesis.
        A file compressed or pruned while we look is looked up again."""
        directory = self._files.directory
        for _attempt in range(3):
            try:
                for segment in reversed(closed_segments(directory)):
                    line = last_line(segment.path)
                    if line is not None:
                        return line_hash(line)
            except FileNotFoundError:
                continue
            return _anchor_prev(directory)
        raise OSError("audit files kept changing while looking for the chain's last line")

    def write(self, chunk: Chunk) -> None:
        """Rotate first if planned, then append the chunk's lines in one write."""
        if chunk.rotate_first:
            self._rotate()
        data = b"\n".join(line.data for line in chunk.lines) + b"\n"
        if self.torn:
            data = b"\n" + data  # the torn line stays visible, ours start on a line of their own
        self._files.write(data, self.size)
        if self.size == 0:
            first = chunk.lines[0]
            self.period, self.start = first.period, first.ts
        self.size += len(data)
        self.inode, self.torn, self.prev = self._files.inode, False, chunk.lines[-1].digest
        self._opens = self._files.opens

    def _rotate(self) -> None:
        if self.torn:  # end the torn line so the closed file ends with a newline
            self._files.write(b"\n", self.size)
        directory = self._files.directory
        number = next_number(closed_segments(directory), _pruned_through(directory))
        self._files.rotate(rotated_name(number, self.start, self._clock))
        self.inode, self.size, self.torn, self.period, self.start = -1, 0, False, None, None
        self.rotated = True


def _stamp_of(line: bytes | None) -> str | None:
    try:
        record = json.loads(line) if line else None
    except ValueError:
        return None
    stamp = record.get("ts") if isinstance(record, dict) else None
    return stamp if isinstance(stamp, str) else None


def _anchor_prev(directory: Path) -> str:
    try:
        anchor = read_anchor(directory)
    except AnchorError:
        return GENESIS  # `audit verify` reports the unreadable anchor
    return GENESIS if anchor is None else anchor.prev


def _pruned_through(directory: Path) -> str | None:
    try:
        anchor = read_anchor(directory)
    except AnchorError:
        return None
    return None if anchor is None else anchor.through
