"""`audit verify`: walk the hash chain of the audit files and report the first break."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aivault_ops.runtime.observe.audit_files import FILE_NAME

GENESIS: Final = "0" * 64


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


def audit_files(directory: Path) -> list[Path]:
    """The day files of an audit directory, oldest first."""
    return sorted(p for p in directory.iterdir() if FILE_NAME.fullmatch(p.name))


def verify_chain(state_dir: Path) -> ChainReport:
    """Walk every audit file in date order and report the first broken link."""
    directory = state_dir / "audit"
    if not directory.is_dir():
        return ChainReport(0, 0, GENESIS, None)
    files = audit_files(directory)
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
