"""`audit/anchor.json`: where the retained chain starts once the oldest files are pruned.

Retention removes closed files from the oldest end only, so what stays is
one unbroken tail of the chain. Before removing anything, the pruner
records in the anchor the sha256 of the last line it removes (`prev`: the
first retained line must link to it), the name of the newest file it
removes (`through`: every file up to that one is gone, or going) and
running totals of what was removed. `audit verify` checks the retained
tail from `prev` and reports the totals. The anchor is rewritten
atomically (temporary file, fsync, rename), so a crash leaves the old
anchor or the new one, never half of one.

Like the chain's newest line, the anchor has nothing after it to vouch for
it: someone who can write the state directory can prune and forge an
anchor. Ship the lines elsewhere to keep the pruned part provable (the
shipped copy holds the line whose hash is `prev`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

ANCHOR_NAME: Final = "anchor.json"
FORMAT: Final = "aivault-ops/audit-anchor@1"
_HEX = frozenset("0123456789abcdef")


class AnchorError(ValueError):
    """`anchor.json` exists but is not an anchor this version understands."""


@dataclass(frozen=True)
class Anchor:
    """What was pruned, and the hash the retained chain starts from."""

    prev: str
    through: str
    files: int
    bytes: int
    last_ts: str | None

    def then_pruned(
        self, prev: str, through: str, files: int, size: int, last_ts: str | None
    ) -> Anchor:
        """This anchor after `files` more files (`size` bytes) up to `through` went."""
        return Anchor(prev, through, self.files + files, self.bytes + size, last_ts)


NO_ANCHOR: Final = Anchor("0" * 64, "", 0, 0, None)


def read_anchor(directory: Path) -> Anchor | None:
    """The anchor of an audit directory, None when nothing was ever pruned."""
    try:
        data = (directory / ANCHOR_NAME).read_bytes()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        raise AnchorError(f"{ANCHOR_NAME} is not JSON") from None
    return _parse(record)


def _parse(record: Any) -> Anchor:
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise AnchorError(f"{ANCHOR_NAME} is not an {FORMAT} document")
    prev, through = record.get("prev"), record.get("through")
    if not (isinstance(prev, str) and len(prev) == 64 and set(prev) <= _HEX):
        raise AnchorError(f"{ANCHOR_NAME}: 'prev' is not a sha256 hex digest")
    counts = [record.get("files"), record.get("bytes")]
    if not isinstance(through, str) or not all(type(n) is int and n >= 0 for n in counts):
        raise AnchorError(f"{ANCHOR_NAME}: 'through', 'files' or 'bytes' is missing or wrong")
    last_ts = record.get("last_ts")
    return Anchor(
        prev,
        through,
        record["files"],
        record["bytes"],
        last_ts if isinstance(last_ts, str) else None,
    )


def write_anchor(directory: Path, anchor: Anchor) -> None:
    """Replace the anchor atomically and durably (the pruned files go only after this)."""
    document = {"format": FORMAT, **asdict(anchor)}
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    temporary = directory / f".{ANCHOR_NAME}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(fd)
    temporary.replace(directory / ANCHOR_NAME)
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
