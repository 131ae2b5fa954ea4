"""`audit verify`: walk the hash chain of the audit files and report the first break.

The walk covers the retained files in chain order (day files, rotated
files, the active file; gzip'd ones decompressed) and starts from the
anchor's hash when older files were pruned, else from 64 zeros. It can run
beside a live runtime: under a shared lock on `audit/.lock` it lists the
files and opens the active one, which it reads only up to the size it had
then, so a rotation meanwhile cannot make a file look missing. A file
compressed meanwhile is read compressed; one pruned meanwhile makes the
walk start again from the new anchor.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aivault_ops.runtime.observe.audit_anchor import ANCHOR_NAME, Anchor, AnchorError, read_anchor
from aivault_ops.runtime.observe.audit_segments import (
    GZ,
    Segment,
    list_segments,
    open_lines,
    segment_key,
)

GENESIS: Final = "0" * 64
_ATTEMPTS: Final = 3


def line_hash(line: bytes) -> str:
    """The chain link: sha256 hex of one line's bytes without its newline."""
    return hashlib.sha256(line).hexdigest()


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
    """Result of `verify_chain`: counts, the head hash, the first break if any, and
    the anchor (what was pruned) when older files were removed."""

    files: int
    lines: int
    head: str
    broken: ChainBreak | None
    anchor: Anchor | None = None

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
    """Walk every retained audit file in chain order and report the first broken link."""
    directory = state_dir / "audit"
    if not directory.is_dir():
        return ChainReport(0, 0, GENESIS, None)
    for _attempt in range(_ATTEMPTS - 1):
        with contextlib.suppress(FileNotFoundError):  # pruned meanwhile: start again
            report = _walk(directory)
            if not _pruned_meanwhile(report, directory):
                return report
    return _walk(directory)


def _pruned_meanwhile(report: ChainReport, directory: Path) -> bool:
    """A break at the very first retained line while the anchor moved on: retention
    pruned files between reading the anchor and reading them (walk again)."""
    if report.broken is None or report.lines != 0:
        return False
    try:
        return read_anchor(directory) != report.anchor
    except AnchorError:
        return False


def _walk(directory: Path) -> ChainReport:
    with _shared_lock(directory):
        try:
            anchor = read_anchor(directory)
        except AnchorError as error:
            return ChainReport(0, 0, GENESIS, ChainBreak(directory / ANCHOR_NAME, 1, str(error)))
        segments = _retained(list_segments(directory), anchor)
        active = _Pinned(segments[-1]) if segments and segments[-1].active else None
    expected, lines = (anchor.prev if anchor else GENESIS), 0
    try:
        for segment in segments:
            with _lines_of(segment, active) as handle:
                for number, raw in enumerate(handle, start=1):
                    line = raw.removesuffix(b"\n")
                    reason = _check_line(line, expected)
                    if reason is not None:
                        broken = ChainBreak(segment.path, number, reason)
                        return ChainReport(len(segments), lines, expected, broken, anchor)
                    expected, lines = line_hash(line), lines + 1
    finally:
        if active is not None:
            active.close()
    return ChainReport(len(segments), lines, expected, None, anchor)


def _retained(segments: list[Segment], anchor: Anchor | None) -> list[Segment]:
    """The files after the anchor's `through` (those up to it are pruned, or going)."""
    through = segment_key(anchor.through) if anchor is not None else None
    return [s for s in segments if through is None or s.key > through]


class _Pinned:
    """The active file opened under the lock, read only up to the size it had then
    (appends after the pin belong to a later walk)."""

    def __init__(self, segment: Segment) -> None:
        self.handle = segment.path.open("rb")
        self.size = os.fstat(self.handle.fileno()).st_size

    def lines(self) -> Iterator[bytes]:
        remaining = self.size
        for raw in self.handle:
            if remaining <= 0:
                return
            yield raw[:remaining]
            remaining -= len(raw)

    def close(self) -> None:
        self.handle.close()


@contextlib.contextmanager
def _lines_of(segment: Segment, active: _Pinned | None) -> Iterator[Iterator[bytes]]:
    if segment.active and active is not None:
        yield active.lines()
        return
    path = segment.path
    if not segment.compressed and not path.exists():  # compressed since the listing
        path = path.with_name(path.name + GZ)
    with open_lines(path) as handle:
        yield iter(handle)


@contextlib.contextmanager
def _shared_lock(directory: Path) -> Iterator[None]:
    """Hold writers (and so rotation) off while the files are listed and pinned."""
    try:
        fd = os.open(directory / ".lock", os.O_RDONLY)
    except (FileNotFoundError, PermissionError):  # no writer ever ran here, or not ours
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)
