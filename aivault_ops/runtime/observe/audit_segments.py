"""The files of the audit directory: which are log segments, their order, how to read them.

```
audit/
  audit.jsonl                                the active file: the only one written
  audit-00000042-20261127T235958Z.jsonl      closed: segment 42, its first line dated then
  audit-00000041-20261127T120004Z.jsonl.gz   closed and compressed
  2026-11-26.jsonl[.gz]                      a day file written before rotation existed
  anchor.json                                where the retained chain starts (after pruning)
  .lock  .maintenance.lock                   cross-process locks
```

The chain runs through day files by date, then rotated segments by number,
then the active file. A closed file never changes again except to be
compressed (same lines, `.gz` added) or removed from the oldest end.
"""

from __future__ import annotations

import gzip
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

ACTIVE_NAME: Final = "audit.jsonl"
GZ: Final = ".gz"
_ROTATED: Final = re.compile(r"audit-(\d{8,})-\d{8}T\d{6}Z\.jsonl")
_DAY: Final = re.compile(r"\d{4}-\d{2}-\d{2}\.jsonl")
_STAMP: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})")
_TAIL_BLOCK: Final = 4096
_HEAD_LIMIT: Final = 64 * 1024
_ACTIVE_KEY: Final = (2, "", 0)


def segment_key(name: str) -> tuple[int, str, int] | None:
    """Where the file `name` (with or without `.gz`) sits in the chain; None when it is
    not a log segment. Day files come first, then rotated ones, then the active file."""
    if name == ACTIVE_NAME:
        return _ACTIVE_KEY
    base = name.removesuffix(GZ)
    if _DAY.fullmatch(base):
        return (0, base, 0)
    rotated = _ROTATED.fullmatch(base)
    if rotated:
        return (1, "", int(rotated[1]))
    return None


@dataclass(frozen=True, order=True)
class Segment:
    """One log file, ordered by its place in the chain, with its size and mtime as
    listed. Its `Path` is built only when asked for: on CPython 3.11 every `Path`
    interns its name, and listing a directory of ever-new file names into `Path`s
    a few times a rotation churned the interpreter's table of interned strings
    until it doubled (a 1 MB step in the soak's RSS)."""

    key: tuple[int, str, int]
    directory: Path = field(compare=False)
    file_name: str = field(compare=False)
    size: int = field(compare=False, default=0)
    mtime: float = field(compare=False, default=0.0)

    @property
    def path(self) -> Path:
        """The file."""
        return self.directory / self.file_name

    @property
    def name(self) -> str:
        """The file's name without `.gz`: the same before and after compression."""
        return self.file_name.removesuffix(GZ)

    @property
    def compressed(self) -> bool:
        """Whether the file is gzip'd."""
        return self.file_name.endswith(GZ)

    @property
    def active(self) -> bool:
        """Whether this is the file being written."""
        return self.key == _ACTIVE_KEY


def list_segments(directory: Path) -> list[Segment]:
    """Every log file in chain order, the active one last. When a closed file exists
    both plain and compressed (compression was interrupted after the copy was
    complete), the plain one counts. A file gone before its size was read (just
    compressed by another process) stays listed with size 0 and no age: a reader
    beside a live writer finds it compressed, as the chain needs."""
    found: dict[tuple[int, str, int], Segment] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            key = segment_key(entry.name)
            if key is None:
                continue
            try:
                status = entry.stat()
                size, mtime = status.st_size, status.st_mtime
            except FileNotFoundError:
                size, mtime = 0, math.inf
            segment = Segment(key, directory, entry.name, size, mtime)
            if key not in found or found[key].compressed:
                found[key] = segment
    return sorted(found.values())


def closed_segments(directory: Path) -> list[Segment]:
    """The closed files in chain order (every segment but the active one)."""
    return [segment for segment in list_segments(directory) if not segment.active]


def rotated_name(number: int, start: str | None, now: Callable[[], datetime]) -> str:
    """`audit-<number>-<start>.jsonl`, the start being the UTC time of the file's first
    line, from its `ts` (`2026-11-27T23:59:58.123Z` → `20261127T235958Z`); when that
    line has no readable `ts`, the time of the rotation (`now()`)."""
    match = _STAMP.match(start or "") or _STAMP.match(now().astimezone(UTC).isoformat())
    assert match is not None
    digits = "".join(match.groups())
    return f"audit-{number:08d}-{digits[:8]}T{digits[8:]}Z.jsonl"


def next_number(segments: list[Segment], pruned_through: str | None) -> int:
    """The number of the next rotated file: above every rotated file still present and
    above the newest one already pruned (numbers are never reused)."""
    numbers = [segment.key[2] for segment in segments if segment.key[0] == 1]
    pruned = segment_key(pruned_through) if pruned_through else None
    if pruned is not None and pruned[0] == 1:
        numbers.append(pruned[2])
    return max(numbers, default=0) + 1


@contextmanager
def open_lines(path: Path) -> Iterator[Iterable[bytes]]:
    """The file's lines as bytes, decompressed when it is gzip'd."""
    if path.name.endswith(GZ):
        with gzip.open(path, "rb") as handle:
            yield handle
    else:
        with path.open("rb") as handle:
            yield handle


def last_line(path: Path) -> bytes | None:
    """The last line of a segment (without newline), or None when it is empty."""
    if path.name.endswith(GZ):
        line = None
        with open_lines(path) as handle:
            for raw in handle:
                line = raw
        return None if line is None else line.removesuffix(b"\n")
    return head_and_tail(path)[1]


def head_and_tail(path: Path, head: bool = True) -> tuple[bytes | None, bytes | None, bool]:
    """(first line, last line, whether the last line is torn: no newline) of a plain
    file, reading only its ends (the first line only when `head`)."""
    with path.open("rb") as handle:
        first = handle.readline(_HEAD_LIMIT) if head else b""
        end = handle.seek(0, os.SEEK_END)
        if end == 0:
            return None, None, False
        position, data = end, b""
        while position > 0:
            position = max(0, position - _TAIL_BLOCK)
            handle.seek(position)
            data = handle.read(end - position)
            if b"\n" in data.removesuffix(b"\n"):
                break
    torn = not data.endswith(b"\n")
    return first.removesuffix(b"\n"), data.removesuffix(b"\n").rsplit(b"\n", 1)[-1], torn


def disk_bytes(directory: Path) -> int:
    """Bytes the log files take on disk (every segment, the active one included)."""
    return sum(segment.size for segment in list_segments(directory))
