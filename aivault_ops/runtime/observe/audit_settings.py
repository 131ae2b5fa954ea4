"""How the audit log rotates, compresses, prunes and guards its disk: `serve`'s
`--audit-*` options as one checked value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MIB: Final = 1024 * 1024
DEFAULT_MAX_FILE_BYTES: Final = 64 * MIB
DEFAULT_MIN_FREE_BYTES: Final = 8 * MIB
DEFAULT_WARN_FREE_BYTES: Final = 512 * MIB
SMALLEST_FILE_BYTES: Final = 1024
# How many characters of a line's `ts` (`2026-11-27T23:59:58.123Z`) name its period:
# a line whose period is later than the active file's first line starts a new file.
ROTATE_PERIODS: Final = {"daily": 10, "hourly": 13, "size": 0}
_UNITS: Final = {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB, "t": 1024 * 1024 * MIB}
_SIZE: Final = re.compile(r"(\d+)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`1048576`, `64M`, `64MiB`, `1g` → bytes (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size (a whole number of bytes, or with K, M, G, T)")
    return int(match[1]) * _UNITS[match[2].lower()]


@dataclass(frozen=True)
class AuditSettings:
    """Rotation, compression, retention and the free-space floors of the audit log.

    `retain_bytes` and `retain_days` are off (None) by default: removing audit
    evidence is the operator's decision.
    """

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    rotate: str = "daily"
    gzip: bool = True
    retain_bytes: int | None = None
    retain_days: float | None = None
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES
    warn_free_bytes: int = DEFAULT_WARN_FREE_BYTES

    def __post_init__(self) -> None:
        if self.rotate not in ROTATE_PERIODS:
            raise ValueError(f"--audit-rotate must be one of {', '.join(ROTATE_PERIODS)}")
        if self.max_file_bytes < SMALLEST_FILE_BYTES:
            raise ValueError(f"--audit-max-file-bytes must be at least {SMALLEST_FILE_BYTES}")
        if self.retain_bytes is not None and self.retain_bytes < 1:
            raise ValueError("--audit-retain-bytes must be positive")
        if self.retain_days is not None and not self.retain_days > 0:
            raise ValueError("--audit-retain-days must be positive")
        if self.min_free_bytes < 0:
            raise ValueError("--audit-min-free-bytes must not be negative")
        if self.warn_free_bytes < self.min_free_bytes:
            raise ValueError(
                "--audit-warn-free-bytes must be at least --audit-min-free-bytes"
                " (the warning comes before the refusal)"
            )

    def period(self, stamp: str) -> str:
        """The rotation period of a line dated `stamp` (`""` when only size rotates)."""
        return stamp[: ROTATE_PERIODS[self.rotate]]
